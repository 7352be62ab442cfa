"""The alert store: a DuckDB file of alerts (one row per alert id) and per-input scan statistics.

Writing the same alerts again replaces their rows, so delivering a batch twice gives the same
store as delivering it once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from flowwarden.alerts.formats.jsonl import dumps, jsonable
from flowwarden.alerts.model import Alert
from flowwarden.errors import Location, UsageError
from flowwarden.util.duckfiles import connect_file
from flowwarden.util.registered import registered, temporary_table
from flowwarden.util.writable import check_file_target

TIMESTAMP = pa.timestamp("us", tz="UTC")
SCAN_FILES_TABLE = (
    "CREATE TABLE IF NOT EXISTS scan_files (scan_id VARCHAR, source VARCHAR, log_type VARCHAR, "
    "records_read BIGINT, records_parsed BIGINT, records_rejected BIGINT, rejections JSON, "
    "fingerprint VARCHAR)"
)
# Stores written before inputs had fingerprints get the column (empty for their rows).
SCAN_FILES_UPGRADE = "ALTER TABLE scan_files ADD COLUMN IF NOT EXISTS fingerprint VARCHAR"
ARROW_TYPES = {"window_start": TIMESTAMP, "first_event_time": TIMESTAMP,
               "last_event_time": TIMESTAMP, "event_count": pa.int64(), "unique_count": pa.int64(),
               "threshold": pa.int64()}


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
ALERTS_TABLE = ("CREATE TABLE IF NOT EXISTS alerts ("
                + ", ".join(f"{name} {kind}" for name, kind in ALERT_COLUMNS.items()) + ")")
# The alerts table's rows as Arrow loads them (JSON columns as text).
ALERT_SCHEMA = pa.schema([(name, ARROW_TYPES.get(name, pa.string())) for name in ALERT_COLUMNS])


class AlertStore:
    """A DuckDB file of alerts (table `alerts`) and scan statistics (table `scan_files`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self.con = connect_file(str(path))
        except duckdb.Error as exc:
            raise UsageError(f"cannot open the alert store: {first_line(exc)}",
                             Location(str(path))) from None
        self.con.execute(ALERTS_TABLE)
        self.con.execute(SCAN_FILES_TABLE)
        self.con.execute(SCAN_FILES_UPGRADE)

    def add(self, alerts: Iterable[Alert]) -> int:
        """Insert alerts; an alert whose id is already stored is replaced, never duplicated."""
        rows = list(alerts)
        if rows:
            upsert_alerts(self.con, rows)
        return len(rows)

    def add_scan_files(self, scan_id: str, files: Iterable[Mapping[str, Any]]) -> None:
        record_scan_files(self.con, scan_id, list(files))

    def count(self) -> int:
        row = self.con.execute("SELECT count(*) FROM alerts").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.con.close()


def check_store(path: str | os.PathLike[str], option: str = "--store") -> None:
    """Raise UsageError unless ``path`` can be opened as a DuckDB alert store now: writable,
    and, if it exists, a DuckDB file no other process holds (DuckDB locks a file per process)."""
    check_file_target(path, option)
    if not os.path.isfile(path):
        return  # DuckDB creates it
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.Error as exc:
        raise UsageError(f"{option}: cannot open it: {first_line(exc)}",
                         Location(str(path))) from None


def first_line(exc: BaseException) -> str:
    """An exception's message up to its first line break (DuckDB adds hints on later lines)."""
    return str(exc).strip().split("\n", 1)[0]


def upsert_alerts(con: duckdb.DuckDBPyConnection, alerts: Sequence[Alert]) -> None:
    """Insert or replace (by id) alerts in the ``alerts`` table of an alert store.

    The same rows as ``AlertStore.add``, loaded through Arrow: with DuckDB 2.0 that is about a
    hundred times faster than ``executemany`` (12 ms per alert there). JSON columns hold the
    text ``jsonl.dumps`` writes (keys sorted), as the alert's line holds it, so that rows made
    from a scan's alert tables (``tablestore.store_rows``) are the same text.
    """
    columns: dict[str, list[Any]] = {name: [] for name in ALERT_COLUMNS}
    for alert in alerts:
        for name, values in columns.items():
            value = getattr(alert, name)
            values.append(dumps(value) if name in JSON_COLUMNS else value)
    table = pa.table({f.name: pa.array(columns[f.name], f.type) for f in ALERT_SCHEMA})
    upsert(con, "alerts", ["id"], table)


def upsert_alert_rows(con: duckdb.DuckDBPyConnection, rows: pa.RecordBatchReader) -> None:
    """Insert or replace (by id) rows of ``ALERT_SCHEMA`` in the ``alerts`` table, batch by
    batch as they come (read once)."""
    # Into a table of their own first, then the stored rows of their ids replaced: one
    # INSERT OR REPLACE of 1.8M streamed alerts into a state of 1.8M ran out of a 1 GB limit.
    with registered(con, "incoming_alerts", rows), temporary_table(
            con, "new_alerts", "SELECT * FROM incoming_alerts"):
        con.execute("DELETE FROM alerts WHERE id IN (SELECT id FROM new_alerts)")
        con.execute("INSERT INTO alerts BY NAME SELECT * FROM new_alerts")


def record_scan_files(con: duckdb.DuckDBPyConnection, scan_id: str,
                      files: Sequence[Mapping[str, Any]]) -> None:
    """Put one scan's per-input statistics in ``scan_files`` (as ``AlertStore.add_scan_files``
    does), replacing earlier rows of the same scan id."""
    con.execute(SCAN_FILES_TABLE)
    con.execute(SCAN_FILES_UPGRADE)
    con.execute("DELETE FROM scan_files WHERE scan_id = ?", [scan_id])
    rows = pa.table({
        "scan_id": [scan_id] * len(files), "source": [f["source"] for f in files],
        "log_type": pa.array([f.get("log_type") for f in files], pa.string()),
        "records_read": pa.array([f["read"] for f in files], pa.int64()),
        "records_parsed": pa.array([f["parsed"] for f in files], pa.int64()),
        "records_rejected": pa.array([f["rejected"] for f in files], pa.int64()),
        "rejections": [json.dumps(jsonable(f.get("rejections", []))) for f in files],
        "fingerprint": pa.array([f.get("fingerprint") for f in files], pa.string()),
    })
    upsert(con, "scan_files", ["scan_id", "source"], rows)


def upsert(con: duckdb.DuckDBPyConnection, table: str, keys: Sequence[str], rows: pa.Table) -> None:
    """Replace the rows of ``table`` that share ``keys`` with ``rows``, then insert the rest.

    ``rows`` has the table's columns in the table's order. Call inside a transaction to make the
    replacement atomic.
    """
    if rows.num_rows == 0:
        return
    with registered(con, "incoming_rows", rows):
        match = " AND ".join(f"{table}.{k} = incoming_rows.{k}" for k in keys)
        con.execute(f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM incoming_rows WHERE {match})")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
