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
from flowwarden.util.duckfiles import MEMORY_LIMIT
from flowwarden.util.scratch import scratch_directory

# Where an endpoint's value is found: alert context keys (data-model names, as the built-in
# rules' flow_context returns them), then raw record keys of each log type, for samples. An
# alert's value is the first non-empty one: every path in the context first, then every path in
# its first sample, its second sample, and so on (`endpoint_query`).
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
# DuckDB keeps the store's blocks it reads in memory up to its limit (80% of RAM by default);
# the report reads gigabytes of a large store once, so it gets a small budget and spills
# anything larger to a temporary folder of its own (the store's folder may be read-only).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ScanFile:
    """One distinct input (by path and content fingerprint) of the store's `scan_files` table,
    with its counts and how many scans read it."""

    scans: int
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

    @property
    def scans(self) -> int:
        """How many scans contributed input statistics to the store."""
        return self.totals.get("scans", 0)


def rest_of_rule_sql(rule_id: str, limit: int) -> str:
    """The DuckDB query for a rule's alerts after the first `limit` that a report embeds.

    >>> print(rest_of_rule_sql("it's", 50))
    SELECT * FROM alerts WHERE rule_id = 'it''s' ORDER BY first_event_time, id OFFSET 50;
    """
    return (f"SELECT * FROM alerts WHERE rule_id = {sql_literal(rule_id)} "
            f"ORDER BY {ALERT_ORDER} OFFSET {sql_literal(int(limit))};")


def load_report_data(store_path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT) -> ReportData:
    """Aggregate a store (opened read-only) and read the first `limit` alerts of each rule."""
    if limit < 0:
        raise UsageError(f"the number of alerts shown per rule must be 0 or more, not {limit}")
    path = Path(store_path)
    if not path.is_file():
        raise UsageError("alert store not found", Location(str(path)))
    with scratch_directory("flowwarden-report-") as spill:
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise UsageError(f"not a DuckDB alert store: {exc}", Location(str(path))) from None
        try:
            return _read(con, path, limit, spill)
        finally:
            con.close()


def _read(con: duckdb.DuckDBPyConnection, path: Path, limit: int, spill: Path) -> ReportData:
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables")
              .fetchall()}
    if "alerts" not in tables:
        raise UsageError("no alerts table: not a flowwarden alert store", Location(str(path)))
    con.execute("SET enable_progress_bar = false")
    con.execute("SET memory_limit = ?", [MEMORY_LIMIT])
    con.execute("SET temp_directory = ?", [str(spill)])
    data = ReportData(str(path), limit, rules=_rules(con))
    data.bucket_width, data.bucket_list = _buckets(con)
    data.tops = _tops(con)
    data.alerts = _first_alerts(con, [rule.rule_id for rule in data.rules], limit)
    if "scan_files" in tables:
        data.files, data.totals = _files(con)
    return data


def _rules(con: duckdb.DuckDBPyConnection) -> list[RuleCounts]:
    """Alerts and events per rule and severity; a rule's name is that of its latest alert (by
    first event time), as rule files may have renamed it between scans."""
    counts = con.execute(
        "SELECT rule_id, severity, count(*), coalesce(sum(event_count), 0) FROM alerts "
        "GROUP BY rule_id, severity"
    ).fetchall()
    names = dict(con.execute(
        "SELECT rule_id, arg_max(rule_name, first_event_time) FROM alerts GROUP BY rule_id"
    ).fetchall())
    severities: dict[str, dict[str, int]] = {}
    events: Counter[str] = Counter()
    for rule_id, severity, alerts, total in counts:
        severities.setdefault(rule_id, {})[severity] = int(alerts)
        events[rule_id] += int(total)
    rules = [RuleCounts(rule_id, names.get(rule_id) or rule_id, by_severity,
                        sum(by_severity.values()), events[rule_id])
             for rule_id, by_severity in severities.items()]
    return sorted(rules, key=lambda rule: (-rule.alerts, rule.rule_id))


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
    return delta // timedelta(microseconds=1)


def _paths(kind: str) -> list[str]:
    return ["$." + ".".join(path) for path in ENDPOINT_KEYS[kind]]


def _path_list(paths: list[str]) -> str:
    return "[" + ", ".join(sql_literal(path) for path in paths) + "]"


def _first_found(values: str, kind: str, offset: int) -> str:
    """The first non-empty of `kind`'s paths in `values`, a list of json_extract_string results
    whose paths for `kind` start at index `offset` (1-based)."""
    found = (f"nullif({values}[{offset + i}], '')" for i in range(len(ENDPOINT_KEYS[kind])))
    return f"coalesce({', '.join(found)})"


def endpoint_query() -> str:
    """The SQL of the most frequent endpoint values per rule and kind, as many as its one
    parameter says: one row per rule and kind with the rule id, a grouping mark for the kind and
    a list of {value, events, alerts} structs, best first.

    An alert's value is found as `ENDPOINT_KEYS` says. One pass reads only each context's first
    (data-model) key per kind, which the built-in rules' alerts all carry; the alerts where one
    is missing, null or empty (a small share) get the whole lookup, context then samples,
    fetched by row id so that the large `samples` column is read for those rows only. Each
    alert counts its events (at least 1) and itself towards its value of each kind.
    """
    kinds = list(ENDPOINT_KEYS)
    everything = [path for kind in kinds for path in _paths(kind)]
    offsets, at = [], 1
    for kind in kinds:
        offsets.append(at)
        at += len(ENDPOINT_KEYS[kind])
    cols = [f"e{i}" for i in range(len(kinds))]
    primary = _path_list([_paths(kind)[0] for kind in kinds])
    firsts = ", ".join(f"nullif(c[{i + 1}], '') AS {col}" for i, col in enumerate(cols))
    lacking = " OR ".join(f"{col} IS NULL" for col in cols)
    found = ", ".join(f"{_first_found('v', kind, offsets[i])} AS x{i}"
                      for i, kind in enumerate(kinds))
    earliest = ", ".join(f"arg_min(x{i}, k) FILTER (WHERE x{i} IS NOT NULL) AS f{i}"
                         for i in range(len(kinds)))
    filled = ", ".join(f"CASE WHEN {col} IS NULL THEN f{i} END" for i, col in enumerate(cols))
    sets = ", ".join(f"(rule_id, {col})" for col in cols)
    marks = ", ".join(cols)
    return f"""
        WITH ends AS MATERIALIZED (
            SELECT r, rule_id, weight, {firsts}
            FROM (SELECT rowid AS r, rule_id, coalesce(nullif(event_count, 0), 1) AS weight,
                         json_extract_string(alert_context, {primary}) AS c FROM alerts)
        ), lacking AS (
            SELECT rowid AS r, json_extract_string(alert_context, {_path_list(everything)}) AS c,
                   json_extract(samples, '$[*]') AS records
            FROM alerts WHERE rowid IN (SELECT r FROM ends WHERE {lacking})
        ), records AS (
            -- the context is record 0, the samples records 1, 2, ...
            SELECT r, 0 AS k, c AS v FROM lacking
            UNION ALL
            SELECT r, k, json_extract_string(s, {_path_list(everything)}) AS v
            FROM (SELECT r, unnest(records) AS s, generate_subscripts(records, 1) AS k
                  FROM lacking)
        ), earliest AS (
            SELECT r, {earliest} FROM (SELECT r, k, {found} FROM records) GROUP BY r
        ), valued AS (
            SELECT rule_id, weight, {marks} FROM ends
            UNION ALL
            SELECT rule_id, weight, {filled} FROM ends JOIN earliest USING (r)
        ), counted AS (
            -- in the grouping set of one e column the others are NULL, so coalesce is its value
            SELECT rule_id, grouping({marks}) AS mark, coalesce({marks}) AS value,
                   sum(weight) AS events, count(*) AS alerts
            FROM valued GROUP BY GROUPING SETS ({sets})
        )
        SELECT rule_id, mark,
               arg_min({{'value': value, 'events': events, 'alerts': alerts}},
                       {{'e': -events, 'a': -alerts, 'v': value}}, ?)
        FROM counted WHERE value IS NOT NULL GROUP BY rule_id, mark
    """


def _tops(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, list[tuple[str, int, int]]]]:
    """The TOP_N values of each endpoint kind per rule, by events, then alerts, then value."""
    kinds = list(ENDPOINT_KEYS)
    everything = (1 << len(kinds)) - 1
    # grouping(e0, e1, ...) has a 0 bit (e0 leftmost) for the column grouped on
    by_mark = {everything ^ (1 << (len(kinds) - 1 - i)): kind for i, kind in enumerate(kinds)}
    tops: dict[str, dict[str, list[tuple[str, int, int]]]] = {}
    for rule_id, mark, best in con.execute(endpoint_query(), [TOP_N]).fetchall():
        tops.setdefault(rule_id, {})[by_mark[int(mark)]] = [
            (item["value"], int(item["events"]), int(item["alerts"])) for item in best]
    return tops


def _first_alerts(con: duckdb.DuckDBPyConnection, rule_ids: list[str],
                  limit: int) -> list[dict[str, Any]]:
    """The first `limit` alerts of each rule, grouped by rule in the order of `rule_ids`.

    One pass picks their row ids from the narrow sort columns; only those rows' wide columns
    (context, samples) are read.
    """
    names = list(ALERT_COLUMNS)
    if limit == 0:
        return []
    rows = con.execute(
        f"SELECT {', '.join(names)} FROM alerts WHERE rowid IN ("
        "SELECT unnest(arg_min(rowid, {'t': first_event_time, 'i': id}, ?)) FROM alerts "
        f"GROUP BY rule_id) ORDER BY rule_id, {ALERT_ORDER}", [limit]
    ).fetchall()
    by_rule: dict[str, list[dict[str, Any]]] = {rule_id: [] for rule_id in rule_ids}
    for row in rows:
        alert = dict(zip(names, row, strict=True))
        for name in JSON_COLUMNS:
            if isinstance(alert[name], str):
                alert[name] = json.loads(alert[name])
        for name in ("window_start", "first_event_time", "last_event_time"):
            if isinstance(alert[name], datetime):
                alert[name] = alert[name].astimezone(UTC)
        by_rule.setdefault(alert["rule_id"], []).append(alert)
    return [alert for alerts in by_rule.values() for alert in alerts]


def _files(con: duckdb.DuckDBPyConnection) -> tuple[list[ScanFile], dict[str, int]]:
    """Each distinct input once, whatever number of scans read it: the same path with the same
    fingerprint (size and ETag or mtime) is one input; its counts are those of one scan."""
    names = {row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'scan_files'"
    ).fetchall()}
    # a store written before inputs had fingerprints: each path is one input
    scan_files = ("scan_files" if "fingerprint" in names
                  else "(SELECT *, NULL::VARCHAR AS fingerprint FROM scan_files)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE report_inputs AS
        SELECT source, fingerprint, count(DISTINCT scan_id) AS scans,
               arg_min(log_type, scan_id) AS log_type,
               arg_min(records_read, scan_id) AS records_read,
               arg_min(records_parsed, scan_id) AS records_parsed,
               arg_min(records_rejected, scan_id) AS records_rejected,
               arg_min(rejections, scan_id) AS rejections
        FROM {scan_files} GROUP BY source, fingerprint""")
    rows = con.execute(
        "SELECT scans, source, log_type, records_read, records_parsed, records_rejected, "
        "rejections FROM report_inputs ORDER BY source, fingerprint NULLS FIRST"
    ).fetchall()
    files = []
    for scans, source, log_type, read, parsed, rejected, rejections in rows:
        details = json.loads(rejections) if isinstance(rejections, str) else rejections or []
        files.append(ScanFile(int(scans), str(source), log_type, int(read or 0),
                              int(parsed or 0), int(rejected or 0), list(details)))
    row = con.execute(
        "SELECT coalesce(sum(records_read), 0), coalesce(sum(records_parsed), 0), "
        "coalesce(sum(records_rejected), 0), (SELECT count(DISTINCT scan_id) FROM scan_files) "
        "FROM report_inputs"
    ).fetchone()
    read, parsed, rejected, scans = (int(v) for v in row) if row else (0, 0, 0, 0)
    return files, {"read": read, "parsed": parsed, "rejected": rejected, "scans": scans}
