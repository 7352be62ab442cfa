"""The DuckDB file behind ``--state``: processed inputs, open groups and the delivery outbox.

Tables:

- ``inputs``: every input a run has read (url, size, etag or mtime, run).
- ``groups``, ``group_uniques`` and ``group_events``: the open dedup groups (rule, dedup string,
  window) with their event counts and last event times, their distinct ``unique()`` values, and
  their first events (``max(1, max_samples)`` of them, each with its sample and its alert
  values rendered); a row each, never a Python object each (``alerts.carryover``).
- ``alerts`` and ``scan_files``, only where ``--store`` names the state file too: the alert
  store's tables, its alerts committed with each run (``commit(..., store=True)``).
- ``runs`` and ``run_alerts``: the outbox; a run's alerts (their JSON lines) stay there until
  every sink has them.
- ``meta``: format version, this state's instance id, the last run number, the event-time
  watermark, and where the delivery under way started appending to ``-o``.

``commit`` writes all of a run's changes in one transaction, so a process killed at any moment
leaves either the state before the run or the state after it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flowwarden.alerts.carryover import (
    EVENT_COLUMNS,
    GROUP_COLUMNS,
    UNIQUE_COLUMNS,
    GroupFiles,
    copy_sql,
    parquet,
)
from flowwarden.alerts.formats.jsonl import jsonable
from flowwarden.alerts.grouping import micros
from flowwarden.alerts.groupstore import AlertTable
from flowwarden.alerts.store import ALERTS_TABLE, upsert, upsert_alert_rows
from flowwarden.alerts.tablestore import store_rows
from flowwarden.logs.model import InputObject
from flowwarden.runs.outboxalerts import OutboxAlerts
from flowwarden.runs.statefile import damaged, guarded, open_state, writing
from flowwarden.util.duckfiles import shed_cache
from flowwarden.util.files import same_file
from flowwarden.util.registered import registered

STATE_VERSION = "2"  # 1 kept each group as tagged JSON, one Python object per group
OUTPUT_MARK = "output_offset"  # meta key: {run, path, offset} of the append under way to -o
GROUP_TABLES = ("groups", "group_uniques", "group_events")  # ``carryover.GroupFiles``'s, in order
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS inputs (url VARCHAR PRIMARY KEY, size BIGINT, "
    "etag VARCHAR, run BIGINT)",
    "CREATE TABLE IF NOT EXISTS groups (rule VARCHAR, dedup VARCHAR, window_us BIGINT, "
    "events BIGINT, last_us BIGINT, window_end_us BIGINT)",
    "CREATE TABLE IF NOT EXISTS group_uniques (rule VARCHAR, dedup VARCHAR, window_us BIGINT, "
    "uniq VARCHAR, window_end_us BIGINT)",
    "CREATE TABLE IF NOT EXISTS group_events (rule VARCHAR, dedup VARCHAR, window_us BIGINT, "
    "event_us BIGINT, source VARCHAR, position BIGINT, sample VARCHAR, title VARCHAR, "
    "severity VARCHAR, context VARCHAR, description VARCHAR, reference VARCHAR, "
    "runbook VARCHAR, destinations VARCHAR, window_end_us BIGINT)",
    "CREATE TABLE IF NOT EXISTS runs (run BIGINT PRIMARY KEY, inputs BIGINT, alerts BIGINT, "
    "delivered BOOLEAN, stats VARCHAR)",
    "CREATE TABLE IF NOT EXISTS run_alerts (run BIGINT, seq BIGINT, alert_id VARCHAR, "
    "alert VARCHAR, PRIMARY KEY (run, seq))",
)


class StateStore:
    """One open ``--state`` file; hold it only for one run (DuckDB locks the file)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self.con, _ = open_state(self.path, SCHEMA, STATE_VERSION)
        try:
            self._mark_new()
        except BaseException:
            self.con.close()
            raise

    @guarded
    def _mark_new(self) -> None:
        """A new file gets its format version and instance id (its format was checked on
        opening, ``statefile.open_state``)."""
        if self._meta("version") is None:  # a new file (or one killed before its first commit)
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?), ('instance', ?)",
                             [STATE_VERSION, uuid.uuid4().hex])
        self.instance = str(self._meta("instance"))

    def _meta(self, key: str) -> str | None:
        rows = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return rows[0][0] if rows else None

    @guarded
    def last_run(self) -> int:
        return int(self._meta("last_run") or 0)

    @guarded
    def watermark(self) -> datetime | None:
        """The newest event time any run has counted into a group."""
        value = self._meta("watermark")
        return datetime.fromisoformat(value) if value else None

    @guarded
    def processed(self) -> dict[str, tuple[int | None, str | None]]:
        rows = self.con.execute("SELECT url, size, etag FROM inputs").fetchall()
        return {url: (size, etag) for url, size, etag in rows}

    @guarded
    def carried(self, reached: Path, directory: Path) -> GroupFiles:
        """The stored rows of the groups in the Parquet file ``reached`` (rule, dedup,
        window_us) as the files a run's grouper continues, written under ``directory``."""
        carried = GroupFiles(directory / "carried-groups.parquet",
                          directory / "carried-uniques.parquet",
                          directory / "carried-events.parquet")
        events = ", ".join(f"t.{name}" for name in EVENT_COLUMNS)
        for columns, table, path in (
                (", ".join(f"t.{name}" for name in GROUP_COLUMNS), "groups", carried.groups),
                (", ".join(f"t.{name}" for name in UNIQUE_COLUMNS), "group_uniques",
                 carried.uniques),
                (f"-1 - row_number() OVER () AS pid, {events}", "group_events", carried.events)):
            # The reached rows found by their keys first, then fetched by rowid: the kept
            # events' samples are read for those rows only (a small run on a 10M-record state:
            # 1.7 s -> 0.5 s), not for every stored row the semi-join scans.
            reached_rows = f"SELECT s.rowid FROM {table} s WHERE {_among('s', reached)}"
            self.con.execute(copy_sql(
                f"SELECT {columns} FROM {table} t WHERE t.rowid IN ({reached_rows})", path))
        return carried

    @writing
    def commit(self, inputs: Sequence[InputObject], saved: GroupFiles | None,
               watermark: datetime | None, horizon: datetime | None,
               alerts: AlertTable, files: Sequence[Mapping[str, Any]] = (), *,
               store: bool = False) -> int:
        """Record one run in one transaction; returns its run number.

        ``saved``: the groups the run changed, which replace their stored rows. ``files`` are
        the run's per-input read statistics; they go to the outbox with the alerts, for the
        ``scan_files`` table of an alert store. ``store``: this file is the ``--store`` too,
        and its ``alerts`` table gets the run's alerts in the same transaction.
        """
        run = self.last_run() + 1
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            self._upsert("inputs", ["url"], pa.table({
                "url": [o.url for o in inputs], "size": pa.array([o.size for o in inputs], pa.int64()),
                "etag": pa.array([o.etag_or_mtime for o in inputs], pa.string()),
                "run": pa.array([run] * len(inputs), pa.int64())}))
            self._set_meta("last_run", str(run))
            if store:  # first, while the transaction holds little: the upsert needs the most
                con.execute(ALERTS_TABLE)
                upsert_alert_rows(con, store_rows(alerts))
            if watermark is not None:
                self._set_meta("watermark", watermark.isoformat())
            con.execute("INSERT INTO runs VALUES (?, ?, ?, false, ?)",
                        [run, len(inputs), len(alerts), json.dumps(jsonable(list(files)))])
            # One statement from a stream: one INSERT per batch held several times the lines.
            with registered(con, "outbox", pa.RecordBatchReader.from_batches(
                    _OUTBOX, _numbered(run, alerts.id_lines()))):
                con.execute("INSERT INTO run_alerts SELECT * FROM outbox")
            if saved is not None:
                self._replace_groups(saved)
            if horizon is not None:
                for table in GROUP_TABLES:
                    con.execute(f"DELETE FROM {table} WHERE window_end_us <= ?", [micros(horizon)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        # The pages the commit wrote (half a GB at 1M records) would stay cached beside the
        # delivery's queries: 1M records to OCSF peaked at 1.73 GB with them, 1.49 GB without.
        shed_cache(con)
        return run

    def _replace_groups(self, saved: GroupFiles) -> None:
        """The changed groups' stored rows replaced by their saved ones."""
        for table, rows in zip(GROUP_TABLES, (saved.groups, saved.uniques,
                                              saved.events / "*.parquet"), strict=True):
            self.con.execute(f"DELETE FROM {table} t WHERE {_among('t', saved.groups)}")
            self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {parquet(rows)}")

    def is_file(self, path: str | None) -> bool:
        """Whether ``path`` (an output's) names this state file."""
        return same_file(path, self.path)

    @guarded
    def pending_runs(self) -> list[int]:
        """Runs whose alerts are not yet known to be in every sink, oldest first."""
        rows = self.con.execute("SELECT run FROM runs WHERE NOT delivered ORDER BY run").fetchall()
        return [row[0] for row in rows]

    @guarded
    def run_files(self, run: int) -> list[dict[str, Any]]:
        """The per-input statistics of a run (``FileStats.to_json`` dicts)."""
        rows = self.con.execute("SELECT stats FROM runs WHERE run = ?", [run]).fetchall()
        return json.loads(rows[0][0]) if rows and rows[0][0] else []

    @guarded
    def run_alerts(self, run: int) -> OutboxAlerts:
        """A run's alerts as the outbox holds them (read as they are walked); a line that is
        not a JSON object is a damaged state (checked before any is delivered)."""
        found = self.con.execute(
            "SELECT seq FROM run_alerts WHERE run = ? AND NOT (alert LIKE '{%' "
            "AND json_valid(alert)) LIMIT 1", [run]).fetchall()
        if found:
            raise damaged(self.path, ValueError(f"run {run}'s alert {found[0][0]} is no alert"))
        return OutboxAlerts(self.con, self.path, run)

    @writing
    def mark_delivered(self, run: int) -> None:
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute("UPDATE runs SET delivered = true WHERE run = ?", [run])
        self.con.execute("DELETE FROM run_alerts WHERE run = ?", [run])
        self.con.execute("DELETE FROM meta WHERE key = ?", [OUTPUT_MARK])
        self.con.execute("COMMIT")

    @guarded
    def output_offset(self, run: int, path: str) -> int | None:
        """Where run ``run`` started appending to ``path`` (``-o``), if it started."""
        value = self._meta(OUTPUT_MARK)
        mark = json.loads(value) if value else {}
        if mark.get("run") == run and mark.get("path") == path:
            return int(mark["offset"])
        return None

    @writing
    def set_output_offset(self, run: int, path: str, offset: int) -> None:
        """Remember, before appending run ``run``'s alerts to ``path``, where they start: a
        repeated delivery cuts the file back there, so the alerts appear once."""
        self._set_meta(OUTPUT_MARK, json.dumps({"run": run, "path": path, "offset": offset}))

    def close(self) -> None:
        self.con.close()

    def _set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def _upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None:
        upsert(self.con, table, keys, rows)


def _among(alias: str, keys: Path) -> str:
    """The condition that row ``alias``'s group is one of those in the Parquet file ``keys``
    (rule, dedup, window_us)."""
    return (f"EXISTS (SELECT 1 FROM {parquet(keys)} k WHERE k.rule = {alias}.rule AND "
            f"k.dedup = {alias}.dedup AND k.window_us = {alias}.window_us)")


_OUTBOX = pa.schema([("run", pa.int64()), ("seq", pa.int64()), ("alert_id", pa.string()),
                     ("alert", pa.string())])


def _numbered(run: int, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches of (id, line) as rows of ``run_alerts`` for run ``run``, numbered in order."""
    seq = 0
    for batch in batches:
        count = batch.num_rows
        yield pa.RecordBatch.from_arrays([
            pa.array(np.full(count, run), pa.int64()),
            pa.array(np.arange(seq, seq + count), pa.int64()),
            batch.column(0).cast(pa.string()), batch.column(1).cast(pa.string())], schema=_OUTBOX)
        seq += count
