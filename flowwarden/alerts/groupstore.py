"""Dedup groups in DuckDB: what ``AlertGrouper`` keeps in Python objects, kept in tables that spill.

Each batch's matches are appended as rows (rule, dedup string, window, event time, unique
value). Of a batch's matches only the first ``max(1, max_samples)`` of each group (by the
grouper's order key: event time, source, position) can be an alert's first event or one of its
samples, so only their rule results and records are kept (``picks``, pickled). ``finish`` makes
the alerts in one query (counts, distinct unique values, last event time, thresholds, the first
events of each group) into a table that ``AlertTable`` reads back in Arrow batches, in the
grouper's order. Memory does not grow with matches, groups or alerts: DuckDB spills to the
temporary database's directory. The alerts equal ``AlertGrouper``'s (``tests/alerts/test_groupstore.py``).

Alert functions that still need Python (a ``keys_only`` first result) run in ``finish``, once
per alert, through ``complete`` as in ``AlertGrouper``.
"""

from __future__ import annotations

import pickle
import tempfile
import weakref
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, overload

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.alerts.formats.jsonl import jsonable
from flowwarden.alerts.grouping import (
    Complete,
    MatchColumns,
    OrderKey,
    compact,
    from_micros,
    make_alert,
    micros,
    period_us,
)
from flowwarden.alerts.model import Alert
from flowwarden.rules.rule import Rule, RuleResult

READ_BATCH = 4096  # alerts per Arrow batch read back
MEMORY_LIMIT = "1GB"  # of the group database; beyond it DuckDB spills to its directory

_MATCHES = pa.schema([("rule", pa.string()), ("dedup", pa.string()), ("window_us", pa.int64()),
                      ("event_us", pa.int64()), ("uniq", pa.string())])
_PICKS = pa.schema([("rule", pa.string()), ("dedup", pa.string()), ("window_us", pa.int64()),
                    ("event_us", pa.int64()), ("source", pa.string()), ("position", pa.int64()),
                    ("python", pa.bool_()), ("payload", pa.binary())])
_COMPLETED = pa.schema([("seq", pa.int64()), ("payload", pa.binary())])
_RULES = pa.schema([("rule", pa.string()), ("threshold", pa.int64()),
                    ("uses_unique", pa.bool_())])


@dataclass
class _Pick:
    """A match that may be first or a sample of its group: its record comes with ``fill``."""

    rule: Rule
    result: RuleResult
    key: OrderKey
    dedup: str  # its group's dedup string
    window_us: int
    record: dict[str, Any] | None


class SqlGrouper:
    """``AlertGrouper``'s groups, thresholds and samples in a temporary DuckDB database.

    Feed it per match (``add``) or per batch of compiled matches (``add_matches``), hand over
    wanted records with ``fill``, close each batch with ``end_batch``, and ``collect`` the
    alerts once at the end.
    """

    def __init__(self, max_samples: int = 3, complete: Complete | None = None,
                 directory: str | None = None) -> None:
        self.max_samples = max_samples
        self.complete = complete
        self.firsts = max(1, max_samples)  # events kept per group and batch
        self._dir = tempfile.TemporaryDirectory(prefix="flowwarden-groups-", dir=directory)
        # In memory until MEMORY_LIMIT, then spilled to the directory: no write-ahead log.
        self.con = duckdb.connect(":memory:", config={
            "memory_limit": MEMORY_LIMIT, "temp_directory": str(Path(self._dir.name)),
            "preserve_insertion_order": False})
        weakref.finalize(self, _close, self.con, self._dir)
        for name, schema in (("matches", _MATCHES), ("picks", _PICKS), ("rules", _RULES)):
            columns = ", ".join(f"{f.name} {_SQL_TYPES[f.type]}" for f in schema)
            self.con.execute(f"CREATE TABLE {name} ({columns})")
        self._rules: dict[str, Rule] = {}
        self._rows: list[tuple[Rule, RuleResult, OrderKey, dict[str, Any] | None]] = []
        self._picks: dict[OrderKey, list[_Pick]] = defaultdict(list)  # awaiting records
        self._stored: dict[str, list[Any]] = {name: [] for name in _PICKS.names}  # pickled
        self._table: AlertTable | None = None

    # -- per match -------------------------------------------------------------------------
    def add(self, rule: Rule, result: RuleResult, key: OrderKey,
            record: dict[str, Any] | None) -> bool:
        """Count one match (``key``: event time, source, position); True when ``record`` is None
        and the record is wanted (it may be: ``fill`` hands it over)."""
        self._rows.append((rule, result, key, record))
        return record is None

    # -- per batch of compiled matches -----------------------------------------------------
    def add_matches(self, rule: Rule, matches: MatchColumns, source: str, offset: int
                    ) -> list[tuple[int, RuleResult, OrderKey]]:
        """Count ``matches`` of ``rule`` (batch rows ``matches.rows``, positions ``offset`` on in
        ``source``); returns the rows whose record is wanted, with their rule results (keys
        only: their alert values may be filled in before ``fill``) and order keys."""
        self._know(rule)
        count = len(matches.rows)
        if not count:
            return []
        period = period_us(rule.dedup_minutes)
        windows = np.floor_divide(matches.event_us, period) * period
        self._insert("matches", _MATCHES, [
            pa.array(np.full(count, rule.id, dtype=object), type=pa.string()), matches.dedup,
            pa.array(windows), pa.array(matches.event_us), matches.unique_array()])
        wanted = _firsts(matches.dedup, windows, matches.event_us, self.firsts)
        chosen: list[tuple[int, RuleResult, OrderKey]] = []
        dedups = matches.dedup.take(pa.array(wanted)).to_pylist()
        uniques = matches.unique_values(wanted)
        titles = matches.title_values(wanted)
        for at, index in enumerate(wanted.tolist()):
            row = int(matches.rows[index])
            result = RuleResult(rule.id, matched=True, title=titles[at], unique=uniques[at],
                                dedup=dedups[at], keys_only=True)
            key: OrderKey = (from_micros(int(matches.event_us[index])), source, offset + row)
            self._picks[key].append(_Pick(rule, result, key, dedups[at], int(windows[index]),
                                          None))
            chosen.append((row, result, key))
        return chosen

    def fill(self, records: Mapping[OrderKey, dict[str, Any]]) -> None:
        """The records of wanted matches, by order key (all at once or in parts): each pick
        is stored away with its record at once, so records do not pile up."""
        for key, record in records.items():
            for pick in self._picks.pop(key, ()):
                pick.record = record
                self._ready(pick)
        if self._rows:
            self._rows = [(rule, result, key, records.get(key, record) if record is None
                           else record) for rule, result, key, record in self._rows]

    def end_batch(self) -> None:
        """Store what this batch added: its per-match rows and the picks with their records."""
        if self._rows:
            self._flush_rows()
        for picks in self._picks.values():  # never handed over: kept without a record
            for pick in picks:
                self._ready(pick)
        self._picks.clear()
        if self._stored["rule"]:
            self._insert("picks", _PICKS, [pa.array(self._stored[n], type=_PICKS.field(n).type)
                                           for n in _PICKS.names])
            self._stored = {name: [] for name in _PICKS.names}

    def _ready(self, pick: _Pick) -> None:
        time, source, position = pick.key
        for name, value in (("rule", pick.rule.id), ("dedup", pick.dedup),
                            ("window_us", pick.window_us), ("event_us", micros(time)),
                            ("source", source), ("position", position),
                            ("python", pick.result.keys_only), ("payload", _payload(pick))):
            self._stored[name].append(value)

    def _flush_rows(self) -> None:
        """The per-match rows of this batch: all counted, the first of each group picked."""
        columns: dict[str, list[Any]] = {name: [] for name in _MATCHES.names}
        groups: dict[tuple[str, str, int], list[tuple[OrderKey, Rule, RuleResult,
                                                      dict[str, Any] | None]]] = defaultdict(list)
        for rule, result, key, record in self._rows:
            self._know(rule)
            dedup = result.dedup or f"defaultDedupString:{rule.id}"
            event_us = micros(key[0])
            period = period_us(rule.dedup_minutes)
            window = event_us // period * period
            for name, value in (("rule", rule.id), ("dedup", dedup), ("window_us", window),
                                ("event_us", event_us), ("uniq", result.unique)):
                columns[name].append(value)
            groups[(rule.id, dedup, window)].append((key, rule, result, record))
        self._rows.clear()
        self._insert("matches", _MATCHES, [pa.array(columns[n], type=_MATCHES.field(n).type)
                                           for n in _MATCHES.names])
        for (_, dedup, window), members in groups.items():
            members.sort(key=lambda m: m[0])
            for key, rule, result, record in members[:self.firsts]:
                self._ready(_Pick(rule, result, key, dedup, window, record))

    def _know(self, rule: Rule) -> None:
        if rule.id not in self._rules:
            self._rules[rule.id] = rule
            self._insert("rules", _RULES, [
                pa.array([rule.id]), pa.array([rule.threshold], type=pa.int64()),
                pa.array([rule.function("unique") is not None])])

    def _insert(self, table: str, schema: pa.Schema, arrays: Sequence[pa.Array]) -> None:
        self.con.register("new_rows", pa.Table.from_arrays(list(arrays), schema=schema))
        try:
            self.con.execute(f"INSERT INTO {table} SELECT * FROM new_rows")
        finally:
            self.con.unregister("new_rows")

    # -- the alerts ------------------------------------------------------------------------
    def collect(self) -> AlertTable:
        """The alerts of every group that reached its rule's threshold (made once)."""
        if self._table is None:
            self.end_batch()
            for statement in _ALERTS_SQL:
                self.con.execute(statement.format(firsts=self.firsts))
            self._complete_firsts()
            self._table = AlertTable(self)
        return self._table

    def _complete_firsts(self) -> None:
        """Alert functions that need Python, once per alert on its first event."""
        found = self.con.execute("SELECT count(*) FROM alerts WHERE first_python").fetchone()
        if self.complete is None or not found or not found[0]:
            return
        self.con.execute("CREATE TABLE completed (seq BIGINT, payload BLOB)")
        for batch in _read(self.con, "SELECT a.seq, a.rule, k.payload, a.first_us, "
                           "a.first_source, a.first_position FROM alerts a JOIN kept k "
                           "ON k.seq = a.seq AND k.rank = 1 WHERE a.first_python ORDER BY a.seq"):
            seqs, payloads = [], []
            for seq, rule_id, payload, first_us, source, position in zip(
                    *(c.to_pylist() for c in batch.columns), strict=True):
                rule = self._rules[rule_id]
                result, record = _unpack(rule, payload)
                if record is not None:
                    key: OrderKey = (from_micros(first_us), source, position)
                    self.complete(rule, result, key, record)
                    result.alert_context = jsonable(result.alert_context)
                seqs.append(seq)
                payloads.append(_pack(result, compact(record)))
            self._insert("completed", _COMPLETED, [pa.array(seqs, type=pa.int64()),
                                                   pa.array(payloads, type=pa.binary())])
        self.con.execute("UPDATE kept SET payload = completed.payload FROM completed "
                         "WHERE kept.seq = completed.seq AND kept.rank = 1")
        self.con.execute("UPDATE alerts SET first_python = false")
        self.con.execute("DROP TABLE completed")

    def alert_of(self, row: Mapping[str, Any], payloads: Sequence[bytes]) -> Alert:
        """The ``Alert`` of one row of the alerts table, with its kept events' payloads (the
        first event's first)."""
        rule = self._rules[row["rule"]]
        result, record = _unpack(rule, payloads[0])
        samples = []
        if self.max_samples:
            samples = [_sample(result, record)]
            samples += [_sample(*_unpack(rule, p)) for p in payloads[1:]]
        uses_unique = bool(row["uses_unique"])
        return make_alert(rule, result, row["dedup"], from_micros(row["window_us"]),
                          from_micros(row["first_us"]), from_micros(row["last_us"]),
                          row["events"], row["uniques"] if uses_unique else None,
                          [s for s in samples if s is not None])


# What a pick keeps of its rule result (the rest is the rule's id and the columns beside it).
_RESULT_FIELDS = ("matched", "errors", "title", "dedup", "severity", "alert_context",
                  "description", "reference", "runbook", "destinations", "unique", "keys_only")


def _payload(pick: _Pick) -> bytes:
    """A pick's rule result and record, pickled; a record whose alert functions have run is
    kept compact (samples are), one whose Python alert functions are still to run as read."""
    record = pick.record
    if record is not None and not pick.result.keys_only:
        record = compact(record)
    return _pack(pick.result, record)


def _sample(result: RuleResult, record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A pick's record as a sample: compact (``_payload`` stored it so once its alert
    functions ran)."""
    return compact(record) if result.keys_only else record


def _pack(result: RuleResult, record: dict[str, Any] | None) -> bytes:
    values = tuple(getattr(result, name) for name in _RESULT_FIELDS)
    return pickle.dumps((values, record), pickle.HIGHEST_PROTOCOL)


def _unpack(rule: Rule, payload: bytes) -> tuple[RuleResult, dict[str, Any] | None]:
    values, record = pickle.loads(payload)
    return RuleResult(rule.id, **dict(zip(_RESULT_FIELDS, values, strict=True))), record


def _firsts(dedup: pa.Array, windows: np.ndarray, event_us: np.ndarray, count: int
            ) -> np.ndarray:
    """Indexes of the first ``count`` rows of each (dedup, window) group, by (time, index)
    (rows come in position order, so index order is position order)."""
    codes = pc.dictionary_encode(dedup).indices.to_numpy(zero_copy_only=False)
    order = np.lexsort((np.arange(len(codes)), event_us, windows, codes))
    group = np.stack([codes[order], windows[order]])
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (group[:, 1:] != group[:, :-1]).any(axis=0)
    begin = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    return np.sort(order[np.arange(len(order)) - begin < count])


@dataclass
class RuleSummary:
    """One rule's alerts in figures (``AlertTable.rule_summaries``)."""

    alerts: int
    first: datetime
    last: datetime
    by_day: dict[str, int] = field(default_factory=dict)
    top: list[tuple[str, int, int]] = field(default_factory=list)  # dedup, alerts, events


class AlertTable(Sequence[Alert]):
    """The alerts of a ``SqlGrouper``, read back in Arrow batches each time they are walked."""

    def __init__(self, grouper: SqlGrouper) -> None:
        self.grouper = grouper
        found = grouper.con.execute("SELECT count(*) FROM alerts").fetchone()
        self._count = int(found[0]) if found else 0

    def __len__(self) -> int:
        return self._count

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AlertTable | list):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared by content, like a list

    def __iter__(self) -> Iterator[Alert]:
        yield from self._rows("")

    @overload
    def __getitem__(self, index: int) -> Alert: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Alert]: ...

    def __getitem__(self, index: int | slice) -> Alert | Sequence[Alert]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if step != 1:
                return list(self)[index]
            return list(self._rows(f"WHERE seq >= {int(start)} AND seq < {int(stop)}"))
        position = index + self._count if index < 0 else index
        if not 0 <= position < self._count:
            raise IndexError("alert index out of range")
        return next(iter(self._rows(f"WHERE seq = {int(position)}")))

    def _rows(self, where: str) -> Iterator[Alert]:
        """The alerts (of the ``where`` clause on ``seq``), in order: one query for the alerts,
        one for their kept events' payloads, both by ``seq``, walked side by side."""
        con = self.grouper.con
        alerts = (row for batch in _read(con, f"SELECT * FROM alerts {where} ORDER BY seq")
                  for row in batch.to_pylist())
        kept = ((seq, payload) for batch in _read(
            con, f"SELECT seq, payload FROM kept {where} ORDER BY seq, rank")
            for seq, payload in zip(*(c.to_pylist() for c in batch.columns), strict=True))
        pending: tuple[int, bytes] | None = next(kept, None)
        for row in alerts:
            payloads = []
            while pending is not None and pending[0] == row["seq"]:
                payloads.append(pending[1])
                pending = next(kept, None)
            yield self.grouper.alert_of(row, payloads)

    def count_by_rule(self) -> dict[str, int]:
        """How many alerts each rule has."""
        return dict(self.grouper.con.execute(
            "SELECT rule, count(*) FROM alerts GROUP BY rule").fetchall())

    def rule_summaries(self, top: int) -> dict[str, RuleSummary]:
        """Per rule with alerts: how many, the first and last alert's first event time, alerts
        per UTC day of that time, and the ``top`` dedup strings by (alerts, events, string)."""
        con = self.grouper.con
        found = {rule: RuleSummary(count, from_micros(first), from_micros(last))
                 for rule, count, first, last in con.execute(
                     "SELECT rule, count(*), min(first_us), max(first_us) FROM alerts "
                     "GROUP BY rule").fetchall()}
        for rule, day, count in con.execute(
                "SELECT rule, strftime(make_timestamp(first_us), '%Y-%m-%d') AS day, count(*) "
                "FROM alerts GROUP BY rule, day ORDER BY rule, day").fetchall():
            found[rule].by_day[day] = count
        for rule, dedup, count, events in con.execute(
                "SELECT rule, dedup, count(*) AS n, sum(events) AS e FROM alerts "
                "GROUP BY rule, dedup QUALIFY row_number() OVER "
                "(PARTITION BY rule ORDER BY n DESC, e DESC, dedup) <= $top "
                "ORDER BY rule, n DESC, e DESC, dedup", {"top": top}).fetchall():
            found[rule].top.append((dedup, count, int(events)))
        return found

    def identities(self) -> Iterator[tuple[str, int, datetime]]:
        """(id, event count, last event time) of every alert, by id."""
        for batch in _read(self.grouper.con, "SELECT id, events, last_us FROM alerts ORDER BY id"):
            for alert_id, events, last_us in zip(*(c.to_pylist() for c in batch.columns),
                                                 strict=True):
                yield alert_id, events, from_micros(last_us)


def _read(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[pa.RecordBatch]:
    """The rows of ``sql`` in Arrow batches, on a cursor of their own (the alerts can be walked
    while other statements run)."""
    cursor = con.cursor()
    try:
        reader = cursor.sql(sql).to_arrow_reader(READ_BATCH)
        assert reader is not None
        yield from reader
    finally:
        cursor.close()


def _close(con: duckdb.DuckDBPyConnection, directory: tempfile.TemporaryDirectory[str]) -> None:
    con.close()
    directory.cleanup()


_SQL_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN",
              pa.binary(): "BLOB"}

# The alerts and their kept events. The id is ``model.alert_id`` (sha256 of rule, dedup and the
# window's isoformat, whole minutes so no fraction, cut to 32 hex digits), here to order by it.
_ALERTS_SQL = (
    # The first events of each group: only these picks are kept (the window sorts, and spills).
    """CREATE TABLE ranked AS
    SELECT rule, dedup, window_us, event_us, source, position, python, payload,
           row_number() OVER (PARTITION BY rule, dedup, window_us
                              ORDER BY event_us, source, position) AS rank
    FROM picks QUALIFY rank <= {firsts}""",
    "DROP TABLE picks",
    # Counts in two plain aggregations (distinct unique values without a DISTINCT aggregate).
    """CREATE TABLE alerts AS
    WITH per_unique AS (
        SELECT rule, dedup, window_us, uniq, count(*) AS events, max(event_us) AS last_us
        FROM matches GROUP BY rule, dedup, window_us, uniq
    ), counted AS (
        SELECT rule, dedup, window_us, sum(events)::BIGINT AS events,
               count(uniq) AS uniques, max(last_us) AS last_us
        FROM per_unique GROUP BY rule, dedup, window_us
    ), reached AS (
        SELECT counted.*, rules.uses_unique FROM counted JOIN rules USING (rule)
        WHERE CASE WHEN rules.uses_unique THEN uniques ELSE events END >= rules.threshold
    )
    SELECT row_number() OVER (ORDER BY f.event_us, f.source, f.position, rule, dedup) - 1
             AS seq,
           left(sha256(rule || chr(31) || dedup || chr(31)
                       || strftime(make_timestamp(window_us), '%Y-%m-%dT%H:%M:%S')
                       || '+00:00'), 32) AS id,
           reached.*, f.event_us AS first_us, f.source AS first_source,
           f.position AS first_position, f.python AS first_python
    FROM reached JOIN ranked f USING (rule, dedup, window_us) WHERE f.rank = 1""",
    "DROP TABLE matches",
    """CREATE TABLE kept AS
    SELECT a.seq, k.rank, k.payload FROM alerts a JOIN ranked k USING (rule, dedup, window_us)""",
    "DROP TABLE ranked",
)
