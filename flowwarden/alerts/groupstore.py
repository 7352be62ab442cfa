"""Dedup groups in DuckDB: what ``AlertGrouper`` keeps in Python objects, kept in tables that spill.

Each batch's matches are appended as rows (rule, dedup string, window, event time, unique
value). Of a batch's matches only the first ``max(1, max_samples)`` of each group (by the
grouper's order key: event time, source, position) can be an alert's first event or one of its
samples, so only they are kept (``picks``): each with its sample as alert JSON and its own alert
values, either rendered by the engine's query from Arrow records (``add_rendered``: no Python
object per match) or from a Python record and rule result (``want`` then ``fill``; these are
also pickled, to run alert functions and to give ``Alert`` objects back), or by their keys
alone (``add_late``: a threshold rule's, most of whose groups never alert), made whole in
``collect`` only where they are an alert's kept events. ``collect`` makes the
alerts in one query (counts, distinct unique values, last event time, thresholds, the first
events of each group) into a table, and ``lines`` each alert's ``alert_json`` line, which
``AlertTable`` reads in Arrow batches, in the grouper's order. Ranking and joining move row ids
only: a pick's sample and alert values (the bulk of the output) are copied once, into its
line. Memory does not grow with matches, groups or alerts: DuckDB spills to the temporary
database's directory. A checkpointed run's grouper also counts in the stored groups its matches
reach, and saves them back (``carryover``). The alerts and lines equal ``AlertGrouper``'s
(``tests/alerts/test_groupstore.py``).

Alert functions that still need Python (a ``keys_only`` first result) run in ``collect``, once
per alert, through ``complete`` as in ``AlertGrouper``.
"""

from __future__ import annotations

import json
import pickle
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, overload

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowwarden.alerts.carryover import (
    CHANGED,
    TOUCHED_FIRSTS,
    Carry,
    GroupFiles,
    copy_sql,
    matches_view,
    parquet,
    picks_view,
    save,
)
from flowwarden.alerts.formats.jsonl import alert_from_json, dumps, jsonable
from flowwarden.alerts.formats.jsonsql import iso_micros
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
from flowwarden.alerts.model import Alert, mitre_entries
from flowwarden.alerts.tablequery import (
    JOINED_SAMPLES,
    SeqChunks,
    in_seqs,
    joined_text,
    read_batches,
)
from flowwarden.logic.render.duckdb_sql import json_string
from flowwarden.logic.render.sqltext import sql_literal
from flowwarden.rules.rule import Rule, RuleResult
from flowwarden.util.iterables import picked
from flowwarden.util.ordered import Select, create_in_order
from flowwarden.util.registered import registered
from flowwarden.util.scratch import ScratchDirectory

READ_BATCH = 4096  # alerts per Arrow batch read back as Python objects
LINE_CHUNK = 1 << 15  # alerts per lines query at most (about 80 MB of a flow alert's lines)
# The group database's memory in MB, a quarter of the stores' (``duckfiles.MEMORY_LIMIT``): it
# lives beside a scan's batches and fills to its limit, so the limit is what a bigger input adds
# to a scan's peak. Its queries work in pieces that fit (line chunks, ``create_in_order``).
GROUP_MEMORY_MB = 256
# A chunked query's rows (``tablequery.SeqChunks``) take about this share of it: the query
# holds them about three times (its join's build side, the rows, their sort), and the tables it
# reads need room too.
CHUNK_SHARE = 8
LINE_BATCH = 4096  # alert lines per Arrow batch written out (about 10 MB of JSON)
# Alerts ordered by id in one query at most: at 256 MB one sort of 10.3M ids fitted, and what a
# sort needs grows with what it orders (``util.ordered``).
IDS_PER_SORT = 1 << 21
# The group database's memory while a checkpointed run's groups are counted and saved: at 256 MB
# the count of 2.2M matches and the groups they reach ran out of memory in one run of two.
CARRY_MEMORY_MB = 512
HELD_PICKS = 1 << 18  # rendered picks (samples included) held before they are stored
# Batches whose picks are held late at most: each keeps how to read its rows again (a few kB,
# ``add_late``), so a scan of a great many small files renders the later ones' picks at once
# rather than grow with its input.
LATE_BATCHES = 10_000
ROW_GROUP = 16384  # rows per row group of the matches and picks files (what a reader holds)

_MATCHES = pa.schema([("rule", pa.string()), ("dedup", pa.string()), ("window_us", pa.int64()),
                      ("event_us", pa.int64()), ("uniq", pa.string())])
# A first event's own alert values, as the alert line takes them (``Rendered.fields``).
FIELDS = ("title", "severity", "context", "description", "reference", "runbook", "destinations")
_FIELDS = [(name, pa.string()) for name in FIELDS]
_PICKS = pa.schema([("rule", pa.string()), ("dedup", pa.string()), ("window_us", pa.int64()),
                    ("event_us", pa.int64()), ("source", pa.string()), ("position", pa.int64()),
                    ("python", pa.bool_()), ("payload", pa.binary()), ("sample", pa.string()),
                    *_FIELDS, ("late", pa.int64())])
_COMPLETED = pa.schema([("pid", pa.int64()), ("payload", pa.binary()), *_FIELDS])
_RULES = pa.schema([("rule", pa.string()), ("threshold", pa.int64()), ("period_us", pa.int64()),
                    ("uses_unique", pa.bool_()), ("title", pa.string()),
                    ("severity", pa.string()), ("description", pa.string()),
                    ("reference", pa.string()), ("runbook", pa.string()),
                    ("name_json", pa.string()), ("mitre_json", pa.string()),
                    ("log_types_json", pa.string()), ("severity_json", pa.string()),
                    ("description_json", pa.string()), ("reference_json", pa.string()),
                    ("runbook_json", pa.string())])


@dataclass(frozen=True)
class Wanted:
    """A batch's matches of one rule that may be an alert's first event or one of its samples
    (``SqlGrouper.wanted``), column by column: no Python object per match."""

    rule: Rule
    source: str
    offset: int
    rows: np.ndarray  # batch rows, ascending
    dedup: pa.Array
    window_us: np.ndarray
    event_us: np.ndarray
    title: pa.Array  # the title key where dedup fell back to it, else null
    unique: pa.Array

    def take(self, indexes: np.ndarray) -> Wanted:
        """The wanted matches at ``indexes`` (ascending)."""
        at = pa.array(indexes, type=pa.int64())
        return Wanted(self.rule, self.source, self.offset, self.rows[indexes],
                      self.dedup.take(at), self.window_us[indexes], self.event_us[indexes],
                      self.title.take(at), self.unique.take(at))


@dataclass
class _Pick:
    """A match that may be first or a sample of its group: its record comes with ``fill``."""

    rule: Rule
    result: RuleResult
    key: OrderKey
    dedup: str  # its group's dedup string
    window_us: int
    record: dict[str, Any] | None


@dataclass(frozen=True)
class Resolved:
    """Late picks made whole (``Resolve``), by index into the rows asked for: those the query
    rendered (their samples and alert values, as ``add_rendered`` takes them), and the others
    with their records, whose alert functions run in Python."""

    rendered: np.ndarray
    samples: pa.Array
    fields: Mapping[str, pa.Array]
    records: list[tuple[int, dict[str, Any]]]


# Renders the late picks at batch rows ``rows`` (ascending) of one batch, whose title keys are
# ``title`` (``Wanted.title``), from their complete records read again.
Resolve = Callable[[np.ndarray, pa.Array], Resolved]


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
        self._dir = ScratchDirectory("flowwarden-groups-", directory)
        # In memory until GROUP_MEMORY_MB, then spilled to the directory: no write-ahead log.
        self.memory_mb = GROUP_MEMORY_MB
        self.con = duckdb.connect(":memory:", config={
            "memory_limit": f"{self.memory_mb}MB", "temp_directory": str(Path(self._dir.name)),
            "preserve_insertion_order": False})
        weakref.finalize(self, _close, self.con, self._dir)
        self.con.execute(f"CREATE TABLE rules ({_columns(_RULES)})")
        self._rules: dict[str, Rule] = {}
        self._rows: list[tuple[Rule, RuleResult, OrderKey, dict[str, Any] | None]] = []
        self._picks: dict[OrderKey, list[_Pick]] = defaultdict(list)  # awaiting records
        self._stored: dict[str, list[Any]] = {name: [] for name in _PICKS.names}  # pickled
        self._table: AlertTable | None = None
        self._lines = False
        # Matches and picks go to Parquet files rather than tables: the bulk of what a scan
        # keeps (samples compress about five times) never sits in the database's memory.
        self._matches = RowFile(Path(self._dir.name) / "matches.parquet", _MATCHES, ["rule"])
        self._picks_file = RowFile(Path(self._dir.name) / "picks.parquet", _PICKS,
                                   ["rule", "source"], ids="pid")
        self._late: dict[int, tuple[int, Rule, Resolve]] = {}  # batch offset, rule, resolver
        self._carry: Carry | None = None
        self.horizon_us: int | None = None
        self.saved: GroupFiles | None = None  # with ``carry``: the changed groups, once collected
        self.late = 0  # matches in windows that ended at or before ``horizon_us``
        self.newest_us: int | None = None  # the newest event time counted

    @property
    def directory(self) -> Path:
        """Where the grouper keeps its files (removed with it)."""
        return Path(self._dir.name)

    def carry(self, carry: Carry, horizon_us: int | None) -> None:
        """Continue the stored groups ``carry`` hands over (a checkpointed run, before any
        match): only the groups this grouper's matches reach become alerts, and ``collect``
        saves them (``saved``). Matches in windows that end at or before ``horizon_us`` are
        late: counted in ``late``, otherwise ignored."""
        self._carry, self.horizon_us = carry, horizon_us

    def _live(self, rule: Rule, event_us: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Which matches count: those in windows that end after the carried horizon (the
        others are late); notes the newest event time counted."""
        live = np.ones(len(windows), dtype=bool)
        if self.horizon_us is not None:
            live = windows + period_us(rule.dedup_minutes) > self.horizon_us
            self.late += int(len(live) - np.count_nonzero(live))
        if live.any():
            self._newest(int(event_us[live].max()))
        return live

    def _newest(self, event_us: int) -> None:
        self.newest_us = event_us if self.newest_us is None else max(self.newest_us, event_us)

    # -- per match -------------------------------------------------------------------------
    def add(self, rule: Rule, result: RuleResult, key: OrderKey,
            record: dict[str, Any] | None) -> bool:
        """Count one match (``key``: event time, source, position); True when ``record`` is None
        and the record is wanted (it may be: ``fill`` hands it over)."""
        event_us = micros(key[0])
        if self.horizon_us is None:  # the common case without numpy's cost per match
            self._newest(event_us)
        elif not self._live(rule, np.array([event_us]), np.array([window_us(event_us, rule)]))[0]:
            return False
        self._rows.append((rule, result, key, record))
        return record is None

    # -- per batch of compiled matches -----------------------------------------------------
    def add_matches(self, rule: Rule, matches: MatchColumns, source: str, offset: int
                    ) -> list[tuple[int, RuleResult, OrderKey]]:
        """Count ``matches`` of ``rule`` (batch rows ``matches.rows``, positions ``offset`` on in
        ``source``); returns the rows whose record is wanted, with their rule results (keys
        only: their alert values may be filled in before ``fill``) and order keys."""
        return self.want(self.wanted(rule, matches, source, offset))

    def wanted(self, rule: Rule, matches: MatchColumns, source: str, offset: int) -> Wanted:
        """Count ``matches`` as ``add_matches`` does; returns the wanted ones as columns, to be
        handed over rendered (``add_rendered``) or with records (``want``, then ``fill``)."""
        self._know(rule)
        windows = window_us(matches.event_us, rule)
        live = self._live(rule, matches.event_us, windows)
        if not live.all():
            matches, windows = matches.take(np.flatnonzero(live)), windows[live]
        unique = matches.unique_array()
        if len(matches.rows):
            self._matches.hold(pa.Table.from_arrays([
                pa.array(np.full(len(matches.rows), rule.id, dtype=object), type=pa.string()),
                matches.dedup.cast(pa.string()), pa.array(windows),
                pa.array(matches.event_us), unique.cast(pa.string())], schema=_MATCHES))
        every = Wanted(rule, source, offset, matches.rows, matches.dedup, windows,
                       matches.event_us, matches.title_array(), unique)
        if not len(matches.rows):
            return every
        return every.take(_firsts(matches.dedup, windows, matches.event_us, self.firsts))

    def want(self, wanted: Wanted) -> list[tuple[int, RuleResult, OrderKey]]:
        """Wanted matches whose records come with ``fill``: their rule results (keys only)
        and order keys, by batch row."""
        rule, chosen = wanted.rule, []
        dedups, uniques = wanted.dedup.to_pylist(), wanted.unique.to_pylist()
        for at, (row, title) in enumerate(zip(wanted.rows.tolist(), wanted.title.to_pylist(),
                                              strict=True)):
            pick = _keyed_pick(rule, title, dedups[at], uniques[at], int(wanted.event_us[at]),
                               wanted.source, wanted.offset + row, int(wanted.window_us[at]))
            self._picks[pick.key].append(pick)
            chosen.append((row, pick.result, pick.key))
        return chosen

    def add_rendered(self, wanted: Wanted, samples: pa.Array,
                     fields: Mapping[str, pa.Array]) -> None:
        """Wanted matches whose records never become Python objects: their samples as alert
        JSON and their own alert values (``FIELDS``, each absent or a column: text as the
        functions' ``str()``, ``context`` and ``destinations`` JSON text, null for None), all
        rendered by the query; their alert functions need no Python."""
        self._hold_picks(wanted, samples, fields, None)

    @property
    def defers(self) -> bool:
        """Whether wanted matches may be handed over late (``add_late``): not in a run that
        carries groups, whose saved events must be whole when it ends, nor beyond
        ``LATE_BATCHES``."""
        return self._carry is None and len(self._late) < LATE_BATCHES

    def add_late(self, wanted: Wanted, resolve: Resolve) -> None:
        """Wanted matches kept by their keys alone: ``collect`` has ``resolve`` render those
        that are kept events of an alert, and no other's record is ever read. For a rule with
        a threshold, where most groups never alert (a port scan's probes on quiet traffic)."""
        if not len(wanted.rows):
            return
        late = len(self._late)
        self._late[late] = (wanted.offset, wanted.rule, resolve)
        self._hold_picks(wanted, pa.nulls(len(wanted.rows), pa.string()),
                         {"title": wanted.title}, late)  # its title key, for ``resolve``

    def _hold_picks(self, wanted: Wanted, samples: pa.Array, fields: Mapping[str, pa.Array],
                    late: int | None) -> None:
        """Picks of ``wanted`` with their samples and alert values (``add_rendered``), or late
        ones (``late``: which ``resolve`` of ``_late`` makes them whole)."""
        count = len(wanted.rows)
        if not count:
            return
        nothing = pa.nulls(count, pa.string())
        self._picks_file.hold(pa.Table.from_arrays([
            pa.array(np.full(count, wanted.rule.id, dtype=object), type=pa.string()),
            wanted.dedup.cast(pa.string()), pa.array(wanted.window_us, type=pa.int64()),
            pa.array(wanted.event_us, type=pa.int64()),
            pa.array(np.full(count, wanted.source, dtype=object), type=pa.string()),
            pa.array(wanted.rows + wanted.offset, type=pa.int64()),
            pa.array(np.zeros(count, dtype=bool)), pa.nulls(count, pa.binary()),
            samples.cast(pa.string()),
            *(fields[name].cast(pa.string()) if name in fields else nothing for name in FIELDS),
            pa.nulls(count, pa.int64()) if late is None else pa.array(
                np.full(count, late, dtype=np.int64))], schema=_PICKS))
        if self._picks_file.held >= HELD_PICKS:
            self._store_picks()

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
        self._store_picks()
        self._matches.flush()

    def _store_picks(self) -> None:
        """Write the picks held so far (they hold samples: a large batch's are stored in
        parts, ``add_rendered``)."""
        if self._stored["rule"]:
            self._picks_file.hold(pa.Table.from_arrays(
                [pa.array(self._stored[n], type=_PICKS.field(n).type) for n in _PICKS.names],
                schema=_PICKS))
            self._stored = {name: [] for name in _PICKS.names}
        self._picks_file.flush()

    def _ready(self, pick: _Pick) -> None:
        for name, value in _pick_row(pick):
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
            window = window_us(event_us, rule)
            for name, value in (("rule", rule.id), ("dedup", dedup), ("window_us", window),
                                ("event_us", event_us), ("uniq", result.unique)):
                columns[name].append(value)
            groups[(rule.id, dedup, window)].append((key, rule, result, record))
        self._rows.clear()
        self._matches.hold(pa.Table.from_arrays(
            [pa.array(columns[n], type=_MATCHES.field(n).type) for n in _MATCHES.names],
            schema=_MATCHES))
        for (_, dedup, window), members in groups.items():
            members.sort(key=lambda m: m[0])
            for key, rule, result, record in members[:self.firsts]:
                self._ready(_Pick(rule, result, key, dedup, window, record))

    def _know(self, rule: Rule) -> None:
        if rule.id not in self._rules:
            self._rules[rule.id] = rule
            self._insert("rules", _RULES, [pa.array([value], type=_RULES.field(i).type)
                                           for i, value in enumerate(_rule_row(rule))])

    def _insert(self, table: str, schema: pa.Schema, arrays: Sequence[pa.Array]) -> None:
        with registered(self.con, "new_rows", pa.Table.from_arrays(list(arrays), schema=schema)):
            self.con.execute(f"INSERT INTO {table} SELECT * FROM new_rows")

    # -- the alerts ------------------------------------------------------------------------
    def collect(self) -> AlertTable:
        """The alerts of every group that reached its rule's threshold (made once)."""
        if self._table is None:
            self.end_batch()
            self._matches.view(self.con, "match_rows")
            self._picks_file.view(self.con, "pick_rows")
            carried = None
            if self._carry is not None:
                reached = self.directory / "reached.parquet"
                self.con.execute(copy_sql("SELECT DISTINCT rule, dedup, window_us FROM match_rows",
                                          reached))
                carried = self._carry(reached, self.directory)
            self.con.execute(matches_view(carried))
            self.con.execute(picks_view(carried))
            self.con.execute(_RANKED_SQL.format(firsts=self.firsts,
                                                changed="" if carried is None else CHANGED))
            completed = False
            if carried is None:
                self.con.execute(f"CREATE TABLE groups AS {_COUNTED_SQL} "
                                 + _GROUPS_SQL.format(reached="reached"))
                self._resolve_late()
            else:  # every changed group's first event completed, then the groups saved
                with self.memory_at_least(CARRY_MEMORY_MB):
                    self.con.execute(f"CREATE TABLE touched AS {_COUNTED_SQL} "
                                     "SELECT * FROM reached")
                    self.con.execute("CREATE TABLE groups AS "
                                     + _GROUPS_SQL.format(reached="touched"))
                    completed = self._complete_firsts(TOUCHED_FIRSTS)
                    self.saved = save(self.con, self.directory, completed)
                    self.con.execute("DROP TABLE touched")
            for table, select, source, key, done_with in _ORDERED_TABLES:
                create_in_order(self.con, table, select, source, key)
                for name in done_with:
                    self.con.execute(f"DROP {name}")
            self.con.execute(_kept_sql(completed))
            if not completed and self._complete_firsts(_ALERT_FIRSTS):
                completed = True
                self.con.execute(_kept_sql(completed=True))
            if completed:
                self.con.execute("UPDATE alerts SET first_python = false")
            self._table = AlertTable(self)
        return self._table

    def _resolve_late(self) -> None:
        """The late picks that are kept events of an alert made whole (``add_late``): each
        becomes a new pick (a second picks file), which the ranks and groups then name in its
        place; the others are never read."""
        if not self._late:
            return
        first = self._picks_file.rows
        resolved = RowFile(self.directory / "picks-resolved.parquet", _PICKS, ["rule", "source"],
                           ids="pid", first_id=first)
        old: list[pa.Array] = []
        python: list[pa.Array] = []
        for batch in read_batches(self.con, _LATE_KEPT):
            for start, stop in _runs(batch.column("late").to_numpy()):
                table = self._resolved(batch.slice(start, stop - start))
                old.append(table.column("old").combine_chunks())
                python.append(table.column("python").combine_chunks())
                resolved.hold(table.drop_columns(["old"]))
            resolved.flush()
        resolved.close()
        remap = pa.table({"old": pa.concat_arrays(old) if old else pa.array([], pa.int64()),
                          "new": pa.array(np.arange(first, resolved.rows + first, dtype=np.int64)),
                          "python": pa.concat_arrays(python) if python else pa.array([], pa.bool_())})
        with registered(self.con, "remap", remap):
            for statement in _REMAP_SQL:
                self.con.execute(statement)
        self.con.execute("CREATE OR REPLACE VIEW picks AS SELECT * FROM read_parquet(["
                         f"{sql_literal(str(self._picks_file.path))}, "
                         f"{sql_literal(str(resolved.path))}])")

    def _resolved(self, kept: pa.RecordBatch) -> pa.Table:
        """Picks (``_PICKS``) made of late picks ``kept`` of one batch (``_LATE_KEPT``), each
        with the id of the pick it stands for (``old``)."""
        offset, rule, resolve = self._late[int(kept.column("late")[0].as_py())]
        positions = kept.column("position").to_numpy()
        found = resolve(positions - offset, kept.column("title"))
        rendered = pa.array(found.rendered, type=pa.int64())
        count = len(found.rendered)
        nothing = pa.nulls(count, pa.string())
        columns = {name: kept.column(name).take(rendered)
                   for name in ("rule", "dedup", "window_us", "event_us", "source", "position")}
        table = pa.table({"old": kept.column("pid").take(rendered), **columns,
                          "python": pa.array(np.zeros(count, dtype=bool)),
                          "payload": pa.nulls(count, pa.binary()),
                          "sample": found.samples.cast(pa.string()),
                          **{name: found.fields[name].cast(pa.string())
                             if name in found.fields else nothing for name in FIELDS},
                          "late": pa.nulls(count, pa.int64())})
        if not found.records:
            return table
        stored: dict[str, list[Any]] = {name: [] for name in ("old", *_PICKS.names)}
        keys = kept.take(pa.array([index for index, _ in found.records], type=pa.int64()))
        for row, (_, record) in zip(keys.to_pylist(), found.records, strict=True):
            pick = _keyed_pick(rule, row["title"], row["dedup"], None, row["event_us"],
                               row["source"], row["position"], row["window_us"], record)
            stored["old"].append(row["pid"])
            for name, value in _pick_row(pick):
                stored[name].append(value)
        with_records = pa.table({name: pa.array(values, type=table.schema.field(name).type)
                                 for name, values in stored.items()})
        return pa.concat_tables([table, with_records])

    def _complete_firsts(self, firsts: str) -> bool:
        """Alert functions that need Python, once per first event of ``firsts`` (a query of
        pick id, rule, payload, time, source and position): into table ``completed``, if
        any needed them."""
        found = self.con.execute(f"SELECT count(*) FROM ({firsts})").fetchone()
        if self.complete is None or not found or not found[0]:
            return False
        self.con.execute(f"CREATE TABLE completed ({_columns(_COMPLETED)})")
        for batch in read_batches(self.con, firsts):
            rows: list[tuple[Any, ...]] = []
            for pid, rule_id, payload, first_us, source, position in zip(
                    *(c.to_pylist() for c in batch.columns), strict=True):
                rule = self._rules[rule_id]
                result, record = _unpack(rule, payload)
                if record is not None:
                    key: OrderKey = (from_micros(first_us), source, position)
                    self.complete(rule, result, key, record)
                    result.alert_context = jsonable(result.alert_context)
                rows.append((pid, _pack(result, compact(record)), *result_fields(result)))
            self._insert("completed", _COMPLETED, [
                pa.array(column, type=_COMPLETED.field(i).type)
                for i, column in enumerate(zip(*rows, strict=True))])
        return True

    @contextmanager
    def memory_at_least(self, megabytes: int) -> Iterator[None]:
        """The database's memory limit at ``megabytes`` at least while inside, then its own."""
        if megabytes <= self.memory_mb:
            yield
            return
        self.con.execute(f"SET memory_limit = '{int(megabytes)}MB'")
        try:
            yield
        finally:
            self.con.execute(f"SET memory_limit = '{int(self.memory_mb)}MB'")

    @property
    def chunk_bytes(self) -> int:
        """Bytes of rows per query of a chunked read of the alerts (``tablequery.SeqChunks``)."""
        return (self.memory_mb << 20) // CHUNK_SHARE

    def lines(self) -> None:
        """The ``lines`` view: each alert's ``alert_json`` line by ``seq`` (made once)."""
        if not self._lines:
            for statement in _lines_sql(self.max_samples):
                self.con.execute(statement)
            self._lines = True

    def alert_of(self, row: Mapping[str, Any], payloads: Sequence[bytes | None]) -> Alert:
        """The ``Alert`` of one row of the alerts table (with its ``line``), with its kept
        events' payloads (the first event's first): from its line where a kept event's
        record was never a Python object."""
        stored = [payload for payload in payloads if payload is not None]
        if len(stored) < len(payloads) or not stored:
            return alert_from_json(row["line"])
        rule = self._rules[row["rule"]]
        result, record = _unpack(rule, stored[0])
        samples = []
        if self.max_samples:
            samples = [_sample(result, record)]
            samples += [_sample(*_unpack(rule, p)) for p in stored[1:]]
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


def sample_json(record: dict[str, Any] | None) -> str | None:
    """A record as an alert's sample, JSON text (``jsonsql.record_json`` renders the same)."""
    return None if record is None else dumps(compact(record))


def result_fields(result: RuleResult) -> tuple[str | None, ...]:
    """A complete first result's own alert values as a pick keeps them (``FIELDS``)."""
    return (result.title, result.severity,
            None if result.alert_context is None else dumps(result.alert_context),
            result.description, result.reference, result.runbook,
            None if result.destinations is None else dumps(result.destinations))


def _keyed_pick(rule: Rule, title: str | None, dedup: str, unique: str | None, event_us: int,
                source: str, position: int, window_us: int,
                record: dict[str, Any] | None = None) -> _Pick:
    """A pick whose rule result holds its keys only (its alert functions still to run)."""
    result = RuleResult(rule.id, matched=True, title=title, unique=unique, dedup=dedup,
                        keys_only=True)
    return _Pick(rule, result, (from_micros(event_us), source, position), dedup, window_us,
                 record)


def _pick_row(pick: _Pick) -> Iterator[tuple[str, Any]]:
    """A pick's row of the picks file (``_PICKS``), column by column: its record as its
    sample and, with its rule result, its payload."""
    time, source, position = pick.key
    fields = (None,) * len(FIELDS) if pick.result.keys_only else result_fields(pick.result)
    yield from (("rule", pick.rule.id), ("dedup", pick.dedup), ("window_us", pick.window_us),
                ("event_us", micros(time)), ("source", source), ("position", position),
                ("python", pick.result.keys_only), ("payload", _payload(pick)),
                ("sample", sample_json(pick.record)), *zip(FIELDS, fields, strict=True),
                ("late", None))


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of equal values.

    >>> _runs(np.array([4, 4, 7, 9, 9, 9]))
    [(0, 2), (2, 3), (3, 6)]
    """
    cuts = [0, *(np.flatnonzero(np.diff(values)) + 1).tolist(), len(values)]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def window_us(event_us: Any, rule: Rule) -> Any:
    """The start of ``rule``'s dedup window of ``event_us`` (microseconds since the epoch: an
    int, or a numpy array of them)."""
    period = period_us(rule.dedup_minutes)
    return event_us // period * period


def _rule_row(rule: Rule) -> tuple[Any, ...]:
    """A rule's row of the ``rules`` table (``_RULES``): what its alerts fall back to."""
    return (rule.id, rule.threshold, period_us(rule.dedup_minutes),
            rule.function("unique") is not None,
            rule.display_name or rule.id, rule.severity, rule.description, rule.reference,
            rule.runbook, dumps(rule.display_name or rule.id), dumps(mitre_entries(rule.mitre)),
            dumps(list(rule.log_types)), dumps(rule.severity), dumps(rule.description),
            dumps(rule.reference), dumps(rule.runbook))


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

    @property
    def seqs(self) -> range:
        """Every alert's ``seq``: a table is all of its grouper's alerts."""
        return range(self._count)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AlertTable | list):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared by content, like a list

    def __iter__(self) -> Iterator[Alert]:
        chunks = self._chunks()
        for seqs in chunks:
            yield from self._rows(f"WHERE {in_seqs(seqs)}", chunks)

    def _chunks(self) -> SeqChunks:
        """The alerts a query apiece, as many as ``SeqChunks`` sizes, ``LINE_CHUNK`` at most:
        one sort of every alert's line at once ran out of the group database's memory at 370k
        alerts, and a fixed number of alerts at 30M records in half the memory."""
        return SeqChunks(self._count, self.grouper.chunk_bytes, LINE_CHUNK)

    @overload
    def __getitem__(self, index: int) -> Alert: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Alert]: ...

    def __getitem__(self, index: int | slice) -> Alert | Sequence[Alert]:
        chosen = picked(index, self._count)
        if isinstance(chosen, int):
            return next(iter(self._rows(f"WHERE seq = {chosen}")))
        if chosen.step != 1:
            return list(self)[index]
        return list(self._rows(f"WHERE {in_seqs(chosen)}"))

    def json_lines(self) -> Iterator[bytes]:
        """Every alert's ``alert_json`` line, newline included, as the query wrote it: a query
        per chunk of alerts (``_chunks``), so that what its joins hold and its sort orders stays
        well within the database's memory however many alerts there are. Each reads its own part
        of ``alerts`` (the window that numbers them writes them in ``seq`` order) and of the
        picks file (its row groups carry their pick ids' range)."""
        for batch in self._line_batches("line"):
            yield joined_text(batch.column(0))

    def id_lines(self) -> Iterator[pa.RecordBatch]:
        """Every alert's id and line (as ``json_lines``), in order, in Arrow batches: what a
        checkpointed run's outbox keeps."""
        return self._line_batches("id, line")

    def _line_batches(self, columns: str) -> Iterator[pa.RecordBatch]:
        self.grouper.lines()
        yield from self._chunks().read(
            self.grouper.con,
            lambda seqs: f"SELECT {columns} FROM lines WHERE {in_seqs(seqs)} ORDER BY seq",
            LINE_BATCH)

    def identity_text(self) -> Iterator[bytes]:
        """``id:event count:last event time (isoformat)`` of every alert, a line each, by id:
        what a digest of the alerts (``runs.checkpoint.alerts_name``) reads."""
        last = iso_micros("last_us", quoted=False)
        for where in id_ranges(self._count, IDS_PER_SORT):
            yield from text_chunks(self.grouper.con,
                                   "SELECT id || ':' || CAST(events AS VARCHAR) || ':' || "
                                   f"{last} || chr(10) FROM alerts {where} ORDER BY id")

    def _rows(self, where: str, chunks: SeqChunks | None = None) -> Iterator[Alert]:
        """The alerts (of the ``where`` clause on ``seq``), in order: one query for the alerts,
        one for their kept events' payloads, both by ``seq``, walked side by side (the alerts'
        rows counted in ``chunks``)."""
        con = self.grouper.con
        self.grouper.lines()
        alerts = (row for batch in _observed(read_batches(
            con, f"SELECT * FROM alerts JOIN lines USING (seq) {where} ORDER BY seq"), chunks)
            for row in batch.to_pylist())
        kept = ((seq, payload) for batch in read_batches(
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
        # The top of each rule by a top-N query, which holds ``top`` rows: a window ranking
        # every dedup string sorts them all, and what a sort needs grows with them.
        con.execute("CREATE OR REPLACE TEMP TABLE dedups AS SELECT rule, dedup, count(*) AS n, "
                    "sum(events) AS e FROM alerts GROUP BY rule, dedup")
        try:
            for rule, summary in found.items():
                summary.top = [(dedup, count, int(events)) for dedup, count, events in con.execute(
                    "SELECT dedup, n, e FROM dedups WHERE rule = $rule "
                    "ORDER BY n DESC, e DESC, dedup LIMIT $top",
                    {"rule": rule, "top": top}).fetchall()]
        finally:
            con.execute("DROP TABLE dedups")
        return found


def _observed(batches: Iterator[pa.RecordBatch], chunks: SeqChunks | None
              ) -> Iterator[pa.RecordBatch]:
    """``batches``, each counted in ``chunks`` (when given) as it is handed on."""
    for batch in batches:
        if chunks is not None:
            chunks.observe(batch.num_rows, batch.nbytes)
        yield batch


def id_ranges(count: int, per_query: int, column: str = "id") -> list[str]:
    """WHERE clauses that cut ``count`` alerts into ranges of their ids (32 lowercase hex
    digits, uniformly spread), in id order, about ``per_query`` a range; ``column`` holds the
    ids, or text that starts with them.

    >>> id_ranges(10, per_query=10)
    ['']
    >>> id_ranges(3, per_query=1)
    ["WHERE id < '55555555'", "WHERE id >= '55555555' AND id < 'aaaaaaaa'", "WHERE id >= 'aaaaaaaa'"]
    """
    parts = max(1, -(-count // per_query))
    if parts == 1:
        return [""]
    bounds = [f"{(1 << 32) * k // parts:08x}" for k in range(1, parts)]
    lows, highs = [None, *bounds], [*bounds, None]
    return ["WHERE " + " AND ".join(
        ([f"{column} >= {sql_literal(low)}"] if low else [])
        + ([f"{column} < {sql_literal(high)}"] if high else []))
        for low, high in zip(lows, highs, strict=True)]


def text_chunks(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[bytes]:
    """The one text column of ``sql``'s rows, each batch's as one UTF-8 chunk (its Arrow data
    buffer: the rows end in their own newlines)."""
    for batch in read_batches(con, sql, LINE_BATCH):
        yield joined_text(batch.column(0))


class RowFile:
    """Rows with ``schema`` held in parts, then appended to a Parquet file by ``flush``
    (Snappy, ``dictionary`` columns dictionary-encoded, row groups of ``ROW_GROUP``) and read
    by DuckDB as a view. With ``ids``, a first column of that name numbers the rows in the
    order they were written."""

    def __init__(self, path: Path, schema: pa.Schema, dictionary: list[str],
                 ids: str | None = None, first_id: int = 0) -> None:
        self.path, self.dictionary, self.ids, self.first_id = path, dictionary, ids, first_id
        self.schema = schema if ids is None else pa.schema([(ids, pa.int64()), *schema])
        self.rows = 0  # written
        self.held = 0  # held, not yet written
        self._parts: list[pa.Table] = []
        self._writer: pq.ParquetWriter | None = None

    def hold(self, table: pa.Table) -> None:
        self._parts.append(table)
        self.held += table.num_rows

    def flush(self) -> None:
        """Write the rows held so far."""
        if not self._parts:
            return
        table = pa.concat_tables(self._parts)
        self._parts.clear()
        self.held = 0
        if self.ids is not None:
            first = self.first_id + self.rows
            table = table.add_column(0, self.ids, pa.array(
                np.arange(first, first + table.num_rows, dtype=np.int64)))
        self._file().write_table(table, row_group_size=ROW_GROUP)
        self.rows += table.num_rows

    def view(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        """Every row as view ``name`` of ``con``; the file is complete from then on (with no
        row group when nothing was written: an empty view of the same columns)."""
        self.close()
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {parquet(self.path)}")

    def close(self) -> None:
        """Write the rows held so far and end the file (one without rows has no row group)."""
        self.flush()
        self._file().close()

    def _file(self) -> pq.ParquetWriter:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="snappy",
                                            use_dictionary=self.dictionary)
        return self._writer


def _columns(schema: pa.Schema) -> str:
    """``schema``'s columns as a CREATE TABLE lists them."""
    return ", ".join(f"{f.name} {_SQL_TYPES[f.type]}" for f in schema)


def _close(con: duckdb.DuckDBPyConnection, directory: ScratchDirectory) -> None:
    con.close()
    directory.cleanup()


def _or(value: str, fallback: str) -> str:
    """JSON of a first event's value, or of the rule's (its JSON column ``fallback``) where it
    is None or empty (``make_alert``): most alerts fall back, and rendering the rule's text
    once rather than on every line is a sixth of a line's cost."""
    return (f"(CASE WHEN coalesce(f.{value}, '') = '' THEN r.{fallback} "
            f"ELSE {json_string(f'f.{value}')} END)")


# Each alert as ``alert_json`` writes it: keys in sorted order, samples in rank order.
_LINE_PARTS = (
    ("alert_context", "coalesce(f.context, 'null')"), ("dedup", json_string("a.dedup")),
    ("description", _or("description", "description_json")),
    ("destinations", "coalesce(f.destinations, 'null')"),
    ("event_count", "CAST(a.events AS VARCHAR)"), ("first_event_time", iso_micros("a.first_us")),
    ("id", json_string("a.id")), ("last_event_time", iso_micros("a.last_us")),
    ("log_types", "r.log_types_json"), ("mitre", "r.mitre_json"),
    ("reference", _or("reference", "reference_json")), ("rule_id", json_string("a.rule")),
    ("rule_name", "r.name_json"), ("runbook", _or("runbook", "runbook_json")),
    ("samples", "'[' || coalesce(s.samples, '') || ']'"),
    ("severity", _or("severity", "severity_json")), ("threshold", "CAST(r.threshold AS VARCHAR)"),
    ("title", _or("title", "name_json")),
    ("unique_count", "CASE WHEN a.uses_unique THEN CAST(a.uniques AS VARCHAR) ELSE 'null' END"),
    ("window_start", iso_micros("a.window_us")),
)
_LINE = ", ".join(piece for index, (name, part) in enumerate(_LINE_PARTS) for piece in (
    sql_literal(("{" if index == 0 else ", ") + json.dumps(name) + ": "), part))


def _lines_sql(samples: int) -> tuple[str, ...]:
    """The statements that make the ``lines`` view for alerts with up to ``samples`` samples:
    the samples after the first, joined per alert into a table (``extra``: only alerts with
    more than one kept event have a row), then each line from its alert, its rule, its first
    kept event and that row. A view, not a table: the lines (the bulk of the output) are
    written once, as they are read, rather than stored and read back."""
    listed = "concat_ws(', ', f.sample, e.samples)" if samples > 1 else (
        "f.sample" if samples else "NULL")
    joined, rest = "sample", ""  # one later sample at most
    if 2 < samples <= JOINED_SAMPLES:  # the rank-2 row takes the later ones by a window: a
        # sort, which DuckDB spills, where string_agg's ordered states all stay in memory
        later = "".join(f", lead(sample, {k}) OVER w" for k in range(1, int(samples) - 1))
        joined = f"concat_ws(', ', sample{later})"
        rest = " WINDOW w AS (PARTITION BY seq ORDER BY rank) QUALIFY rank = 2"
    elif samples > JOINED_SAMPLES:  # a window per sample would not do: string_agg's memory
        joined, rest = "string_agg(sample, ', ' ORDER BY rank)", " GROUP BY seq"
    return (
        f"CREATE TABLE extra AS SELECT seq, {joined} AS samples FROM kept "
        f"WHERE rank BETWEEN 2 AND {max(int(samples), 2)}{rest}",
        f"CREATE VIEW lines AS SELECT a.seq, a.id, concat({_LINE.replace('s.samples', listed)}, "
        "'}', chr(10)) AS line FROM alerts a JOIN rules r USING (rule) "
        "JOIN kept f ON f.seq = a.seq AND f.rank = 1 LEFT JOIN extra e ON e.seq = a.seq")


_SQL_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN",
              pa.binary(): "BLOB"}

# The first events of each group, by pick id: the window sorts their keys only (their
# samples and alert values stay in the picks file, which ``kept`` reaches by id).
_RANKED_SQL = """CREATE TABLE ranked AS
    SELECT pid, rule, dedup, window_us, event_us, source, position, python,
           row_number() OVER w AS rank, first_value(pid) OVER w AS first_pid{changed}
    FROM picks WINDOW w AS (PARTITION BY rule, dedup, window_us
                            ORDER BY event_us, source, position)
    QUALIFY rank <= {firsts}"""
# The groups the matches changed (``reached``), with their counts and whether they reach their
# rule's threshold: plain aggregations (distinct unique values without a DISTINCT aggregate),
# in one step for rules without ``unique``. A match row counts ``n`` events (a carried group's
# row its events, a carried unique value none); ``new`` rows are this run's.
_COUNTED_SQL = """WITH plain AS (
        SELECT rule, dedup, window_us, sum(n)::BIGINT AS events, 0::BIGINT AS uniques,
               max(event_us) AS last_us, bool_or(new) AS changed
        FROM matches WHERE rule IN (SELECT rule FROM rules WHERE NOT uses_unique)
        GROUP BY rule, dedup, window_us
    ), per_unique AS (
        SELECT rule, dedup, window_us, uniq, sum(n) AS events, max(event_us) AS last_us,
               bool_or(new) AS changed
        FROM matches WHERE rule IN (SELECT rule FROM rules WHERE uses_unique)
        GROUP BY rule, dedup, window_us, uniq
    ), counted AS (
        SELECT * FROM plain
        UNION ALL
        SELECT rule, dedup, window_us, sum(events)::BIGINT, count(uniq), max(last_us),
               bool_or(changed)
        FROM per_unique GROUP BY rule, dedup, window_us
    ), reached AS (
        SELECT counted.* EXCLUDE (changed), rules.uses_unique,
               CASE WHEN rules.uses_unique THEN uniques ELSE events END >= rules.threshold
                   AS alerting
        FROM counted JOIN rules USING (rule) WHERE changed
    )"""
# The alerts' groups, each with its first event. Strings (rule, dedup) are hashed and compared
# once per group, by the window that ranks the picks and by the join of the counts to the first
# picks; after that a group is its first pick's id.
_GROUPS_SQL = """
    SELECT g.* EXCLUDE (alerting), f.pid AS first_pid, f.event_us AS first_us,
           f.source AS first_source, f.position AS first_position, f.python AS first_python
    FROM {reached} g JOIN ranked f USING (rule, dedup, window_us)
    WHERE f.rank = 1 AND g.alerting"""
# The first events of alerts whose alert functions need Python, in the alerts' order.
_ALERT_FIRSTS = ("SELECT k.pid, a.rule, k.payload, a.first_us, a.first_source, "
                 "a.first_position FROM alerts a JOIN kept k ON k.seq = a.seq AND k.rank = 1 "
                 "WHERE a.first_python ORDER BY a.seq")

# The late picks (``SqlGrouper.add_late``) among the kept events of an alert, a batch's together
# in position order.
_LATE_KEPT = ("SELECT r.pid, p.late, r.rule, r.dedup, r.window_us, r.event_us, r.source, "
              "r.position, p.title FROM ranked r JOIN pick_rows p USING (pid) "
              "WHERE p.late IS NOT NULL AND r.first_pid IN (SELECT first_pid FROM groups) "
              "ORDER BY p.late, r.position")
# Late picks made whole (table ``remap``: the pick each stands for, its own, whether its alert
# functions need Python) stand in for them wherever the ranks and groups name them.
_REMAP_SQL = (
    "UPDATE ranked SET pid = m.new, python = m.python FROM remap m WHERE ranked.pid = m.old",
    "UPDATE ranked SET first_pid = m.new FROM remap m WHERE ranked.first_pid = m.old",
    "UPDATE groups SET first_pid = m.new, first_python = m.python FROM remap m "
    "WHERE groups.first_pid = m.old",
)

# The alerts and their kept events, each table (name, its rows by a WHERE clause on its source's
# key column and the rows before them, source, key column, what it leaves unneeded) made by
# ``ordered.create_in_order``.
# The numbering sorts narrow rows (sorting the wide rows by their order key took half of this
# at 10M records); no two groups share a first event and rule, so dedup need not order them.
# ``alerts`` and ``kept_ids`` are written in ``seq`` order: a query for a range of ``seq``
# (``AlertTable``) then reads only that range's row groups. The id is ``model.alert_id``
# (sha256 of rule, dedup and the window's isoformat, whole minutes so no fraction, cut to 32
# hex digits), here to order by it.
_ORDERED_TABLES: tuple[tuple[str, Select, str, str, tuple[str, ...]], ...] = (
    ("numbered", lambda where, before: f"""
    SELECT first_pid, {before} + row_number() OVER (
               ORDER BY first_us, first_source, first_position, rule) - 1 AS seq
    FROM groups {where}""", "groups", "first_us", ()),
    ("alerts", lambda where, _: f"""
    SELECT n.seq, left(sha256(rule || chr(31) || dedup || chr(31)
                              || strftime(make_timestamp(window_us), '%Y-%m-%dT%H:%M:%S')
                              || '+00:00'), 32) AS id, g.*
    FROM groups g JOIN (SELECT * FROM numbered {where}) n USING (first_pid) ORDER BY seq""",
     "numbered", "seq", ("TABLE groups", "TABLE numbered", "VIEW matches")),
    ("kept_ids", lambda where, _: f"""
    SELECT a.seq, k.rank, k.pid FROM (SELECT seq, first_pid FROM alerts {where}) a
    JOIN ranked k USING (first_pid) ORDER BY seq""", "alerts", "seq", ("TABLE ranked",)),
)


def _kept_sql(completed: bool) -> str:
    """The ``kept`` view: each alert's kept events by rank, their samples and alert values
    from the picks; ``completed``: a first event's values completed in Python (table
    ``completed``) stand in for its pick's."""
    values = ("payload", *FIELDS)
    chosen = ", ".join(f"CASE WHEN c.pid IS NULL THEN p.{name} ELSE c.{name} END AS {name}"
                       if completed else f"p.{name}" for name in values)
    joined = " LEFT JOIN completed c ON c.pid = k.pid" if completed else ""
    return ("CREATE OR REPLACE VIEW kept AS SELECT k.seq, k.rank, k.pid, p.sample, "
            f"{chosen} FROM kept_ids k JOIN picks p ON p.pid = k.pid{joined}")
