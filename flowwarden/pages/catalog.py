"""`flowwarden catalog`: a static site of the loaded rules, viewable offline from any folder.

    index.html          every rule, with client-side search and filters
    attack.html         the ATT&CK coverage matrix: tactics as columns, techniques and their rules
    rules/<id>.html     one page per rule: its explanation
    assets/             the site's own CSS and JS (no CDN, no library)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from flowwarden.alerts.model import TACTICS, TECHNIQUES
from flowwarden.pages.explain_html import explanation_body, severity_badge
from flowwarden.pages.explanation import Explanation, explain_all
from flowwarden.pages.markup import asset, esc, page, tag
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import SEVERITIES

# ATT&CK Enterprise tactics in the matrix's left-to-right order.
TACTIC_ORDER = ("TA0043", "TA0042", "TA0001", "TA0002", "TA0003", "TA0004", "TA0005", "TA0006",
                "TA0007", "TA0008", "TA0009", "TA0011", "TA0010", "TA0040")
ASSETS = ("pages.css", "catalog.js")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def build_catalog(pack: Pack, out_dir: str | os.PathLike[str]) -> Path:
    """Write the catalog of `pack` into `out_dir` and return the path of its `index.html`.

    >>> import tempfile
    >>> from flowwarden.rules.loader import load_pack, resolve_pack_paths
    >>> index = build_catalog(load_pack(resolve_pack_paths([])), tempfile.mkdtemp())
    >>> sorted(p.name for p in index.parent.iterdir())
    ['assets', 'attack.html', 'index.html', 'rules']
    """
    root = Path(out_dir)
    (root / "rules").mkdir(parents=True, exist_ok=True)
    (root / "assets").mkdir(exist_ok=True)
    for name in ASSETS:
        (root / "assets" / name).write_text(asset(name), encoding="utf-8")
    explanations = explain_all(pack)
    enabled = {r.id: pack.config.is_enabled(r.id, r.enabled) for r in pack.rules}
    for rule_id, exp in explanations.items():
        (root / "rules" / rule_file(rule_id)).write_text(
            rule_page(exp, enabled[rule_id]), encoding="utf-8")
    (root / "attack.html").write_text(attack_page(explanations), encoding="utf-8")
    index = root / "index.html"
    index.write_text(index_page(explanations, enabled), encoding="utf-8")
    return index


def rule_file(rule_id: str) -> str:
    """A file name for a rule id: the id itself when safe, else a cleaned id plus a hash.

    >>> rule_file("AWS.VPC.PortScan"), rule_file("../x")
    ('AWS.VPC.PortScan.html', '_.._x-d6b96a97.html')
    """
    clean = SAFE_NAME.sub("_", rule_id)
    if clean != rule_id or clean.startswith("."):
        prefix = "_" if clean.startswith(".") else ""
        clean = f"{prefix}{clean}-{hashlib.sha256(rule_id.encode()).hexdigest()[:8]}"
    return f"{clean}.html"


def _nav(prefix: str) -> str:
    links = tag("a", "Rules", href=f"{prefix}index.html") + tag(
        "a", "ATT&amp;CK coverage", href=f"{prefix}attack.html")
    return tag("header", tag("nav", links))


def _site_page(title: str, body: str, prefix: str = "") -> str:
    return page(title, _nav(prefix) + tag("main", body), css_href=f"{prefix}assets/pages.css",
                script_srcs=[f"{prefix}assets/catalog.js"])


def rule_page(exp: Explanation, enabled: bool) -> str:
    return _site_page(f"{exp.rule.id}: {exp.rule.display_name}", explanation_body(exp, enabled),
                      prefix="../")


def _tactics(exp: Explanation) -> list[str]:
    return list(dict.fromkeys(m["tactic"] or m["tactic_id"] for m in exp.mitre))


def index_page(explanations: Mapping[str, Explanation], enabled: Mapping[str, bool]) -> str:
    rows = [_index_row(exp, enabled[rule_id]) for rule_id, exp in sorted(explanations.items())]
    log_types = sorted({lt for e in explanations.values() for lt in e.rule.log_types})
    tactics = sorted({t for e in explanations.values() for t in _tactics(e)})
    filters = tag("div", "".join([
        tag("input", "", type="search", id="rule-search", placeholder="Search rules",
            aria_label="Search rules"),
        _select("log-type", "All log types", log_types),
        _select("severity", "All severities", SEVERITIES[::-1]),
        _select("tactic", "All tactics", tactics),
        _select("enabled", "Enabled or not", ["enabled", "disabled"]),
    ]), class_="filters")
    head = "".join(tag("th", h, scope="col") for h in
                   ("Rule", "Severity", "Log types", "ATT&CK tactics", "Enabled"))
    grid = tag("table", tag("thead", tag("tr", head)) + tag("tbody", "".join(rows)),
               id="rule-index", class_="grid")
    count = tag("p", f"{len(rows)} of {len(rows)} rules", id="rule-count", class_="muted")
    body = tag("h1", "flowwarden rule catalog") + filters + count + grid
    return _site_page("flowwarden rule catalog", body)


def _select(facet: str, label: str, values: Sequence[str]) -> str:
    options = tag("option", esc(label), value="") + "".join(
        tag("option", esc(v), value=v) for v in values)
    return tag("select", options, data_facet=facet, aria_label=label)


def _index_row(exp: Explanation, enabled: bool) -> str:
    rule = exp.rule
    tactics = _tactics(exp)
    tables = [t.table for t in exp.lookup_tables]
    words = [rule.id, rule.display_name, rule.description, *rule.tags, *rule.log_types, *tactics,
             *(f"{m['technique_id']} {m['technique']}" for m in exp.mitre), *tables]
    link = tag("a", esc(rule.id), href=f"rules/{rule_file(rule.id)}")
    reads = tag("div", "lookup tables: " + ", ".join(tag("code", esc(t)) for t in tables),
                class_="muted lookup-tables") if tables else ""
    cells = [
        link + tag("div", esc(rule.display_name), class_="muted") + reads,
        severity_badge(rule.severity),
        "<br>".join(esc(lt) for lt in rule.log_types),
        "<br>".join(esc(t) for t in tactics) or tag("span", "none", class_="muted"),
        "yes" if enabled else "no",
    ]
    return tag("tr", "".join(tag("td", c) for c in cells), class_="rule-row",
               data_rule_id=rule.id, data_search=" ".join(words).lower(),
               data_log_type="|".join(rule.log_types), data_severity=rule.severity,
               data_tactic="|".join(tactics), data_enabled="enabled" if enabled else "disabled")


def coverage(explanations: Mapping[str, Explanation]) -> dict[str, dict[str, list[str]]]:
    """tactic id -> technique id -> ids of the rules that report it."""
    matrix: dict[str, dict[str, list[str]]] = {t: {} for t in TACTIC_ORDER}
    for rule_id, exp in sorted(explanations.items()):
        for entry in exp.mitre:
            techniques = matrix.setdefault(entry["tactic_id"], {})
            rules = techniques.setdefault(entry["technique_id"], [])
            if rule_id not in rules:
                rules.append(rule_id)
    return matrix


def attack_page(explanations: Mapping[str, Explanation]) -> str:
    matrix = coverage(explanations)
    cols, head, cells = [], [], []
    for tactic_id, techniques in matrix.items():
        state = "covered" if techniques else "empty"
        cols.append(tag("col", "", class_=state))
        head.append(tag("th", tag("span", esc(TACTICS.get(tactic_id, tactic_id))) + tag(
            "div", esc(tactic_id), class_="muted"), scope="col", class_=state))
        blocks = "".join(_technique(t, rules) for t, rules in sorted(techniques.items()))
        cells.append(tag("td", blocks, class_=state, data_tactic=tactic_id,
                         data_techniques=len(techniques)))
    grid = tag("table", tag("colgroup", "".join(cols)) + tag("thead", tag("tr", "".join(head)))
               + tag("tbody", tag("tr", "".join(cells))), id="attack-matrix", class_="matrix")
    covered = sum(1 for t in matrix.values() if t)
    body = (tag("h1", "ATT&amp;CK coverage")
            + tag("p", f"{covered} of {len(matrix)} tactics covered by the loaded rules; "
                  "tactics without a rule are the narrow columns.", class_="muted")
            + tag("div", grid, class_="matrix-scroll"))
    return _site_page("flowwarden ATT&CK coverage", body)


def _technique(technique_id: str, rules: Sequence[str]) -> str:
    links = "".join(tag("li", tag("a", esc(r).replace(".", ".<wbr>"), href=f"rules/{rule_file(r)}"))
                    for r in rules)
    name = TECHNIQUES.get(technique_id, "")
    return tag("div", tag("strong", esc(technique_id)) + " " + esc(name) + tag("ul", links),
               class_="technique", data_technique=technique_id)
