"""The engines that run in this process, batch by batch: ``duckdb`` and ``python``.

``PythonEvaluation`` is Panther's model, every rule on every event: the reference.
``CompiledEvaluation`` asks the compiled conditions (``vectorized``: one DuckDB query per batch
for all rules) which rows match or need Python to decide, loads complete records only for those
rows (phase 2 of a projected read), and runs Python only there: the whole rule where the query
could not decide, the alert-time functions where it matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flowwarden.engine.scan import BatchLike, Evaluation, Handle, full_rows
from flowwarden.errors import UsageError
from flowwarden.logs.pyrecords import to_records
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule


class PythonEvaluation:
    """Every rule on every event, as Panther does."""

    name = "python"

    def __init__(self, pack: Pack, rules: Sequence[Rule]) -> None:
        self.pack = pack

    def columns(self, rules: Sequence[Rule]) -> tuple[str, ...] | None:
        return None

    def evaluate(self, item: BatchLike, rules: Sequence[Rule], handle: Handle) -> int:
        batch = item.batch
        if getattr(item, "complete", None) is not None:  # a projected read: complete it
            batch = full_rows(item, np.arange(batch.num_rows))
        for index, record in enumerate(to_records(batch)):
            event = self.pack.event(record)
            for rule in rules:
                handle(rule, rule.evaluate(event), index, record)
        return 0


class CompiledEvaluation:
    """The compiled conditions decide; Python runs only on the rows they leave to it."""

    name = "duckdb"

    def __init__(self, pack: Pack, rules: Sequence[Rule]) -> None:
        from flowwarden.engine.local.vectorized import compile_pack

        self.pack = pack
        self.compiled = compile_pack(pack, list(rules))

    def columns(self, rules: Sequence[Rule]) -> tuple[str, ...] | None:
        log_types = {lt for rule in rules for lt in rule.log_types}
        return tuple(sorted(set().union(*(self.compiled.columns(lt) for lt in log_types))))

    def evaluate(self, item: BatchLike, rules: Sequence[Rule], handle: Handle) -> int:
        from flowwarden.engine.local.vectorized import evaluate_batch

        verdicts = evaluate_batch(self.compiled, item.batch, item.log_type)
        chosen = [(rule, verdicts[rule.id]) for rule in rules if rule.id in verdicts]
        wanted = [rows for _, v in chosen for rows in (v.match, v.python) if len(rows)]
        if not wanted:
            return 0
        positions = np.unique(np.concatenate(wanted))
        records = to_records(full_rows(item, positions))
        asked = 0
        for rule, verdict in chosen:
            self._run(rule, verdict.match, positions, records, handle, whole=False)
            self._run(rule, verdict.python, positions, records, handle, whole=True)
            asked += len(verdict.python)
        return asked

    def _run(self, rule: Rule, rows: np.ndarray, positions: np.ndarray,
             records: list[dict[str, Any]], handle: Handle, whole: bool) -> None:
        if len(rows) == 0:
            return
        for index, at in zip(rows.tolist(), np.searchsorted(positions, rows).tolist(),
                             strict=True):
            record = records[at]
            event = self.pack.event(record)
            handle(rule, rule.evaluate(event) if whole else rule.evaluate_match(event), index,
                   record)


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
