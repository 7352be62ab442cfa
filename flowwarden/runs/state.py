"""The DuckDB file behind ``--state``: processed inputs, open groups, alerts and the delivery outbox.

Tables:

- ``inputs``: every input a run has read (url, size, etag or mtime, run).
- ``groups``: the dedup groups (rule, dedup string, window) with their counters, unique values,
  first event and samples, as tagged JSON that restores datetimes, bytes and decimals exactly.
- ``alerts``: the latest version of every alert, in the schema of the ``--store`` alert store
  (``AlertStore`` opens the file as a store too).
- ``runs`` and ``run_alerts``: the outbox; a run's alerts stay there until every sink has them.
- ``meta``: format version, this state's instance id, the last run number, the event-time
  watermark, and where the delivery under way started appending to ``-o``.

``commit`` writes all of a run's changes in one transaction, so a process killed at any moment
leaves either the state before the run or the state after it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from flowwarden.alerts.formats.jsonl import jsonable
from flowwarden.alerts.grouping import Group, GroupKey, OrderKey
from flowwarden.alerts.model import Alert
from flowwarden.alerts.store import ALERT_COLUMNS, upsert, upsert_alerts
from flowwarden.errors import Location, UsageError
from flowwarden.logs.model import InputObject
from flowwarden.rules.rule import Rule, RuleResult
from flowwarden.runs.statefile import DAMAGE, damaged, guarded, open_state, writing

STATE_VERSION = "1"
OUTPUT_MARK = "output_offset"  # meta key: {run, path, offset} of the append under way to -o
TAGS = ("$dt", "$date", "$b64", "$dec", "$map")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS inputs (url VARCHAR PRIMARY KEY, size BIGINT, "
    "etag VARCHAR, run BIGINT)",
    "CREATE TABLE IF NOT EXISTS groups (rule_id VARCHAR, dedup VARCHAR, window_start VARCHAR, "
    "window_end BIGINT, state VARCHAR, PRIMARY KEY (rule_id, dedup, window_start))",
    "CREATE TABLE IF NOT EXISTS runs (run BIGINT PRIMARY KEY, inputs BIGINT, alerts BIGINT, "
    "delivered BOOLEAN, stats VARCHAR)",
    "CREATE TABLE IF NOT EXISTS run_alerts (run BIGINT, seq BIGINT, alert_id VARCHAR, "
    "alert VARCHAR, PRIMARY KEY (run, seq))",
    "CREATE TABLE IF NOT EXISTS alerts ({columns})",
)


def encode_value(value: Any) -> Any:
    """A JSON-ready value that ``decode_value`` turns back into an equal Python value.

    >>> decode_value(encode_value({"t": datetime(2024, 5, 1, tzinfo=UTC), "b": b"x"}))
    {'t': datetime.datetime(2024, 5, 1, 0, 0, tzinfo=datetime.timezone.utc), 'b': b'x'}
    """
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, Mapping):
        out = {str(k): encode_value(v) for k, v in value.items()}
        return {"$map": out} if len(out) == 1 and next(iter(out)) in TAGS else out
    if isinstance(value, list | tuple | set | frozenset):
        return [encode_value(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        tag, inner = next(iter(value.items()))
        if tag == "$dt":
            return datetime.fromisoformat(inner)
        if tag == "$date":
            return date.fromisoformat(inner)
        if tag == "$b64":
            return base64.b64decode(inner)
        if tag == "$dec":
            return Decimal(inner)
        if tag == "$map":
            return {k: decode_value(v) for k, v in inner.items()}
    return {k: decode_value(v) for k, v in value.items()}


def encode_group(group: Group) -> str:
    return json.dumps(encode_value({
        "first_key": group.first_key,
        "first": {f.name: getattr(group.first, f.name) for f in dataclasses.fields(group.first)},
        "last_time": group.last_time, "count": group.count, "uniques": sorted(group.uniques),
        "samples": [[key, record] for key, record in group.samples],
        "first_record": group.first_record,
    }), sort_keys=True)


def decode_group(rule: Rule, dedup: str, start: datetime, text: str) -> Group:
    data = decode_value(json.loads(text))
    return Group(
        rule, dedup, start, _order_key(data["first_key"]), RuleResult(**data["first"]),
        data["last_time"], data["count"], set(data["uniques"]),
        [(_order_key(key), record) for key, record in data["samples"]],
        data.get("first_record"),
    )


def _order_key(key: Sequence[Any]) -> OrderKey:
    when, source, position = key
    return (when, str(source), int(position))


def encode_alert(alert: Alert) -> str:
    fields = {f.name: getattr(alert, f.name) for f in dataclasses.fields(alert)}
    return json.dumps(encode_value(fields), sort_keys=True)


def decode_alert(text: str) -> Alert:
    return Alert(**decode_value(json.loads(text)))


def _epoch_s(when: datetime) -> int:
    return int((when - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())


class StateStore:
    """One open ``--state`` file; hold it only for one run (DuckDB locks the file)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        columns = ", ".join(f"{name} {kind}" for name, kind in ALERT_COLUMNS.items())
        self.con, _ = open_state(self.path, [s.format(columns=columns) for s in SCHEMA])
        try:
            self._check_version()
        except BaseException:
            self.con.close()
            raise

    @guarded
    def _check_version(self) -> None:
        version = self._meta("version")
        if version is None:  # a new file (or one killed before its first commit)
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?), ('instance', ?)",
                             [STATE_VERSION, uuid.uuid4().hex])
        elif version != STATE_VERSION:
            raise UsageError(f"state format {version}, this flowwarden reads {STATE_VERSION}",
                             Location(self.path))
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
    def load_groups(self, rules: Mapping[str, Rule]) -> dict[GroupKey, Group]:
        """The stored groups of these rules (groups of other rules stay stored, untouched)."""
        if not rules:
            return {}
        self.con.register("wanted_rules", pa.table({"rule_id": list(rules)}))
        try:
            rows = self.con.execute(
                "SELECT rule_id, dedup, window_start, state FROM groups "
                "WHERE rule_id IN (SELECT rule_id FROM wanted_rules)").fetchall()
        finally:
            self.con.unregister("wanted_rules")
        groups: dict[GroupKey, Group] = {}
        for rule_id, dedup, start_text, text in rows:
            try:
                start = datetime.fromisoformat(start_text)
                groups[(rule_id, dedup, start)] = decode_group(rules[rule_id], dedup, start, text)
            except DAMAGE as exc:
                raise damaged(self.path, exc, f"a group of {rule_id}") from None
        return groups

    @writing
    def commit(self, inputs: Sequence[InputObject], groups: Mapping[GroupKey, Group],
               watermark: datetime | None, horizon: datetime | None,
               alerts: Sequence[Alert], files: Sequence[Mapping[str, Any]] = ()) -> int:
        """Record one run in one transaction; returns its run number.

        ``files`` are the run's per-input read statistics; they go to the outbox with the
        alerts, for the ``scan_files`` table of an alert store.
        """
        run = self.last_run() + 1
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            self._upsert("inputs", ["url"], pa.table({
                "url": [o.url for o in inputs], "size": pa.array([o.size for o in inputs], pa.int64()),
                "etag": pa.array([o.etag_or_mtime for o in inputs], pa.string()),
                "run": pa.array([run] * len(inputs), pa.int64())}))
            self._upsert("groups", ["rule_id", "dedup", "window_start"], _group_rows(groups))
            if horizon is not None:
                con.execute("DELETE FROM groups WHERE window_end <= ?", [_epoch_s(horizon)])
            self._set_meta("last_run", str(run))
            if watermark is not None:
                self._set_meta("watermark", watermark.isoformat())
            upsert_alerts(con, alerts)
            con.execute("INSERT INTO runs VALUES (?, ?, ?, false, ?)",
                        [run, len(inputs), len(alerts), json.dumps(jsonable(list(files)))])
            if alerts:
                con.register("outbox", pa.table({
                    "run": pa.array([run] * len(alerts), pa.int64()),
                    "seq": pa.array(range(len(alerts)), pa.int64()),
                    "alert_id": [a.id for a in alerts], "alert": [encode_alert(a) for a in alerts]}))
                con.execute("INSERT INTO run_alerts SELECT * FROM outbox")
                con.unregister("outbox")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return run

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
    def run_alerts(self, run: int) -> list[Alert]:
        rows = self.con.execute(
            "SELECT alert FROM run_alerts WHERE run = ? ORDER BY seq", [run]).fetchall()
        return [decode_alert(row[0]) for row in rows]

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

    def alerts(self) -> list[dict[str, Any]]:
        """Every stored alert (latest version) as rows, for tests and tools."""
        cursor = self.con.execute("SELECT * FROM alerts ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self.con.close()

    def _set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def _upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None:
        upsert(self.con, table, keys, rows)

def _group_rows(groups: Mapping[GroupKey, Group]) -> pa.Table:
    items = list(groups.items())
    ends = [start + timedelta(minutes=g.rule.dedup_minutes) for (_, _, start), g in items]
    return pa.table({
        "rule_id": [k[0] for k, _ in items], "dedup": [k[1] for k, _ in items],
        "window_start": [k[2].isoformat() for k, _ in items],
        "window_end": pa.array([_epoch_s(e) for e in ends], pa.int64()),
        "state": [encode_group(g) for _, g in items],
    })
