"""An explanation as plain text (the terminal) and as Markdown."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

from flowwarden.logic.explain import values_literal
from flowwarden.logic.ir import Scalar
from flowwarden.pages.explanation import (
    LOOKUP_TABLE_HEADERS,
    Explanation,
    lookup_table_rows,
    output_sources,
    output_table,
)
from flowwarden.rules.loader import PACKS_DIR

WRAP = 96


def columns(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Rows aligned under their headers.

    >>> print(columns(["a", "bb"], [["xyz", "1"]]))
      a    bb
      xyz  1
    """
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(" ".join(text.split()), WRAP, initial_indent=indent,
                         subsequent_indent=indent) if text else f"{indent}(none)"


def values_text(values: Sequence[Scalar], note: str | None) -> str:
    """A table's values typed as in the conditions (`53` the number, `"53"` the string)."""
    text = values_literal(values)
    if note:
        text = f"{text} ({note})" if text else f"({note})"
    return text


def metadata_rows(exp: Explanation, enabled_by_config: bool) -> list[tuple[str, str]]:
    rule = exp.rule
    enabled = "true" if rule.enabled else "false"
    if exp.enabled_note:
        enabled += f" ({exp.enabled_note})"
    elif enabled_by_config != rule.enabled:
        enabled += f" ({'enabled' if enabled_by_config else 'disabled'} by the configuration)"
    return [
        ("Severity", rule.severity), ("Enabled", enabled), ("Log types", ", ".join(rule.log_types)),
        ("Tags", ", ".join(rule.tags) or "(none)"), ("Reference", rule.reference or "(none)"),
        ("Dedup", f"{rule.dedup_minutes} minutes, threshold {rule.threshold}"),
        ("Source", display_path(rule.source_path)),
    ]


def display_path(path: str) -> str:
    """A rule's file as a reader can find it: built-in packs by their path in the package,
    others relative to the working directory when under it."""
    target = Path(path).resolve()
    for base, label in ((PACKS_DIR, "flowwarden/packs"), (Path.cwd().resolve(), "")):
        if target.is_relative_to(base):
            relative = target.relative_to(base).as_posix()
            return f"{label}/{relative}" if label else relative
    return str(target)


def constants_text(exp: Explanation, names: Sequence[str]) -> str:
    """Module constants a condition reads, with the flowwarden.yaml setting behind each."""
    return ", ".join(f"{n} (flowwarden.yaml {exp.settings[n]})" if n in exp.settings else n
                     for n in names)


def render_text(exp: Explanation, enabled_by_config: bool) -> str:
    """The terminal form: sections in the catalog page's order, tables aligned."""
    rule = exp.rule
    out = [f"{rule.id}: {rule.display_name or rule.id}", ""]
    out.append(columns(["Field", "Value"], metadata_rows(exp, enabled_by_config))
               .split("\n", 1)[1])
    out += ["", "Description", _wrap(rule.description), "", "Runbook", _wrap(rule.runbook), ""]
    out.append("MITRE ATT&CK")
    out.append(columns(["Tactic", "Technique"], [
        (f"{m['tactic_id']} {m['tactic']}".strip(), f"{m['technique_id']} {m['technique']}".strip())
        for m in exp.mitre]) if exp.mitre else "  (none)")
    out += ["", f"Detection logic (extracted: {exp.status})"]
    for condition in exp.logic.conditions:
        out.append(f"  {condition.text}")
        if condition.reason:
            out.extend(f"      # {line}".rstrip() for line in condition.reason.splitlines())
        if condition.constants:
            out.append(f"      constants: {constants_text(exp, condition.constants)}")
    if not exp.logic.conditions:
        out.append("  (no condition could be extracted)")
    out += ["", "Exclusions"]
    out.append(columns(["Field", "Kind", "Excluded values"], [
        (t.field, t.kind, values_text(t.values, t.note)) for t in exp.logic.exclusions])
        if exp.logic.exclusions else "  (none)")
    out += ["", "Indicators"]
    out.append(columns(["Field", "Kind", "Values", "Corpus"], [
        (i.test.field, i.test.kind, values_text(i.test.values, i.test.note), str(i.corpus))
        for i in exp.indicators]) if exp.indicators else "  (none)")
    if exp.lookup_tables:  # shown for the rules that read one; most read none
        out += ["", "Lookup tables (p_enrichment and event.lookup reads)"]
        out.append(columns(LOOKUP_TABLE_HEADERS, lookup_table_rows(exp)))
    out += ["", "Output fields (alert_context keys, from test events)"]
    headers, rows = output_table(exp)
    out.append(columns(headers, rows) if rows else "  (none)")
    out.append(f"  found by {output_sources(exp)}")
    out += ["", "Summary attributes"]
    out.append(columns(["Attribute", "Log type", "Check"], [
        (c.attribute, c.log_type, c.message) for c in exp.summary_checks])
        if exp.summary_checks else "  (none)")
    if exp.logic.residuals:
        out += ["", "Residual Python (evaluated per event)"]
        for residual in exp.logic.residuals:
            where = f"line {residual.line}: " if residual.line else ""
            out.append(f"  {where}{residual.reason}")
            out.append(textwrap.indent(residual.source.rstrip(), "      "))
    return "\n".join(out) + "\n"


# Characters that start Markdown (or GFM) markup anywhere in a line: emphasis, code, links,
# images, raw HTML, entities, tables and strike-through. CommonMark reads a backslash before
# any ASCII punctuation as that character, so escaping them all keeps the text as written.
MD_SPECIAL = frozenset("\\`*_[]<>#|~&!{}")
# Line starts that open a block: list items, quotes, headings, thematic breaks.
MD_BLOCK_START = re.compile(r"^(\s*)([-+=](?=\s|$)|\d+(?=[.)](?:\s|$)))")


def md(text: object) -> str:
    """Untrusted text (rule metadata, comments) as Markdown that shows it literally: markup
    characters backslash-escaped, newlines folded (it may sit in a table cell).

    >>> md("**bold** <script>x</script> | a_b [l](u)")
    '\\\\*\\\\*bold\\\\*\\\\* \\\\<script\\\\>x\\\\</script\\\\> \\\\| a\\\\_b \\\\[l\\\\](u)'
    >>> md("- not a list"), md("1. nor this"), md("10.0.0.1")
    ('\\\\- not a list', '1\\\\. nor this', '10.0.0.1')
    """
    folded = " ".join(str(text).splitlines())
    escaped = "".join(f"\\{c}" if c in MD_SPECIAL else c for c in folded)
    return MD_BLOCK_START.sub(_escape_block_start, escaped)


def _escape_block_start(match: re.Match[str]) -> str:
    marker = match.group(2)
    if marker[0].isdigit():  # `1.` opens an ordered list: escape the dot after the number
        return f"{match.group(1)}{marker}\\"
    return f"{match.group(1)}\\{marker}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def code(text: str) -> str:
    """Inline code (outside tables: backslashes and pipes are literal there) that survives
    backticks in the text."""
    runs = re.findall(r"`+", text)
    fence = "`" * (max(map(len, runs), default=0) + 1)  # longer than any run inside
    pad = " " if runs else ""
    return f"{fence}{pad}{' '.join(text.split())}{pad}{fence}"


def render_markdown(exp: Explanation, enabled_by_config: bool) -> str:
    rule = exp.rule
    out = [f"# {md(rule.display_name or rule.id)}", "", code(rule.id), ""]
    out.append(md_table(["Field", "Value"], [(k, md(v)) for k, v in
                                             metadata_rows(exp, enabled_by_config)]))
    out += ["", "## Description", "", md(rule.description) or "(none)", "", "## Runbook", "",
            md(rule.runbook) or "(none)", "", "## MITRE ATT&CK", ""]
    out.append(md_table(["Tactic", "Technique"], [
        (md(f"{m['tactic_id']} {m['tactic']}"), md(f"{m['technique_id']} {m['technique']}"))
        for m in exp.mitre]) if exp.mitre else "(none)")
    out += ["", "## Detection logic", "", f"Extracted: {exp.status}.", ""]
    for condition in exp.logic.conditions:
        line = f"- {code(condition.text)}"
        if condition.reason:
            # A blank `#` line separates a comment's paragraphs; `__` would be stray markup.
            line += "".join(f"  \n  _{md(r)}_" for r in condition.reason.splitlines()
                            if r.strip())
        if condition.constants:
            line += f"  \n  constants: {md(constants_text(exp, condition.constants))}"
        out.append(line)
    out += ["", "## Exclusions", ""]
    out.append(md_table(["Field", "Kind", "Excluded values"], [
        (md(t.field), md(t.kind), md(values_text(t.values, t.note)))
        for t in exp.logic.exclusions]) if exp.logic.exclusions else "(none)")
    out += ["", "## Indicators", ""]
    out.append(md_table(["Field", "Kind", "Values", "Corpus"], [
        (md(i.test.field), md(i.test.kind), md(values_text(i.test.values, i.test.note)),
         str(i.corpus)) for i in exp.indicators]) if exp.indicators else "(none)")
    if exp.lookup_tables:
        out += ["", "## Lookup tables", "", "What the rule and its helpers read from "
                "`p_enrichment` or `event.lookup`.", ""]
        out.append(md_table(LOOKUP_TABLE_HEADERS,
                            [[md(c) for c in row] for row in lookup_table_rows(exp)]))
    out += ["", "## Output fields", "", "The keys `alert_context` returns, from the rule's test "
            f"events ({md(output_sources(exp))}).", ""]
    headers, rows = output_table(exp)
    out.append(md_table(headers, [[md(c) for c in row] for row in rows]) if rows else "(none)")
    out += ["", "## Summary attributes", ""]
    out.append(md_table(["Attribute", "Log type", "Check"], [
        (md(c.attribute), md(c.log_type), md(c.message)) for c in exp.summary_checks])
        if exp.summary_checks else "(none)")
    if exp.logic.residuals:
        out += ["", "## Residual Python", "", "Evaluated per event by the rule's own Python."]
    for residual in exp.logic.residuals:
        where = f"line {residual.line}: " if residual.line else ""
        out += ["", f"{where}{md(residual.reason)}", "", "```python",
                residual.source.rstrip().replace("```", "` ` `"), "```"]
    return "\n".join(out) + "\n"
