"""Backtests: run rules over historical flow logs and measure them, without alerting anyone.

The inputs are read once; each batch goes to one scanner per side (a side is the pack loaded with
one configuration), so two configurations are compared on exactly the same events. Per rule and
side the report gives the matched events, the alerts (dedup groups that reached the threshold),
alerts per day (alerts divided by the time from the first to the last event, counted as at least
one hour, so a short sample gives its rate extrapolated to a day), alerts per UTC date, the
busiest dedup keys, and the first and last alert time (an alert's time is its first event's
time).

>>> from flowwarden.runs.backtest import BacktestReport
>>> render_backtest(BacktestReport(sources=[], sides=[]), "json").startswith("{")
True
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from flowwarden.alerts.model import Alert
from flowwarden.alerts.store import jsonable
from flowwarden.config import load_config
from flowwarden.engine.scan import Scanner
from flowwarden.rules.loader import Pack, load_pack, resolve_pack_paths

DEFAULT_TOP = 5
MIN_SPAN = timedelta(hours=1)
FORMATS = ("text", "json")


@dataclass
class DedupStats:
    """One dedup key of a rule: how many alerts and events it had."""

    dedup: str
    alerts: int
    events: int


@dataclass
class RuleStats:
    """What one rule did over the data on one side."""

    rule_id: str
    severity: str
    matched_events: int = 0
    alerts: int = 0
    alerts_per_day: float = 0.0
    errors: int = 0
    first_alert: datetime | None = None
    last_alert: datetime | None = None
    by_day: dict[str, int] = field(default_factory=dict)
    top_dedup: list[DedupStats] = field(default_factory=list)


@dataclass
class SideReport:
    """One configuration's results: its name and the stats of each rule it ran."""

    name: str
    rules: dict[str, RuleStats] = field(default_factory=dict)


@dataclass
class BacktestReport:
    """The data that was scanned and every side's per-rule results."""

    sources: list[str]
    sides: list[SideReport]
    records: int = 0
    rejected: int = 0
    first_event: datetime | None = None
    last_event: datetime | None = None
    days: float = 0.0  # first to last event, in days (at least MIN_SPAN when there are events)
    dates: int = 0  # UTC dates with events

    def rule_ids(self) -> list[str]:
        """Every rule that ran on any side, in first-seen order."""
        return list(dict.fromkeys(r for side in self.sides for r in side.rules))

    def to_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


Side = tuple[str, Pack]


def load_sides(packs: Sequence[str], config_paths: Sequence[str]) -> list[Side]:
    """The packs loaded once per configuration (or once with the default configuration)."""
    paths = resolve_pack_paths(packs)
    if not config_paths:
        return [("default", load_pack(paths, load_config(None)))]
    return [(path, load_pack(paths, load_config(path))) for path in config_paths]


def run_backtest(sources: Sequence[str], sides: Sequence[Side], options: Any = None, *,
                 engine: str = "duckdb", rule_ids: Sequence[str] = (), top: int = DEFAULT_TOP,
                 progress: Callable[[int], None] | None = None) -> BacktestReport:
    """Scan ``sources`` once with every side's rules; nothing is written anywhere."""
    from flowwarden.logs import DEFAULT_OPTIONS, read

    scanners = [(name, Scanner(pack, pack.active_rules(rule_ids), engine)) for name, pack in sides]
    reader = read(list(sources), options or DEFAULT_OPTIONS)
    span = _Span()
    for item in reader:
        span.add(item.batch)
        for _, scanner in scanners:
            scanner.add_batch(item)
        if progress is not None:
            progress(item.batch.num_rows)
    totals = reader.stats.totals()
    report = BacktestReport(list(sources), [], totals["parsed"], totals["rejected"],
                            span.first, span.last, span.length_days(), len(span.days))
    for name, scanner in scanners:
        result = scanner.finish()
        side = SideReport(name)
        errors: Counter[str] = Counter()
        for (rule_id, _), count in result.error_counts.items():
            errors[rule_id] += count
        for rule in scanner.rules:
            alerts = [a for a in result.alerts if a.rule_id == rule.id]
            side.rules[rule.id] = rule_stats(rule.id, rule.severity, result.matches[rule.id],
                                             alerts, report.days, top, errors[rule.id])
        report.sides.append(side)
    return report


def rule_stats(rule_id: str, severity: str, matched: int, alerts: Sequence[Alert], days: float,
               top: int, errors: int = 0) -> RuleStats:
    """Summarize one rule's alerts."""
    stats = RuleStats(rule_id, severity, matched, len(alerts), errors=errors)
    stats.alerts_per_day = round(len(alerts) / days, 2) if days else 0.0
    times = [a.first_event_time for a in alerts]
    stats.first_alert, stats.last_alert = (min(times), max(times)) if times else (None, None)
    stats.by_day = dict(sorted(Counter(t.date().isoformat() for t in times).items()))
    per_key: dict[str, DedupStats] = {}
    for alert in alerts:
        entry = per_key.setdefault(alert.dedup, DedupStats(alert.dedup, 0, 0))
        entry.alerts += 1
        entry.events += alert.event_count
    ranked = sorted(per_key.values(), key=lambda d: (-d.alerts, -d.events, d.dedup))
    stats.top_dedup = ranked[:top]
    return stats


class _Span:
    """The first and last event time and the set of UTC days of the scanned records."""

    def __init__(self) -> None:
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.days: set[date] = set()

    def add(self, batch: pa.RecordBatch) -> None:
        if "p_event_time" not in batch.schema.names or batch.num_rows == 0:
            return
        column = batch.column("p_event_time")
        if not pa.types.is_timestamp(column.type):
            return
        low, high = pc.min_max(column).values()
        if not low.is_valid:
            return
        low, high = _aware(low.as_py()), _aware(high.as_py())
        self.first = low if self.first is None else min(self.first, low)
        self.last = high if self.last is None else max(self.last, high)
        # Timestamps hold UTC instants whatever their zone: dropping it gives UTC wall time.
        naive = pc.cast(column, pa.timestamp(column.type.unit))
        days = pc.unique(pc.cast(naive, pa.date32()))
        self.days.update(d for d in days.to_pylist() if d is not None)

    def length_days(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return max(self.last - self.first, MIN_SPAN) / timedelta(days=1)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
