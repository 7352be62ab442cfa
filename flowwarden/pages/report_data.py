"""What a scan report shows, read from an alert store (`flowwarden scan --store`).

Reading is separate from rendering so the numbers can be tested without parsing HTML.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from flowwarden.alerts.store import ALERT_COLUMNS, JSON_COLUMNS
from flowwarden.errors import Location, UsageError

# Where an endpoint's value is found: alert context keys (data-model names, as the built-in
# rules' flow_context returns them), then raw record keys of each log type, for samples.
ENDPOINT_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "source_ip": (("source_ip",), ("srcAddr",), ("src_endpoint", "ip")),
    "destination_ip": (("destination_ip",), ("dstAddr",), ("dst_endpoint", "ip")),
    "source_port": (("source_port",), ("srcPort",), ("src_endpoint", "port")),
    "destination_port": (("destination_port",), ("dstPort",), ("dst_endpoint", "port")),
}
TOP_N = 5
# Candidate chart bucket widths: the first that gives at most MAX_BUCKETS buckets is used.
BUCKET_WIDTHS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 360, 1440, 10080))
MAX_BUCKETS = 48
SEVERITY_ORDER = ("Critical", "High", "Medium", "Low", "Info")


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


@dataclass
class ReportData:
    """Everything the report renders; `alerts` are dicts with the store's columns."""

    source: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    files: list[ScanFile] = field(default_factory=list)

    def by_rule_severity(self) -> dict[str, Counter[str]]:
        """Alert counts per rule and severity, rules ordered by descending count."""
        table: dict[str, Counter[str]] = {}
        for alert in self.alerts:
            table.setdefault(alert["rule_id"], Counter())[alert["severity"]] += 1
        return dict(sorted(table.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])))

    def rule_names(self) -> dict[str, str]:
        return {a["rule_id"]: a.get("rule_name") or a["rule_id"] for a in self.alerts}

    def buckets(self) -> tuple[timedelta, list[Bucket]]:
        """Alerts (and their events) per time bucket of first event time, empty buckets included."""
        times = [a["first_event_time"] for a in self.alerts if a.get("first_event_time")]
        if not times:
            return BUCKET_WIDTHS[0], []
        first, last = min(times), max(times)
        width = next((w for w in BUCKET_WIDTHS if (last - first) / w < MAX_BUCKETS), None)
        if width is None:  # longer than the widest preset allows: whole days, up to 48 buckets
            width = timedelta(days=(last - first).days // (MAX_BUCKETS - 1) + 1)
        origin = _floor(first, width)
        count = int((last - origin) // width) + 1
        alerts, events = [0] * count, [0] * count
        for alert in self.alerts:
            when = alert.get("first_event_time")
            if when is None:
                continue
            index = int((when - origin) // width)
            alerts[index] += 1
            events[index] += int(alert.get("event_count") or 0)
        return width, [Bucket(origin + i * width, alerts[i], events[i]) for i in range(count)]

    def top_endpoints(self, rule_id: str) -> dict[str, list[tuple[str, int, int]]]:
        """Per endpoint kind, the most frequent values as (value, events, alerts)."""
        result: dict[str, list[tuple[str, int, int]]] = {}
        for kind in ENDPOINT_KEYS:
            events: Counter[str] = Counter()
            alerts: Counter[str] = Counter()
            for alert in self.alerts:
                if alert["rule_id"] != rule_id:
                    continue
                value = endpoint_value(alert, kind)
                if value is not None:
                    events[value] += int(alert.get("event_count") or 1)
                    alerts[value] += 1
            ranked = sorted(events, key=lambda v: (-events[v], -alerts[v], v))[:TOP_N]
            result[kind] = [(v, events[v], alerts[v]) for v in ranked]
        return result

    def file_totals(self) -> dict[str, int]:
        return {
            "read": sum(f.read for f in self.files),
            "parsed": sum(f.parsed for f in self.files),
            "rejected": sum(f.rejected for f in self.files),
        }


def endpoint_value(alert: Mapping[str, Any], kind: str) -> str | None:
    """An alert's endpoint value from its context, else from its first sample that has one."""
    context = alert.get("alert_context") or {}
    candidates = [context, *(alert.get("samples") or [])]
    for record in candidates:
        if not isinstance(record, Mapping):
            continue
        for path in ENDPOINT_KEYS[kind]:
            value = _dig(record, path)
            if value not in (None, ""):
                return str(value)
    return None


def _dig(record: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _floor(moment: datetime, width: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo or UTC)
    return epoch + ((moment - epoch) // width) * width


def load_report_data(store_path: str | os.PathLike[str]) -> ReportData:
    """Read every alert and scan file of a store, opened read-only."""
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
        data = ReportData(str(path), _alerts(con), _files(con) if "scan_files" in tables else [])
    finally:
        con.close()
    return data


def _alerts(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = list(ALERT_COLUMNS)
    order = "first_event_time, rule_id, id"
    rows = con.execute(f"SELECT {', '.join(names)} FROM alerts ORDER BY {order}").fetchall()
    alerts = []
    for row in rows:
        alert = dict(zip(names, row, strict=True))
        for name in JSON_COLUMNS:
            if isinstance(alert[name], str):
                alert[name] = json.loads(alert[name])
        for name in ("window_start", "first_event_time", "last_event_time"):
            if isinstance(alert[name], datetime):
                alert[name] = alert[name].astimezone(UTC)
        alerts.append(alert)
    return alerts


def _files(con: duckdb.DuckDBPyConnection) -> list[ScanFile]:
    rows = con.execute(
        "SELECT scan_id, source, log_type, records_read, records_parsed, records_rejected, "
        "rejections FROM scan_files ORDER BY source, scan_id"
    ).fetchall()
    files = []
    for scan_id, source, log_type, read, parsed, rejected, rejections in rows:
        details = json.loads(rejections) if isinstance(rejections, str) else rejections or []
        files.append(ScanFile(str(scan_id), str(source), log_type, int(read or 0),
                              int(parsed or 0), int(rejected or 0), list(details)))
    return files
