"""An explanation as plain text (the terminal) and as Markdown."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from flowwarden.pages.explanation import Explanation, output_sources, output_table
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


def values_text(values: Sequence[str], note: str | None) -> str:
    text = ", ".join(values)
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
            out.extend(f"      # {line}" for line in condition.reason.splitlines())
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


def md(text: object) -> str:
    """Text for a Markdown table cell: pipes and newlines escaped, backticks kept literal."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def code(text: str) -> str:
    """Inline code (outside tables: backslashes and pipes are literal there) that survives
    backticks in the text."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{' '.join(text.split())}{pad}{fence}"


def render_markdown(exp: Explanation, enabled_by_config: bool) -> str:
    rule = exp.rule
    out = [f"# {md(rule.display_name or rule.id)}", "", f"`{rule.id}`", ""]
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
            line += "".join(f"  \n  _{md(r)}_" for r in condition.reason.splitlines())
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
