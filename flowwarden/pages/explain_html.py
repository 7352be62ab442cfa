"""An explanation as HTML: the body shared by `explain --format html` and the catalog's pages."""

from __future__ import annotations

from flowwarden.pages.explain_text import constants_text, metadata_rows, values_text
from flowwarden.pages.explanation import (
    LOOKUP_TABLE_HEADERS,
    Explanation,
    lookup_table_rows,
    output_sources,
    output_table,
)
from flowwarden.pages.markup import esc, table, tag


def severity_badge(severity: str) -> str:
    return tag("span", esc(severity), class_=f"sev sev-{severity.lower()}")


def explanation_body(exp: Explanation, enabled_by_config: bool) -> str:
    """The explanation's sections as an HTML fragment (every value escaped)."""
    rule = exp.rule
    meta = "".join(tag("dt", esc(k)) + tag("dd", _meta_value(k, v, exp))
                   for k, v in metadata_rows(exp, enabled_by_config))
    parts = [
        tag("h1", esc(rule.display_name or rule.id)),
        tag("p", tag("code", esc(rule.id)) + " " + severity_badge(rule.severity)),
        tag("section", tag("dl", meta, class_="meta"), id="metadata"),
        tag("section", tag("h2", "Description") + tag("p", esc(rule.description or "(none)"))
            + tag("h2", "Runbook") + tag("p", esc(rule.runbook or "(none)")), id="about"),
        _mitre(exp), _logic(exp), _exclusions(exp), _indicators(exp), _lookup_tables(exp),
        _outputs(exp), _summary(exp), _residuals(exp),
    ]
    return "".join(parts)


def _meta_value(key: str, value: str, exp: Explanation) -> str:
    if key == "Tags":
        return "".join(tag("span", esc(t), class_="tag") for t in exp.rule.tags) or "(none)"
    if key == "Reference" and value.startswith(("https://", "http://")):
        return tag("a", esc(value), href=value, rel="noopener noreferrer")
    if key == "Source":
        return tag("code", esc(value))
    return esc(value)


def _section(title: str, body: str, section_id: str) -> str:
    return tag("section", tag("h2", esc(title)) + body, id=section_id)


def _none() -> str:
    return tag("p", "(none)", class_="muted")


def _mitre(exp: Explanation) -> str:
    rows = [[esc(f"{m['tactic_id']} {m['tactic']}".strip()),
             esc(f"{m['technique_id']} {m['technique']}".strip())] for m in exp.mitre]
    body = table(["Tactic", "Technique"], rows, class_="grid") if rows else _none()
    return _section("MITRE ATT&CK", body, "mitre")


def _logic(exp: Explanation) -> str:
    items = []
    for condition in exp.logic.conditions:
        extra = ""
        if condition.reason:
            extra += "".join(tag("span", "# " + esc(line), class_="reason")
                             for line in condition.reason.splitlines())
        if condition.constants:
            extra += tag("span", "constants: " + esc(constants_text(exp, condition.constants)),
                         class_="constants")
        items.append(tag("li", tag("code", esc(condition.text)) + extra,
                         class_="condition", data_role=condition.role))
    body = tag("p", f"Extracted from the rule's Python: {esc(exp.status)}.", class_="muted")
    body += tag("ul", "".join(items), class_="conditions") if items else _none()
    if exp.extraction_error:
        body += tag("p", "Extraction failed: " + esc(exp.extraction_error), class_="warn")
    return _section("Detection logic", body, "logic")


def _exclusions(exp: Explanation) -> str:
    rows = [[tag("code", esc(t.field)), esc(t.kind), esc(values_text(t.values, t.note))]
            for t in exp.logic.exclusions]
    body = table(["Field", "Kind", "Excluded values"], rows, class_="grid") if rows else _none()
    return _section("Exclusions", body, "exclusions")


def _indicators(exp: Explanation) -> str:
    rows = [[tag("code", esc(i.test.field)), esc(i.test.kind),
             esc(values_text(i.test.values, i.test.note)), str(i.corpus)]
            for i in exp.indicators]
    note = tag("p", "Corpus: how many other loaded rules test the same field, kind and values.",
               class_="muted")
    body = note + table(["Field", "Kind", "Values", "Corpus"], rows, class_="grid") if rows \
        else _none()
    return _section("Indicators", body, "indicators")


def _lookup_tables(exp: Explanation) -> str:
    if not exp.lookup_tables:  # most rules read none: no empty section for them
        return ""
    rows = [[tag("code", esc(table)), esc(via), esc(loaded)]
            for table, via, loaded in lookup_table_rows(exp)]
    note = tag("p", "What the rule and its helpers read from p_enrichment or event.lookup.",
               class_="muted")
    return _section("Lookup tables", note + table(LOOKUP_TABLE_HEADERS, rows, class_="grid"),
                    "lookup-tables")


def _outputs(exp: Explanation) -> str:
    headers, rows = output_table(exp)
    body = tag("p", "The keys alert_context returns, from the rule's own test events ("
               + esc(output_sources(exp)) + ").", class_="muted")
    cells = [[tag("code", esc(row[0])), *(_column_cell(c) for c in row[1:-1]), esc(row[-1])]
             for row in rows]
    body += table(headers, cells, id="output-field-table", class_="grid") if rows else _none()
    return _section("Output fields", body, "output-fields")


def _column_cell(column: str) -> str:
    if column == "-":
        return tag("span", "-", class_="muted")
    if column.startswith("("):
        return tag("span", esc(column), class_="warn")
    return tag("code", esc(column))


def _summary(exp: Explanation) -> str:
    rows = [[tag("code", esc(c.attribute)), esc(c.log_type),
             tag("span", esc(c.message), class_="warn" if c.problem else "muted")]
            for c in exp.summary_checks]
    body = table(["Attribute", "Log type", "Check"], rows, class_="grid") if rows else _none()
    return _section("Summary attributes", body, "summary-attributes")


def _residuals(exp: Explanation) -> str:
    if not exp.logic.residuals:
        return ""
    body = tag("p", "Evaluated per event by the rule's own Python.", class_="muted")
    for residual in exp.logic.residuals:
        where = f"line {residual.line}: " if residual.line else ""
        body += tag("p", esc(where + residual.reason))
        body += tag("pre", tag("code", esc(residual.source.rstrip())))
    return _section("Residual Python", body, "residual")
