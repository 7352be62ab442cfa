"""The engines that run in this process, batch by batch: ``duckdb`` and ``python``.

``PythonEvaluation`` is Panther's model, every rule on every event: the reference.
``CompiledEvaluation`` asks the compiled conditions (``vectorized``: one DuckDB query per batch
for all rules) which rows match or need Python to decide, loads complete records only for those
rows (phase 2 of a projected read), and runs Python only there: the whole rule where the query
could not decide, the alert-time functions where it matched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from flowwarden.alerts.grouping import time_value
from flowwarden.engine.scan import BatchLike, Evaluation, Results, full_rows
from flowwarden.errors import UsageError
from flowwarden.logs.pyrecords import to_records
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import MAX_TITLE, Rule, RuleResult, dedup_string

if TYPE_CHECKING:  # the compiled engine's module is imported when the engine is used
    from flowwarden.engine.local.vectorized import MatchKeys

EVENT_TIME = "p_event_time"
JSON_VALUES = ("alert_context", "destinations")  # the compiled values given as JSON text


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
        for index, record in enumerate(to_records(batch)):
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
        wanted: list[tuple[Rule, list[tuple[int, RuleResult]]]] = []
        python_keys: list[tuple[Rule, np.ndarray]] = []
        for rule, verdict in chosen:
            if len(verdict.match):
                firsts, asked = self._compiled_matches(item, rule, verdict.match, results)
                wanted.append((rule, firsts))
                python_keys.append((rule, asked))
        ask = [(rule, v.python, True) for rule, v in chosen if len(v.python)]
        ask += [(rule, rows, False) for rule, rows in python_keys if len(rows)]
        needed = [rows for _, rows, _ in ask]
        needed += [np.array([row for row, _ in firsts], dtype=np.int64) for _, firsts in wanted]
        if not any(len(rows) for rows in needed):
            return 0
        positions = np.unique(np.concatenate(needed))
        full = full_rows(item, positions)
        for rule, firsts in wanted:
            self._compiled_alert_values(item.log_type, full, positions, rule, firsts)
        records = to_records(full)
        for rule, rows, whole in ask:
            for row, at in zip(rows.tolist(), np.searchsorted(positions, rows).tolist(),
                               strict=True):
                record = records[at]
                event = self.pack.event(record)
                result = (rule.evaluate(event, keys_only=True) if whole
                          else rule.evaluate_match(event, keys_only=True))
                results(rule, result, row, record)
        results.fill(dict(zip(positions.tolist(), records, strict=True)))
        return sum(len(rows) for _, rows, whole in ask if whole)

    def _compiled_matches(self, item: BatchLike, rule: Rule, rows: np.ndarray, results: Results
                          ) -> tuple[list[tuple[int, RuleResult]], np.ndarray]:
        """Hand over the matches at ``rows`` whose keys the query computes; returns (the rows
        whose record is wanted, with their results; rows whose keys need Python)."""
        from flowwarden.engine.local.vectorized import match_keys

        keys = match_keys(self.compiled, item.batch, item.log_type, rule.id, rows)
        times = _event_times(item.batch, rows)
        wanted: list[tuple[int, RuleResult]] = []
        asked: list[int] = []
        for index, row in enumerate(rows.tolist()):
            values, python = keys.row(index)
            dedup, title = values.get("dedup"), values.get("title")
            if python and _needs_python(keys, index, dedup):
                asked.append(row)
                continue
            if dedup:
                title = None  # the title is an alert function here: the first event's
            elif title is not None:
                title = title[:MAX_TITLE]
            result = RuleResult(rule.id, matched=True, title=title, unique=values.get("unique"),
                                dedup=dedup_string(rule.id, dedup, title), keys_only=True)
            if results(rule, result, row, None, times[index]):
                wanted.append((row, result))
        return wanted, np.array(asked, dtype=np.int64)

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


def _needs_python(keys: MatchKeys, index: int, dedup: str | None) -> bool:
    """Whether a match's keys need Python: the title only counts where dedup falls back to it."""
    flags = keys.python
    if flags.get("dedup", [False])[index] or flags.get("unique", [False])[index]:
        return True
    return not dedup and bool(flags.get("title", [False])[index])


def _event_times(batch: pa.RecordBatch | pa.Table, rows: np.ndarray) -> list[Any]:
    """The event time of each of ``rows``, as the grouper orders events."""
    if EVENT_TIME not in batch.schema.names:
        return [time_value(None)] * len(rows)
    column = batch.column(batch.schema.get_field_index(EVENT_TIME))
    return [time_value(v) for v in column.take(pa.array(rows, type=pa.int64())).to_pylist()]


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
