"""What a scan report shows, computed by DuckDB over an alert store (`flowwarden scan --store`).

A store can hold millions of alerts, so nothing here makes one Python object per alert: the
totals, the counts per rule and severity, the chart buckets and the top addresses and ports are
aggregated in SQL, and only the first `limit` alerts of each rule (by first event time, then id)
are read into Python, to be shown on the page. Reading is separate from rendering so the numbers
can be tested without parsing HTML.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from flowwarden.alerts.store import ALERT_COLUMNS, JSON_COLUMNS
from flowwarden.errors import Location, UsageError
from flowwarden.logic.render.sqltext import sql_literal

# Where an endpoint's value is found: alert context keys (data-model names, as the built-in
# rules' flow_context returns them), then raw record keys of each log type, for samples. An
# alert's value is the first non-empty one: every path in the context first, then every path in
# its first sample, its second sample, and so on (`endpoint_sql`).
ENDPOINT_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "source_ip": (("source_ip",), ("srcAddr",), ("src_endpoint", "ip")),
    "destination_ip": (("destination_ip",), ("dstAddr",), ("dst_endpoint", "ip")),
    "source_port": (("source_port",), ("srcPort",), ("src_endpoint", "port")),
    "destination_port": (("destination_port",), ("dstPort",), ("dst_endpoint", "port")),
}
TOP_N = 5
# Alerts embedded in the page per rule, by default; the rest stay in the store.
DEFAULT_LIMIT = 50
# Candidate chart bucket widths: the first that gives at most MAX_BUCKETS buckets is used.
BUCKET_WIDTHS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 360, 1440, 10080))
MAX_BUCKETS = 48
SEVERITY_ORDER = ("Critical", "High", "Medium", "Low", "Info")
# The order of the embedded alerts, and of the query the page offers for the rest.
ALERT_ORDER = "first_event_time, id"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ScanFile:
    """One input file's counts from the store's `scan_files` table."""

    scan_id: str
    source: str
    log_type: str | None
    read: int
    parsed: int
    rejected: int
    rejections: list[dict[str, Any]]


@dataclass(frozen=True)
class Bucket:
    """One bar of the alerts-over-time chart."""

    start: datetime
    alerts: int
    events: int


@dataclass(frozen=True)
class RuleCounts:
    """One rule's alerts in the store: per severity, in all, and the events behind them."""

    rule_id: str
    name: str
    severities: dict[str, int]
    alerts: int
    events: int


@dataclass
class ReportData:
    """Everything the report renders, already aggregated.

    `rules` is ordered by descending alert count, then rule id. `alerts` holds only the embedded
    alerts (dicts with the store's columns, JSON columns decoded): the first `limit` of each
    rule by first event time then id, grouped by rule in the order of `rules`.
    """

    source: str
    limit: int = DEFAULT_LIMIT
    rules: list[RuleCounts] = field(default_factory=list)
    bucket_width: timedelta = BUCKET_WIDTHS[0]
    bucket_list: list[Bucket] = field(default_factory=list)
    tops: dict[str, dict[str, list[tuple[str, int, int]]]] = field(default_factory=dict)
    files: list[ScanFile] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_alerts(self) -> int:
        return sum(rule.alerts for rule in self.rules)

    @property
    def total_events(self) -> int:
        return sum(rule.events for rule in self.rules)

    def by_rule_severity(self) -> dict[str, Counter[str]]:
        """Alert counts per rule and severity, rules ordered by descending count."""
        return {rule.rule_id: Counter(rule.severities) for rule in self.rules}

    def rule_names(self) -> dict[str, str]:
        return {rule.rule_id: rule.name for rule in self.rules}

    def buckets(self) -> tuple[timedelta, list[Bucket]]:
        """Alerts (and their events) per time bucket of first event time, empty buckets included."""
        return self.bucket_width, self.bucket_list

    def top_endpoints(self, rule_id: str) -> dict[str, list[tuple[str, int, int]]]:
        """Per endpoint kind, the most frequent values as (value, events, alerts)."""
        found = self.tops.get(rule_id, {})
        return {kind: list(found.get(kind, [])) for kind in ENDPOINT_KEYS}

    def embedded(self, rule_id: str) -> list[dict[str, Any]]:
        """The alerts of one rule that the page shows."""
        return [a for a in self.alerts if a["rule_id"] == rule_id]

    def file_totals(self) -> dict[str, int]:
        return {name: self.totals.get(name, 0) for name in ("read", "parsed", "rejected")}


def rest_of_rule_sql(rule_id: str, limit: int) -> str:
    """The DuckDB query for a rule's alerts after the first `limit` that a report embeds.

    >>> print(rest_of_rule_sql("it's", 50))
    SELECT * FROM alerts WHERE rule_id = 'it''s' ORDER BY first_event_time, id OFFSET 50;
    """
    return (f"SELECT * FROM alerts WHERE rule_id = {sql_literal(rule_id)} "
            f"ORDER BY {ALERT_ORDER} OFFSET {int(limit)};")


def endpoint_sql(kind: str, context: str = "alert_context", samples: str = "samples") -> str:
    """A DuckDB expression for an alert's `kind` endpoint as text, NULL when it has none.

    The context is tried first; the samples (a JSON array of raw records) only when the context
    has no value, because COALESCE evaluates an argument only for rows still NULL.
    """
    paths = ["$." + ".".join(path) for path in ENDPOINT_KEYS[kind]]
    in_context = [f"nullif(json_extract_string({context}, {sql_literal(p)}), '')" for p in paths]
    per_sample = ", ".join(f"nullif(json_extract_string(s, {sql_literal(p)}), '')" for p in paths)
    in_samples = (f"list_filter(list_transform(json_extract({samples}, '$[*]'), "
                  f"lambda s: coalesce({per_sample})), lambda v: v IS NOT NULL)[1]")
    return f"coalesce({', '.join(in_context)}, {in_samples})"


def load_report_data(store_path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT) -> ReportData:
    """Aggregate a store (opened read-only) and read the first `limit` alerts of each rule."""
    if limit < 0:
        raise UsageError(f"the number of alerts shown per rule must be 0 or more, not {limit}")
    path = Path(store_path)
    if not path.is_file():
        raise UsageError("alert store not found", Location(str(path)))
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise UsageError(f"not a DuckDB alert store: {exc}", Location(str(path))) from None
    try:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables")
                  .fetchall()}
        if "alerts" not in tables:
            raise UsageError("no alerts table: not a flowwarden alert store", Location(str(path)))
        con.execute("SET enable_progress_bar = false")
        data = ReportData(str(path), limit, rules=_rules(con))
        data.bucket_width, data.bucket_list = _buckets(con)
        data.tops = _tops(con)
        data.alerts = _first_alerts(con, [rule.rule_id for rule in data.rules], limit)
        if "scan_files" in tables:
            data.files, data.totals = _files(con)
    finally:
        con.close()
    return data


def _rules(con: duckdb.DuckDBPyConnection) -> list[RuleCounts]:
    rows = con.execute(
        "SELECT rule_id, severity, count(*), coalesce(sum(event_count), 0), "
        "arg_max(rule_name, first_event_time), max(first_event_time) "
        "FROM alerts GROUP BY rule_id, severity"
    ).fetchall()
    grouped: dict[str, dict[str, Any]] = {}
    for rule_id, severity, alerts, events, name, latest in rows:
        rule = grouped.setdefault(rule_id, {"severities": {}, "alerts": 0, "events": 0,
                                            "name": None, "latest": None})
        rule["severities"][severity] = int(alerts)
        rule["alerts"] += int(alerts)
        rule["events"] += int(events)
        if name and (rule["name"] is None or (latest is not None and (
                rule["latest"] is None or latest > rule["latest"]))):
            rule["name"], rule["latest"] = name, latest
    ordered = sorted(grouped.items(), key=lambda kv: (-kv[1]["alerts"], kv[0]))
    return [RuleCounts(rule_id, rule["name"] or rule_id, rule["severities"], rule["alerts"],
                       rule["events"]) for rule_id, rule in ordered]


def bucket_width(first: datetime, last: datetime) -> timedelta:
    """The narrowest preset width giving fewer than MAX_BUCKETS buckets, else whole days."""
    width = next((w for w in BUCKET_WIDTHS if (last - first) / w < MAX_BUCKETS), None)
    if width is None:  # longer than the widest preset allows: whole days, up to 48 buckets
        width = timedelta(days=(last - first).days // (MAX_BUCKETS - 1) + 1)
    return width


def _buckets(con: duckdb.DuckDBPyConnection) -> tuple[timedelta, list[Bucket]]:
    row = con.execute("SELECT min(first_event_time), max(first_event_time) FROM alerts").fetchone()
    if row is None or row[0] is None:
        return BUCKET_WIDTHS[0], []
    first, last = (value.astimezone(UTC) for value in row)
    width = bucket_width(first, last)
    origin = _EPOCH + ((first - _EPOCH) // width) * width
    origin_us, width_us = _microseconds(origin - _EPOCH), _microseconds(width)
    count = int((last - origin) // width) + 1
    alerts, events = [0] * count, [0] * count
    for index, n, total in con.execute(
        "SELECT (epoch_us(first_event_time) - ?) // ? AS bucket, count(*), "
        "coalesce(sum(event_count), 0) FROM alerts WHERE first_event_time IS NOT NULL "
        "GROUP BY bucket", [origin_us, width_us],
    ).fetchall():
        alerts[int(index)], events[int(index)] = int(n), int(total)
    return width, [Bucket(origin + i * width, alerts[i], events[i]) for i in range(count)]


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _tops(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, list[tuple[str, int, int]]]]:
    """The TOP_N values of each endpoint kind per rule, weighted by events (at least 1 each)."""
    kinds = list(ENDPOINT_KEYS)
    values = ", ".join(f"{endpoint_sql(kind)} AS e{i}" for i, kind in enumerate(kinds))
    sets = ", ".join(f"(rule_id, e{i})" for i in range(len(kinds)))
    # In the grouping set of e{i} the other e columns are NULL, so coalesce gives its value;
    # grouping(...) tells the sets apart (bit i from the right is 0 for the grouped column).
    marks = ", ".join(f"e{i}" for i in range(len(kinds)))
    rows = con.execute(f"""
        WITH ends AS (
            SELECT rule_id, coalesce(nullif(event_count, 0), 1) AS weight, {values} FROM alerts
        ), counted AS (
            SELECT rule_id, grouping({marks}) AS set_mark, coalesce({marks}) AS value,
                   sum(weight) AS events, count(*) AS alerts
            FROM ends GROUP BY GROUPING SETS ({sets})
        )
        SELECT rule_id, set_mark, value, events, alerts FROM counted WHERE value IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY rule_id, set_mark
                                   ORDER BY events DESC, alerts DESC, value) <= ?
        ORDER BY rule_id, set_mark, events DESC, alerts DESC, value
    """, [TOP_N]).fetchall()
    everything = (1 << len(kinds)) - 1
    by_mark = {everything ^ (1 << (len(kinds) - 1 - i)): kind for i, kind in enumerate(kinds)}
    tops: dict[str, dict[str, list[tuple[str, int, int]]]] = {}
    for rule_id, mark, value, events, alerts in rows:
        kind = by_mark[int(mark)]
        tops.setdefault(rule_id, {}).setdefault(kind, []).append((value, int(events), int(alerts)))
    return tops


def _first_alerts(con: duckdb.DuckDBPyConnection, rule_ids: list[str],
                  limit: int) -> list[dict[str, Any]]:
    """The first `limit` alerts of each rule; one ORDER BY ... LIMIT query per rule, which DuckDB
    answers from the narrow sort columns, reading the wide ones for those rows only."""
    names = list(ALERT_COLUMNS)
    alerts: list[dict[str, Any]] = []
    if limit == 0:
        return alerts
    query = (f"SELECT {', '.join(names)} FROM alerts WHERE rule_id = ? "
             f"ORDER BY {ALERT_ORDER} LIMIT ?")
    for rule_id in rule_ids:
        for row in con.execute(query, [rule_id, limit]).fetchall():
            alert = dict(zip(names, row, strict=True))
            for name in JSON_COLUMNS:
                if isinstance(alert[name], str):
                    alert[name] = json.loads(alert[name])
            for name in ("window_start", "first_event_time", "last_event_time"):
                if isinstance(alert[name], datetime):
                    alert[name] = alert[name].astimezone(UTC)
            alerts.append(alert)
    return alerts


def _files(con: duckdb.DuckDBPyConnection) -> tuple[list[ScanFile], dict[str, int]]:
    rows = con.execute(
        "SELECT scan_id, source, log_type, records_read, records_parsed, records_rejected, "
        "rejections FROM scan_files ORDER BY source, scan_id"
    ).fetchall()
    files = []
    for scan_id, source, log_type, read, parsed, rejected, rejections in rows:
        details = json.loads(rejections) if isinstance(rejections, str) else rejections or []
        files.append(ScanFile(str(scan_id), str(source), log_type, int(read or 0),
                              int(parsed or 0), int(rejected or 0), list(details)))
    row = con.execute(
        "SELECT coalesce(sum(records_read), 0), coalesce(sum(records_parsed), 0), "
        "coalesce(sum(records_rejected), 0) FROM scan_files"
    ).fetchone()
    read, parsed, rejected = (int(v) for v in row) if row else (0, 0, 0)
    return files, {"read": read, "parsed": parsed, "rejected": rejected}
