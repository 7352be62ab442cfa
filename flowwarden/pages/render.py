"""`flowwarden explain`: one rule explained as text, Markdown, JSON or a standalone HTML page."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from flowwarden.alerts.store import jsonable
from flowwarden.errors import UsageError
from flowwarden.pages.explain_html import explanation_body
from flowwarden.pages.explain_text import display_path, render_markdown, render_text
from flowwarden.pages.explanation import Explanation, explain_rule
from flowwarden.pages.markup import asset, page, tag
from flowwarden.rules.loader import Pack

FORMATS = ("text", "markdown", "json", "html")


def render_explanation(pack: Pack, rule_id: str, fmt: str = "text") -> str:
    """Explain one loaded rule in `fmt` (text, markdown, json or html).

    >>> from flowwarden.rules.loader import load_pack, resolve_pack_paths
    >>> pack = load_pack(resolve_pack_paths([]))
    >>> text = render_explanation(pack, "AWS.VPC.InboundPortWhitelist")
    >>> 'destination_port not in [80, 443]' in text
    True
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    exp = explain_rule(pack, rule_id)
    enabled = pack.config.is_enabled(exp.rule.id, exp.rule.enabled)
    if fmt == "text":
        return render_text(exp, enabled)
    if fmt == "markdown":
        return render_markdown(exp, enabled)
    if fmt == "json":
        return json.dumps(explanation_dict(exp, enabled), indent=2, ensure_ascii=False) + "\n"
    body = tag("main", explanation_body(exp, enabled), class_="rule-page")
    return page(f"{exp.rule.id}: {exp.rule.display_name}", body, css=asset("pages.css"))


def explanation_dict(exp: Explanation, enabled_by_config: bool) -> dict[str, Any]:
    """The explanation as plain JSON values (typed, unlike the text forms)."""
    rule = exp.rule
    return jsonable({
        "rule_id": rule.id, "display_name": rule.display_name, "severity": rule.severity,
        "enabled": rule.enabled, "enabled_by_config": enabled_by_config,
        "enabled_note": exp.enabled_note,
        "log_types": list(rule.log_types), "tags": list(rule.tags), "reference": rule.reference,
        "runbook": rule.runbook, "description": rule.description,
        "dedup_minutes": rule.dedup_minutes, "threshold": rule.threshold,
        "source_path": display_path(rule.source_path), "mitre": list(exp.mitre),
        "extraction": {"status": exp.status, "error": exp.extraction_error},
        "conditions": [asdict(c) for c in exp.logic.conditions],
        "exclusions": [asdict(t) for t in exp.logic.exclusions],
        "indicators": [{**asdict(i.test), "corpus": i.corpus} for i in exp.indicators],
        "output_fields": {g.log_type: {"found_by": g.found_by,
                                       "fields": [asdict(f) for f in g.fields]}
                          for g in exp.output_fields},
        "summary_attributes": [{**asdict(c), "message": c.message} for c in exp.summary_checks],
        "lookup_tables": [asdict(t) for t in exp.lookup_tables],
        "settings": exp.settings,
        "residuals": [asdict(r) for r in exp.logic.residuals],
    })
