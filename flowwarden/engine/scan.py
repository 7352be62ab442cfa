"""The scan pipeline shared by every engine.

The python engine evaluates every rule on every event, as Panther does, and is the reference.
The duckdb engine asks the compiled conditions which rows match, or need Python to decide, and runs
Python only there; alert-time functions run on matches only in both.

Given a ``LogReader``, the duckdb engine scans in two phases. Phase 1 reads only the columns the
compiled conditions use (``ReadOptions.columns``) and evaluates them; every record is still read
and checked, so statistics and rejections are a full read's. Phase 2 loads the complete records
of the rows that matched or need Python (``LogBatch.full_rows``), once per batch, for the rules
and their alert functions. Alerts and counts are therefore exactly those of a full read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from flowwarden.alerts.grouping import AlertGrouper, OrderKey, event_time
from flowwarden.alerts.model import Alert
from flowwarden.logs.pyrecords import to_records
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule, RuleResult

ENGINES = ("duckdb", "python")
MAX_ERROR_SAMPLES = 50
# Phase 1 batches hold a few columns, so they are larger: fewer queries, less overhead each.
PHASE_ONE_BATCH = 1 << 18


class BatchLike(Protocol):
    log_type: str
    source: str
    batch: pa.RecordBatch


@dataclass(frozen=True)
class RuleError:
    """A rule function that raised on one event."""

    rule_id: str
    function: str
    error: str
    source: str
    position: int


@dataclass
class ScanResult:
    alerts: list[Alert] = field(default_factory=list)
    records: int = 0
    matches: Counter[str] = field(default_factory=Counter)
    python_rows: int = 0
    error_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: list[RuleError] = field(default_factory=list)

    def record_errors(self, rule_id: str, result: RuleResult, source: str, position: int) -> None:
        for function, error in result.errors.items():
            self.error_counts[(rule_id, function)] += 1
            if len(self.errors) < MAX_ERROR_SAMPLES:
                self.errors.append(RuleError(rule_id, function, error, source, position))


class Scanner:
    """Runs a set of rules over batches of one or more log types."""

    def __init__(self, pack: Pack, rules: Sequence[Rule], engine: str = "duckdb",
                 max_samples: int = 3) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
        self.pack = pack
        self.rules = list(rules)
        self.engine = engine
        self.grouper = AlertGrouper(max_samples)
        self.result = ScanResult()
        self._positions: Counter[str] = Counter()
        self._compiled: Any = None
        if engine == "duckdb":
            from flowwarden.engine.local.vectorized import compile_pack

            self._compiled = compile_pack(pack, self.rules)

    def scan(self, batches: Iterable[BatchLike],
             progress: Callable[[int], None] | None = None) -> ScanResult:
        for item in self.narrowed(batches):
            self.add_batch(item)
            if progress is not None:
                progress(item.batch.num_rows)
        return self.finish()

    def add_batch(self, item: BatchLike) -> None:
        rules = [r for r in self.rules if item.log_type in r.log_types]
        offset = self._positions[item.source]
        self._positions[item.source] += item.batch.num_rows
        self.result.records += item.batch.num_rows
        if not rules or item.batch.num_rows == 0:
            return
        if self.engine == "python":
            self._python_batch(item, rules, offset)
        else:
            self._vectorized_batch(item, rules, offset)

    def finish(self) -> ScanResult:
        self.result.alerts = list(self.grouper.alerts())
        return self.result

    def columns(self) -> tuple[str, ...] | None:
        """The columns phase 1 reads (every log type of the rules), or None for everything."""
        if self._compiled is None:
            return None
        log_types = {lt for rule in self.rules for lt in rule.log_types}
        return tuple(sorted(set().union(*(self._compiled.columns(lt) for lt in log_types))))

    def narrowed(self, batches: Iterable[BatchLike]) -> Iterable[BatchLike]:
        """``batches`` as phase 1 reads them: a ``LogReader`` is read with only ``columns()``, in
        batches of at least ``PHASE_ONE_BATCH`` rows (its statistics fill in as usual); anything
        else, or any reader for the python engine, is returned as it is."""
        from flowwarden.logs import LogReader

        columns = self.columns()
        if columns is None or not isinstance(batches, LogReader):
            return batches
        wanted = sorted({*columns, *(batches.options.columns or ())})
        return batches.projected(wanted, max(batches.options.batch_size, PHASE_ONE_BATCH))

    @property
    def compiled(self) -> Any:
        """The duckdb engine's ``CompiledPack`` (None for the python engine)."""
        return self._compiled

    def _python_batch(self, item: BatchLike, rules: Sequence[Rule], offset: int) -> None:
        batch = item.batch
        if getattr(item, "complete", None) is not None:  # a projected read: complete it
            batch = _full_rows(item, np.arange(batch.num_rows))
        for index, record in enumerate(to_records(batch)):
            event = self.pack.event(record)
            for rule in rules:
                self._handle(rule, rule.evaluate(event), item.source, offset + index, record)

    def _vectorized_batch(self, item: BatchLike, rules: Sequence[Rule], offset: int) -> None:
        from flowwarden.engine.local.vectorized import evaluate_batch

        verdicts = evaluate_batch(self._compiled, item.batch, item.log_type)
        chosen = [(rule, verdicts[rule.id]) for rule in rules if rule.id in verdicts]
        wanted = [rows for _, v in chosen for rows in (v.match, v.python) if len(rows)]
        if not wanted:
            return
        positions = np.unique(np.concatenate(wanted))
        records = to_records(_full_rows(item, positions))
        for rule, verdict in chosen:
            self._run_rows(item, rule, verdict.match, positions, records, offset, full=False)
            self._run_rows(item, rule, verdict.python, positions, records, offset, full=True)

    def _run_rows(self, item: BatchLike, rule: Rule, rows: np.ndarray, positions: np.ndarray,
                  records: list[dict[str, Any]], offset: int, full: bool) -> None:
        if len(rows) == 0:
            return
        if full:
            self.result.python_rows += len(rows)
        for index, at in zip(rows.tolist(), np.searchsorted(positions, rows).tolist(),
                             strict=True):
            record = records[at]
            event = self.pack.event(record)
            result = rule.evaluate(event) if full else rule.evaluate_match(event)
            self._handle(rule, result, item.source, offset + index, record)

    def _handle(self, rule: Rule, result: RuleResult, source: str, position: int,
                record: dict[str, Any]) -> None:
        if result.errors:
            self.result.record_errors(rule.id, result, source, position)
        if result.matched:
            self.result.matches[rule.id] += 1
            key: OrderKey = (event_time(record), source, position)
            self.grouper.add(rule, result, key, record)


def _full_rows(item: BatchLike, positions: np.ndarray) -> pa.RecordBatch:
    """Complete records at ``positions``: phase 2 of a projected read, else a plain take."""
    full_rows = getattr(item, "full_rows", None)
    if full_rows is not None:
        return full_rows(positions)
    return item.batch.take(pa.array(positions, type=pa.int64()))
