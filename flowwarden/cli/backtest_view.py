"""``flowwarden backtest`` for people and for machines: text, JSON or CSV.

The text fits a 100-column terminal: one table row per rule and side (matched events, alerts,
alerts per day), the time span the rates come from (extrapolated when under a day), then per
rule its first and last alert and busiest dedup keys. JSON holds everything; CSV has one row per
rule and side with every per-rule number.

>>> from flowwarden.runs.backtest import BacktestReport
>>> render_backtest(BacktestReport(sources=[], sides=[]), "json").startswith("{")
True
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

from rich import box
from rich.console import Console
from rich.table import Table

from flowwarden.runs.backtest import MIN_SPAN, BacktestReport, RuleStats

FORMATS = ("text", "json", "csv")
WIDTH = 100
CSV_COLUMNS = ("side", "config", "rule_id", "severity", "matched_events", "alerts",
               "alerts_per_day", "errors", "first_alert", "last_alert", "span_days",
               "extrapolated")


def render_backtest(report: BacktestReport, fmt: str = "text") -> str:
    """The report as text (at most ``WIDTH`` columns), JSON or CSV."""
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2, sort_keys=True)
    if fmt == "csv":
        return render_csv(report)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    out = io.StringIO()
    console = Console(file=out, width=WIDTH, force_terminal=False, color_system=None,
                      soft_wrap=False)
    span = (f"events {_when(report.first_event)} .. {_when(report.last_event)} UTC "
            f"({report.dates} date{'s' if report.dates != 1 else ''})"
            if report.first_event else "no events")
    console.print(f"backtest: {report.records:,} records ({report.rejected:,} rejected), {span}",
                  highlight=False, markup=False)
    if report.first_event:
        console.print(rate_basis(report), highlight=False, markup=False)
    labels = _labels(report)
    many = len(report.sides) > 1
    if many:
        for side in report.sides:
            console.print(f"side {labels[side.name]}: {side.name}", highlight=False, markup=False)
    console.print(_summary_table(report, labels))
    console.print()
    for rule_id in report.rule_ids():
        lines = []
        for side in report.sides:
            stats = side.rules.get(rule_id)
            if stats is None or not stats.alerts:
                continue
            prefix = f"side {labels[side.name]}: " if many else ""
            lines.append(f"  {prefix}alerts {_when(stats.first_alert)} .. "
                         f"{_when(stats.last_alert)}; top dedup keys:")
            lines.extend(_fit(f"    {d.alerts:>6,} alerts {d.events:>9,} events  {d.dedup}")
                         for d in stats.top_dedup)
        if lines:
            console.print(rule_id, highlight=False, markup=False, overflow="fold")
            for line in lines:
                console.print(line, highlight=False, markup=False, overflow="ignore", crop=False)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def rate_basis(report: BacktestReport) -> str:
    """What alerts/day is computed from: the events' time span (at least ``MIN_SPAN``), and
    whether that is an extrapolation (under a day of data).

    >>> from datetime import UTC
    >>> start = datetime(2024, 5, 1, tzinfo=UTC)
    >>> report = BacktestReport([], [], first_event=start, last_event=start + timedelta(minutes=10),
    ...                         days=1 / 24)
    >>> rate_basis(report)
    'alerts/day: extrapolated from 1 hour (the events span 10 minutes; shorter spans count as 1 hour)'
    >>> rate_basis(BacktestReport([], [], first_event=start,
    ...                           last_event=start + timedelta(days=3), days=3.0))
    'alerts/day: alerts over the 3 days the events span'
    """
    actual = (report.last_event - report.first_event
              if report.first_event and report.last_event else timedelta(0))
    counted = timedelta(days=report.days)
    if counted >= timedelta(days=1):
        return f"alerts/day: alerts over the {duration(actual)} the events span"
    if actual < MIN_SPAN:
        return (f"alerts/day: extrapolated from {duration(MIN_SPAN)} (the events span "
                f"{duration(actual)}; shorter spans count as {duration(MIN_SPAN)})")
    return f"alerts/day: extrapolated from the {duration(actual)} the events span"


def duration(span: timedelta) -> str:
    """A span for people, to the minute (or in days from two days on).

    >>> duration(timedelta(minutes=10)), duration(timedelta(hours=1)), duration(timedelta(hours=25, minutes=2))
    ('10 minutes', '1 hour', '25 hours 2 minutes')
    >>> duration(timedelta(days=2, hours=12)), duration(timedelta(seconds=20))
    ('2.5 days', '0 minutes')
    """
    if span >= timedelta(days=2):
        return f"{span / timedelta(days=1):g} days"
    minutes = int(span.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def render_csv(report: BacktestReport) -> str:
    """One row per rule and side with every per-rule number (no dedup keys: see JSON)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    labels = _labels(report)
    extrapolated = 0 < report.days < 1
    for rule_id in report.rule_ids():
        for side in report.sides:
            stats = side.rules.get(rule_id)
            if stats is None:
                continue
            writer.writerow([labels[side.name], side.name, rule_id, stats.severity,
                             stats.matched_events, stats.alerts, stats.alerts_per_day,
                             stats.errors, _iso(stats.first_alert), _iso(stats.last_alert),
                             round(report.days, 6), str(extrapolated).lower()])
    return out.getvalue()


def _labels(report: BacktestReport) -> dict[str, str]:
    """Short labels for the sides: A, B, ..."""
    return {side.name: chr(ord("A") + i) if i < 26 else str(i)
            for i, side in enumerate(report.sides)}


def _summary_table(report: BacktestReport, labels: dict[str, str]) -> Table:
    many = len(report.sides) > 1
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title="per rule",
                  title_justify="left")
    table.add_column("rule", overflow="fold", ratio=1)
    if many:
        table.add_column("side", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    for column in ("events", "alerts", "alerts/day", "errors"):
        table.add_column(column, justify="right", no_wrap=True)
    for rule_id in report.rule_ids():
        found = [side.rules.get(rule_id) for side in report.sides]
        severity = next(s.severity for s in found if s is not None)
        for index, (side, stats) in enumerate(zip(report.sides, found, strict=True)):
            name = rule_id if index == 0 else ""
            side_cell = [labels[side.name]] if many else []
            table.add_row(name, *side_cell, *_cells(stats, severity))
    return table


def _cells(stats: RuleStats | None, severity: str) -> list[str]:
    if stats is None:
        return [severity, "off", "", "", ""]
    return [stats.severity, f"{stats.matched_events:,}", f"{stats.alerts:,}",
            _rate(stats.alerts_per_day), f"{stats.errors:,}"]


def _rate(value: float) -> str:
    """Alerts per day: whole numbers from 10 on, two decimals below.

    >>> _rate(85800.0), _rate(2.5), _rate(0.0)
    ('85,800', '2.50', '0')
    """
    if value == 0:
        return "0"
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}"


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[:WIDTH - 3] + "..."


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
