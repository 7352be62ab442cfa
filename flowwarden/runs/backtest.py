"""Backtests: run rules over historical flow logs and measure them, without alerting anyone.

The inputs are read once; each batch goes to one scanner per side (a side is the pack loaded with
one configuration), so two configurations are compared on exactly the same events. Per rule and
side the report gives the matched events, the alerts (dedup groups that reached the threshold),
alerts per day (alerts divided by the time from the first to the last event, counted as at least
one hour, so a short sample gives its rate extrapolated to a day), alerts per UTC date, the
busiest dedup keys, and the first and last alert time (an alert's time is its first event's
time).

The report is data (``BacktestReport``, ``to_json``); the CLI renders it for people.

>>> BacktestReport(sources=[], sides=[]).to_json()["records"]
0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.alerts.formats.jsonl import jsonable
from flowwarden.alerts.groupstore import RuleSummary
from flowwarden.alerts.model import Alert
from flowwarden.config import load_config
from flowwarden.engine.engines import Engine, Progress, batchwise_engine
from flowwarden.engine.loop import scan_loop
from flowwarden.rules.loader import Pack, load_pack, resolve_pack_paths
from flowwarden.runs.diskroom import room_to_scan

DEFAULT_TOP = 5
MIN_SPAN = timedelta(hours=1)


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
                 engine: str | Engine = "duckdb", rule_ids: Sequence[str] = (),
                 top: int = DEFAULT_TOP, progress: Progress | None = None) -> BacktestReport:
    """Scan ``sources`` once with every side's rules; nothing is written anywhere."""
    from flowwarden.logs import DEFAULT_OPTIONS, read

    chosen = batchwise_engine(engine, "backtest")
    scanners = [(name, chosen.scanner(pack, pack.active_rules(rule_ids))) for name, pack in sides]
    reader = read(list(sources), options or DEFAULT_OPTIONS)
    span = _Span()
    with room_to_scan():
        scan_loop(reader, [s for _, s in scanners], progress, extra_columns=("p_event_time",),
                  observe=span.add)
        totals = reader.stats.totals()
        report = BacktestReport(list(sources), [], totals["parsed"], totals["rejected"],
                                span.first, span.last, span.length_days(), len(span.days))
        for name, scanner in scanners:
            result = scanner.finish()
            side = SideReport(name)
            summaries = summarize(result.alerts, top)
            errors = result.errors_by_rule()
            for rule in scanner.rules:
                side.rules[rule.id] = stats_of(rule.id, rule.severity, result.matches[rule.id],
                                               summaries.get(rule.id), report.days,
                                               errors[rule.id])
            report.sides.append(side)
    return report


def summarize(alerts: Sequence[Alert], top: int) -> dict[str, RuleSummary]:
    """``rule_summary`` of each rule's alerts: in DuckDB for a scan's ``AlertTable`` (never
    all alerts in memory), else in Python."""
    in_duckdb = getattr(alerts, "rule_summaries", None)
    if in_duckdb is not None:
        found: dict[str, RuleSummary] = in_duckdb(top)
        return found
    by_rule: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_rule.setdefault(alert.rule_id, []).append(alert)
    return {rule: rule_summary(listed, top) for rule, listed in by_rule.items()}


def rule_summary(alerts: Sequence[Alert], top: int) -> RuleSummary:
    """One rule's alerts in figures: count, first and last alert time, alerts per UTC day, the
    ``top`` dedup strings by alerts, then events."""
    times = [a.first_event_time for a in alerts]
    per_key: dict[str, list[int]] = {}
    for alert in alerts:
        entry = per_key.setdefault(alert.dedup, [0, 0])
        entry[0] += 1
        entry[1] += alert.event_count
    ranked = sorted(per_key.items(), key=lambda d: (-d[1][0], -d[1][1], d[0]))
    return RuleSummary(len(alerts), min(times), max(times),
                       dict(sorted(Counter(t.date().isoformat() for t in times).items())),
                       [(dedup, count, events) for dedup, (count, events) in ranked[:top]])


def stats_of(rule_id: str, severity: str, matched: int, summary: RuleSummary | None,
             days: float, errors: int = 0) -> RuleStats:
    """A rule's ``RuleStats`` from its alerts' summary (None: no alerts)."""
    stats = RuleStats(rule_id, severity, matched, errors=errors)
    if summary is None:
        return stats
    stats.alerts = summary.alerts
    stats.alerts_per_day = round(summary.alerts / days, 2) if days else 0.0
    stats.first_alert, stats.last_alert = summary.first, summary.last
    stats.by_day = dict(summary.by_day)
    stats.top_dedup = [DedupStats(dedup, count, events) for dedup, count, events in summary.top]
    return stats


def rule_stats(rule_id: str, severity: str, matched: int, alerts: Sequence[Alert], days: float,
               top: int, errors: int = 0) -> RuleStats:
    """Summarize one rule's alerts (a list of them)."""
    summary = rule_summary(alerts, top) if alerts else None
    return stats_of(rule_id, severity, matched, summary, days, errors)


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
