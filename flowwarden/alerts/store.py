"""Where alerts go: JSON lines and a DuckDB alert store that never holds an alert twice."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import duckdb

from flowwarden.alerts.model import Alert


def jsonable(value: Any) -> Any:
    """Plain JSON values: datetimes as ISO 8601, bytes as base64, containers recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Decimal):
        return float(value)
    return value


def alert_json(alert: Alert) -> str:
    return json.dumps(jsonable(alert.to_dict()), sort_keys=True, ensure_ascii=False)


def write_lines(alerts: Iterable[Alert], out: IO[str],
                render: Callable[[Alert], str] = alert_json) -> int:
    """One rendered alert per line (flowwarden JSON by default); returns the number written."""
    count = 0
    for alert in alerts:
        out.write(render(alert) + "\n")
        count += 1
    return count


def write_lines_file(alerts: Iterable[Alert], path: str | os.PathLike[str],
                     render: Callable[[Alert], str] = alert_json) -> int:
    """Write to a temporary file and rename, so a reader never sees half a file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        count = write_lines(alerts, out, render)
    tmp.replace(target)
    return count


ALERT_COLUMNS = {
    "id": "VARCHAR PRIMARY KEY",
    "rule_id": "VARCHAR",
    "rule_name": "VARCHAR",
    "title": "VARCHAR",
    "severity": "VARCHAR",
    "dedup": "VARCHAR",
    "window_start": "TIMESTAMPTZ",
    "first_event_time": "TIMESTAMPTZ",
    "last_event_time": "TIMESTAMPTZ",
    "event_count": "BIGINT",
    "unique_count": "BIGINT",
    "threshold": "BIGINT",
    "mitre": "JSON",
    "runbook": "VARCHAR",
    "reference": "VARCHAR",
    "description": "VARCHAR",
    "log_types": "JSON",
    "alert_context": "JSON",
    "destinations": "JSON",
    "samples": "JSON",
}
JSON_COLUMNS = {name for name, kind in ALERT_COLUMNS.items() if kind == "JSON"}


class AlertStore:
    """A DuckDB file of alerts (table `alerts`) and scan statistics (table `scan_files`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.con = duckdb.connect(str(path))
        columns = ", ".join(f"{name} {kind}" for name, kind in ALERT_COLUMNS.items())
        self.con.execute(f"CREATE TABLE IF NOT EXISTS alerts ({columns})")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS scan_files (scan_id VARCHAR, source VARCHAR, "
            "log_type VARCHAR, records_read BIGINT, records_parsed BIGINT, "
            "records_rejected BIGINT, rejections JSON)"
        )

    def add(self, alerts: Iterable[Alert]) -> int:
        """Insert alerts; an alert whose id is already stored is replaced, never duplicated."""
        from flowwarden.alerts.delivery import upsert_alerts

        rows = list(alerts)
        if rows:
            upsert_alerts(self.con, rows)
        return len(rows)

    def add_scan_files(self, scan_id: str, files: Iterable[Mapping[str, Any]]) -> None:
        from flowwarden.alerts.delivery import record_scan_files

        record_scan_files(self.con, scan_id, list(files))

    def count(self) -> int:
        return self.con.execute("SELECT count(*) FROM alerts").fetchone()[0]

    def close(self) -> None:
        self.con.close()
