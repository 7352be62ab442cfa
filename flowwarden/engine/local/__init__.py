"""The engines that run in this process, batch by batch: ``duckdb`` and ``python``.

``PythonEvaluation`` is Panther's model, every rule on every event: the reference.
``CompiledEvaluation`` asks the compiled conditions (``vectorized``: one DuckDB query per batch
for all rules) which rows match or need Python to decide, loads complete records only for those
rows (phase 2 of a projected read), and runs Python only there: the whole rule where the query
could not decide, the alert-time functions where it matched. The matches of a rule with a
threshold are handed over late where the input can be read again (``LogBatch.late``): only
those of groups that alert are ever loaded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.alerts.grouping import MatchColumns, micros, time_value
from flowwarden.alerts.groupstore import Resolved, Wanted
from flowwarden.engine.enrichment import panther_records
from flowwarden.engine.scan import BatchLike, Evaluation, Results, full_rows
from flowwarden.errors import UsageError
from flowwarden.logs.model import RowLoader
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import MAX_DEDUP, MAX_TITLE, Rule, RuleResult

if TYPE_CHECKING:
    from flowwarden.engine.local.vectorized import Verdicts

EVENT_TIME = "p_event_time"
JSON_VALUES = ("alert_context", "destinations")  # the compiled values given as JSON text
# Complete records are loaded, converted and handed over this many rows at a time, so that a
# batch where most rows match never holds all of its records as Python objects at once.
RECORD_CHUNK = 65536
# A batch's matches are handled this many at a time (of all its rules together): phase-1
# batches are large (``engine.loop.PHASE_ONE_BATCH``) so that a scan where few rows match runs
# few queries, and a batch where most rows match is handled in parts of about the size of one.
SLICE_MATCHES = 1 << 18


def match_slices(verdicts: Sequence[Verdicts], rows: int, limit: int | None = None
                 ) -> list[tuple[int, int]]:
    """Row ranges ``[low, high)`` covering a batch of ``rows``, each holding about ``limit``
    matches and PYTHON rows of all the rules at most: a large batch where few rows match is
    handled at once, one where most match a part at a time, so that what its matches hold
    (keys, records, samples) does not grow with the batch. ``limit``: ``SLICE_MATCHES``.

    >>> from flowwarden.engine.local.vectorized import Verdicts
    >>> codes = np.array([1, 1, 0, 1, 2, 1], dtype=np.int8)
    >>> match_slices([Verdicts.from_codes(codes)], 6)
    [(0, 6)]
    >>> match_slices([Verdicts.from_codes(codes)] * 2, 6, limit=4)
    [(0, 3), (3, 5), (5, 6)]
    """
    limit = SLICE_MATCHES if limit is None else limit
    handled = np.sort(np.concatenate([np.zeros(0, dtype=np.int64),
                                      *(v.match for v in verdicts), *(v.python for v in verdicts)]))
    cuts = np.unique(handled[limit::limit]).tolist() if len(handled) > limit else []
    bounds = [0, *(c for c in cuts if c > 0), rows]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


class PythonEvaluation:
    """Every rule on every event, as Panther does."""

    name = "python"

    def __init__(self, pack: Pack, rules: Sequence[Rule]) -> None:
        self.pack = pack

    def columns(self, rules: Sequence[Rule]) -> tuple[str, ...] | None:
        return None

    def evaluate(self, item: BatchLike, rules: Sequence[Rule], results: Results) -> int:
        batch = item.batch
        if getattr(item, "complete", None) is not None:  # a projected read: complete it
            batch = full_rows(item, np.arange(batch.num_rows))
        for index, record in enumerate(panther_records(batch)):
            event = self.pack.event(record)
            for rule in rules:
                results(rule, rule.evaluate(event, keys_only=True), index, record)
        return 0


class CompiledEvaluation:
    """The compiled conditions decide; Python runs only on the rows they leave to it.

    On a match the key functions (``dedup``, ``unique``, ``title`` where dedup falls back to
    it) come from the same query where they compile; only the records of events that become
    an alert's first event or a sample are built (``Results.fill``).
    """

    name = "duckdb"

    def __init__(self, pack: Pack, rules: Sequence[Rule]) -> None:
        from flowwarden.engine.local.vectorized import compile_pack

        self.pack = pack
        self.compiled = compile_pack(pack, list(rules))

    def columns(self, rules: Sequence[Rule]) -> tuple[str, ...] | None:
        log_types = {lt for rule in rules for lt in rule.log_types}
        return tuple(sorted(set().union(*(self.compiled.columns(lt) for lt in log_types))))

    def evaluate(self, item: BatchLike, rules: Sequence[Rule], results: Results) -> int:
        from flowwarden.engine.local.vectorized import evaluate_batch

        verdicts = evaluate_batch(self.compiled, item.batch, item.log_type)
        chosen = [(rule, verdicts[rule.id]) for rule in rules if rule.id in verdicts]
        return sum(self._handle(item, [(rule, verdict.within(low, high)) for rule, verdict in chosen],
                                results)
                   for low, high in match_slices([v for _, v in chosen], item.batch.num_rows))

    def _handle(self, item: BatchLike, chosen: list[tuple[Rule, Verdicts]],
                results: Results) -> int:
        """The matches and PYTHON rows of ``chosen`` (verdicts of part of ``item``'s rows);
        returns how many rows the rules ran on in Python."""
        wanted: list[Wanted] = []
        python_keys: list[tuple[Rule, np.ndarray]] = []
        for rule, verdict in chosen:
            if len(verdict.match):
                columns, asked = self._compiled_matches(item, rule, verdict.match)
                wanted.append(results.wanted(rule, columns))
                python_keys.append((rule, verdict.match[asked]))
        late = getattr(item, "late", None)
        if late is not None and results.defers:
            wanted = [w for w in wanted if not self._deferred(item.log_type, late, w, results)]
        ask = [(rule, v.python, True) for rule, v in chosen if len(v.python)]
        ask += [(rule, rows, False) for rule, rows in python_keys if len(rows)]
        needed = [rows for _, rows, _ in ask] + [w.rows for w in wanted]
        if not any(len(rows) for rows in needed):
            return 0
        positions = np.unique(np.concatenate(needed))
        for start in range(0, len(positions), RECORD_CHUNK):
            part = positions[start:start + RECORD_CHUNK]
            low, high = part[0], part[-1]  # ``positions`` is sorted: a chunk is a row range
            full = full_rows(item, part)
            samples = self.compiled.evaluator.samples(full) if results.renders else None
            # records as Python objects only where Python runs or a pick was not rendered
            pending = [rows[(rows >= low) & (rows <= high)] for _, rows, _ in ask]
            firsts: list[tuple[Rule, list[tuple[int, RuleResult]]]] = []
            for every in wanted:
                inside = every.take(np.flatnonzero((every.rows >= low) & (every.rows <= high)))
                if samples is not None:
                    inside = self._render(item.log_type, full, part, inside, samples, results)
                firsts.append((inside.rule, results.want(inside)))
                pending.append(inside.rows)
            python = np.unique(np.concatenate([np.zeros(0, dtype=np.int64), *pending]))
            chunk = full.take(pa.array(np.searchsorted(part, python), type=pa.int64()))
            if samples is None:
                for rule, picks in firsts:
                    self._compiled_alert_values(item.log_type, chunk, python, rule, picks)
            records = panther_records(chunk)
            for rule, rows, whole in ask:
                rows = rows[(rows >= low) & (rows <= high)]
                for row, at in zip(rows.tolist(), np.searchsorted(python, rows).tolist(),
                                   strict=True):
                    record = records[at]
                    event = self.pack.event(record)
                    result = (rule.evaluate(event, keys_only=True) if whole
                              else rule.evaluate_match(event, keys_only=True))
                    results(rule, result, row, record)
            results.fill(dict(zip(python.tolist(), records, strict=True)))
        return sum(len(rows) for _, rows, whole in ask if whole)

    def _compiled_matches(self, item: BatchLike, rule: Rule, rows: np.ndarray
                          ) -> tuple[MatchColumns, np.ndarray]:
        """The matches at ``rows`` whose keys the query computes, and a mask of the rows whose
        keys need Python."""
        from flowwarden.engine.local.vectorized import match_key_table

        keys = match_key_table(self.compiled, item.batch, item.log_type, rule.id, rows)
        return match_columns(rule.id, rows, keys, _event_micros(item.batch, rows))

    def _deferred(self, log_type: str, late: RowLoader, wanted: Wanted,
                  results: Results) -> bool:
        """Hand over late the wanted matches of a rule with a threshold, whose groups mostly
        never alert: their records are read again (``late``) only for those that do."""
        if wanted.rule.threshold <= 1 or not len(wanted.rows):
            return False
        results.defer(wanted, partial(self._resolve, log_type, late, wanted.rule))
        return True

    def _resolve(self, log_type: str, late: RowLoader, rule: Rule, rows: np.ndarray,
                 title: pa.Array) -> Resolved:
        """The late picks of ``rule`` at batch ``rows`` (title keys ``title``), rendered where
        their alert functions compile, else with their records (``Resolve``)."""
        full = late(pa.array(rows, type=pa.int64()))
        samples = self.compiled.evaluator.samples(full)
        everyone = np.arange(len(rows))
        if samples is None:
            return Resolved(everyone[:0], pa.nulls(0, pa.string()), {},
                            list(zip(everyone.tolist(), panther_records(full), strict=True)))
        python, fields = self._alert_fields(log_type, full, everyone, rule, title, samples)
        done, rest = np.flatnonzero(~python), np.flatnonzero(python)
        keep = pa.array(done, type=pa.int64())
        records = panther_records(full.take(pa.array(rest, type=pa.int64())))
        return Resolved(done, samples.take(keep),
                        {name: column.take(keep) for name, column in fields.items()},
                        list(zip(rest.tolist(), records, strict=True)))

    def _alert_fields(self, log_type: str, full: pa.RecordBatch, at: np.ndarray, rule: Rule,
                      title: pa.Array, samples: pa.Array
                      ) -> tuple[np.ndarray, dict[str, pa.Array]]:
        """For the records at ``at`` of ``full`` (title keys ``title``, samples ``samples``
        of every row of ``full``): which need Python for their alert functions, and the
        compiled alert values (``first_fields``) of each."""
        from flowwarden.engine.local.vectorized import alert_value_table

        table = alert_value_table(self.compiled, full, log_type, rule.id, at)
        python = ~_mask(samples.is_valid())[at]
        fields = {"title": title}
        if table is not None:
            python |= _flags(table)
            fields, odd = first_fields(rule, title, table)
            python |= odd
        return python, fields

    def _render(self, log_type: str, full: pa.RecordBatch, positions: np.ndarray,
                wanted: Wanted, samples: pa.Array, results: Results) -> Wanted:
        """Hand over rendered the wanted matches whose alert functions all compiled (``full``:
        the complete records of batch rows ``positions``; ``samples``: those rows as sample
        JSON); returns the others, whose alert functions run in Python."""
        at = np.searchsorted(positions, wanted.rows)
        python, fields = self._alert_fields(log_type, full, at, wanted.rule, wanted.title,
                                            samples)
        done = np.flatnonzero(~python)
        keep = pa.array(done, type=pa.int64())
        # The samples are the bulk of the data: taken once, and not at all when all are wanted.
        chosen = at[done]
        every = len(chosen) == len(samples) and bool((chosen == np.arange(len(chosen))).all())
        results.rendered(wanted.take(done),
                         samples if every else samples.take(pa.array(chosen, type=pa.int64())),
                         {name: column.take(keep) for name, column in fields.items()})
        return wanted.take(np.flatnonzero(python))

    def _compiled_alert_values(self, log_type: str, full: pa.RecordBatch, positions: np.ndarray,
                               rule: Rule, firsts: list[tuple[int, RuleResult]]) -> None:
        """The alert functions of matches that may be an alert's first event, where they
        compile (``full`` holds the complete records of the batch rows ``positions``); the
        others run in Python if the match stays first."""
        from flowwarden.engine.local.vectorized import alert_values

        if not firsts:
            return
        at = np.searchsorted(positions, np.array([row for row, _ in firsts], dtype=np.int64))
        found = alert_values(self.compiled, full, log_type, rule.id, at)
        for name in JSON_VALUES:
            if name in found.values:  # one decoding per batch: its dicts share their keys
                texts = found.values[name]
                found.values[name] = json.loads(
                    "[" + ",".join("null" if t is None else t for t in texts) + "]")
        for index, (_, result) in enumerate(firsts):
            values, python = found.row(index)
            if not python:
                rule.alert_values(result, values)


def _flags(table: pa.Table) -> np.ndarray:
    """Rows where any alert function needs Python (its ``:python`` column)."""
    flags = np.zeros(table.num_rows, dtype=bool)
    for name in table.column_names:
        if name.endswith(":python"):
            flags |= _mask(table.column(name))
    return flags


def _mask(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as a numpy mask, null as False."""
    return np.asarray(column.cast(pa.bool_()).fill_null(False).to_numpy(zero_copy_only=False),
                      dtype=bool)


def first_fields(rule: Rule, title_key: pa.Array, table: pa.Table
                 ) -> tuple[dict[str, pa.Array], np.ndarray]:
    """A first event's own alert values (``groupstore.FIELDS``) from the compiled alert
    functions' columns, as ``Rule.alert_values`` sets them; and the rows where it would refuse
    them (a severity that names no level), which Python must run."""
    def column(name: str) -> pa.Array | None:
        if name not in table.column_names:
            return None
        return table.column(name).combine_chunks().cast(pa.string())

    odd = np.zeros(table.num_rows, dtype=bool)
    fields: dict[str, pa.Array] = {}
    title = column("title")
    fields["title"] = title_key if title is None else pc.if_else(
        title_key.is_valid(), title_key, pc.utf8_slice_codeunits(title, 0, MAX_TITLE))
    severity = column("severity")
    if severity is not None:  # few distinct texts: each one's level found once, as Python does
        texts = pc.unique(severity.drop_null()).to_pylist()
        levels = []
        for text in texts:
            result = RuleResult(rule.id)
            levels.append(result.severity if rule.alert_values(result, {"severity": text})
                          else None)
        found = pa.array(levels, pa.string()).take(
            pc.index_in(severity, value_set=pa.array(texts, pa.string())))
        odd |= np.asarray(pc.and_(severity.is_valid(), found.is_null())
                          .to_numpy(zero_copy_only=False), dtype=bool)
        fields["severity"] = found
    for name, source in (("context", "alert_context"), ("destinations", "destinations")):
        found = column(source)
        if found is not None:  # JSON text; a function that returned None wrote null
            fields[name] = pc.if_else(pc.equal(found, "null").fill_null(True),
                                      pa.nulls(len(found), pa.string()), found)
    for name in ("description", "reference", "runbook"):
        found = column(name)
        if found is not None:
            fields[name] = found
    return fields, odd


def match_columns(rule_id: str, rows: np.ndarray, keys: pa.Table | None,
                  event_us: np.ndarray) -> tuple[MatchColumns, np.ndarray]:
    """The matches at ``rows`` whose keys compiled (``keys``: ``match_key_table``), and a mask
    of the rows whose keys need Python: ``dedup`` or ``unique`` flagged, or ``title`` where
    dedup falls back to it (a rule without ``dedup``). ``rules.rule.Rule._dedup``, column by
    column: a rule with ``dedup`` falls back to ``defaultDedupString:<id>``, never the title."""
    count = len(rows)

    def column(name: str) -> pa.Array | None:
        if keys is None or name not in keys.column_names:
            return None
        return keys.column(name).combine_chunks().cast(pa.string())

    def flag(name: str) -> np.ndarray:
        found = column(name + ":python") if keys is not None else None
        return np.zeros(count, dtype=bool) if found is None else _mask(found)

    nothing = pa.nulls(count, pa.string())
    default = pa.scalar(f"defaultDedupString:{rule_id}")
    dedup, title = column("dedup"), column("title")
    if dedup is not None:  # the title is then an alert function, the first event's
        strings = pc.if_else(_non_empty(dedup, count), pc.utf8_slice_codeunits(dedup, 0, MAX_DEDUP),
                             default)
        title = nothing
        asked = flag("dedup") | flag("unique")
    else:
        title = nothing if title is None else pc.utf8_slice_codeunits(title, 0, MAX_TITLE)
        strings = pc.if_else(_non_empty(title, count), pc.utf8_slice_codeunits(title, 0, MAX_DEDUP),
                             default)
        asked = flag("title") | flag("unique")
    keep = ~asked
    unique = column("unique")
    kept = MatchColumns(
        rows=rows[keep], dedup=strings.filter(pa.array(keep)), event_us=event_us[keep],
        unique=None if unique is None else unique.filter(pa.array(keep)),
        title=title.filter(pa.array(keep)))
    return kept, asked


def _non_empty(strings: pa.Array | None, count: int) -> np.ndarray:
    if strings is None:
        return np.zeros(count, dtype=bool)
    return np.asarray(pc.greater(pc.utf8_length(strings), 0).fill_null(False)
                      .to_numpy(zero_copy_only=False), dtype=bool)


def _event_micros(batch: pa.RecordBatch | pa.Table, rows: np.ndarray) -> np.ndarray:
    """The event time of each of ``rows`` in microseconds since the epoch, as the grouper
    orders events (``grouping.time_value``: the epoch where there is none)."""
    if EVENT_TIME not in batch.schema.names:
        return np.zeros(len(rows), dtype=np.int64)
    column = batch.column(batch.schema.get_field_index(EVENT_TIME)).take(
        pa.array(rows, type=pa.int64()))
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_timestamp(column.type):
        exact = column.cast(pa.timestamp("us", column.type.tz), safe=False).cast(pa.int64())
        return np.asarray(exact.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.array([micros(time_value(v)) for v in column.to_pylist()], dtype=np.int64)


EVALUATIONS: dict[str, type[PythonEvaluation] | type[CompiledEvaluation]] = {
    cls.name: cls for cls in (CompiledEvaluation, PythonEvaluation)
}


def evaluation(name: str, pack: Pack, rules: Sequence[Rule]) -> Evaluation:
    """The local evaluation called ``name``, for ``rules``."""
    found = EVALUATIONS.get(name)
    if found is None:
        raise UsageError(f"{name!r} is not an engine that scans batch by batch in this process; "
                         f"choose from {', '.join(EVALUATIONS)}")
    return found(pack, rules)
