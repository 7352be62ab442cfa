"""``flowwarden backtest`` for people: the report as text tables, or as JSON.

>>> from flowwarden.runs.backtest import BacktestReport
>>> render_backtest(BacktestReport(sources=[], sides=[]), "json").startswith("{")
True
"""

from __future__ import annotations

import io
import json
from datetime import datetime

from rich.console import Console
from rich.table import Table

from flowwarden.runs.backtest import BacktestReport

FORMATS = ("text", "json")


def render_backtest(report: BacktestReport, fmt: str = "text") -> str:
    """The report as a text table (sides side by side) or as JSON."""
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2, sort_keys=True)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    out = io.StringIO()
    # Wide enough for any table: a table is only as wide as its content.
    console = Console(file=out, width=400, force_terminal=False, color_system=None)
    span = (f"{_when(report.first_event)} .. {_when(report.last_event)}"
            if report.first_event else "no events")
    console.print(f"backtest: {report.records:,} records ({report.rejected:,} rejected), "
                  f"{report.days:.2f} days over {report.dates} UTC date(s), {span}", highlight=False)
    labels = _labels(report)
    if len(report.sides) > 1:
        for side in report.sides:
            console.print(f"side {labels[side.name]}: {side.name}", highlight=False, markup=False)
    console.print(_summary_table(report, labels))
    for rule_id in report.rule_ids():
        lines = []
        for side in report.sides:
            stats = side.rules.get(rule_id)
            if stats is None or not stats.top_dedup:
                continue
            if len(report.sides) > 1:
                lines.append(f"  side {labels[side.name]}:")
            lines.extend(f"    {d.alerts:>6,} alerts {d.events:>9,} events  {d.dedup}"
                         for d in stats.top_dedup)
        if lines:
            console.print(f"{rule_id}: top dedup keys", highlight=False, markup=False)
            for line in lines:
                console.print(line, highlight=False, markup=False, overflow="ignore", crop=False)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def _labels(report: BacktestReport) -> dict[str, str]:
    """Short column labels for the sides: A, B, ..."""
    return {side.name: chr(ord("A") + i) if i < 26 else str(i)
            for i, side in enumerate(report.sides)}


def _summary_table(report: BacktestReport, labels: dict[str, str]) -> Table:
    table = Table(title="per rule", title_justify="left")
    table.add_column("rule", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    many = len(report.sides) > 1
    columns = ("events", "alerts", "alerts/day", "first alert", "last alert")
    for column in columns:
        for side in report.sides:
            header = f"{column} {labels[side.name]}" if many else column
            table.add_column(header, justify="right", no_wrap=True)
    for rule_id in report.rule_ids():
        found = [side.rules.get(rule_id) for side in report.sides]
        severity = next(s.severity for s in found if s is not None)
        cells: list[str] = []
        for pick in (lambda s: f"{s.matched_events:,}", lambda s: f"{s.alerts:,}",
                     lambda s: f"{s.alerts_per_day:g}", lambda s: _when(s.first_alert),
                     lambda s: _when(s.last_alert)):
            cells.extend(pick(s) if s is not None else "off" for s in found)
        table.add_row(rule_id, severity, *cells)
    return table


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"
