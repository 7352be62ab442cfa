"""The scanner: batches of records in, rule results grouped into alerts.

A ``Scanner`` holds what a scan accumulates (matches, errors, alert groups); how rules meet a
batch is its ``Evaluation`` (``flowwarden.engine.local``): every rule on every event for the
``python`` engine, compiled conditions with Python only where needed for ``duckdb``. Batches
reach scanners through the one scan loop, ``flowwarden.engine.loop.scan_loop``, which reads phase
1 with only the columns the scanners' evaluations need (``Scanner.columns``).
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
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule, RuleResult

MAX_ERROR_SAMPLES = 50


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

    def errors_by_rule(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (rule_id, _), count in self.error_counts.items():
            counts[rule_id] += count
        return counts


# Called for each rule result of one event: (rule, result, batch row, the row's record).
Handle = Callable[[Rule, RuleResult, int, dict[str, Any]], None]


class Evaluation(Protocol):
    """How one local engine runs rules over a batch (see ``flowwarden.engine.local``)."""

    name: str

    def columns(self, rules: Sequence[Rule]) -> tuple[str, ...] | None:
        """The columns phase 1 must read for ``rules``, or None for complete records."""

    def evaluate(self, item: BatchLike, rules: Sequence[Rule], handle: Handle) -> int:
        """Run ``rules`` on the batch, calling ``handle`` per rule result worth keeping;
        returns how many (rule, row) pairs ran the rule's whole Python."""


class Scanner:
    """Runs a set of rules over batches of one or more log types."""

    def __init__(self, pack: Pack, rules: Sequence[Rule], engine: str | Evaluation = "duckdb",
                 max_samples: int = 3, grouper: AlertGrouper | None = None) -> None:
        from flowwarden.engine.local import evaluation

        self.pack = pack
        self.rules = list(rules)
        self.evaluation = evaluation(engine, pack, self.rules) if isinstance(engine, str) else engine
        self.engine = self.evaluation.name
        self.grouper = grouper if grouper is not None else AlertGrouper(max_samples)
        self.result = ScanResult()
        self._positions: Counter[str] = Counter()

    def scan(self, batches: Iterable[BatchLike],
             progress: Callable[[int], None] | None = None) -> ScanResult:
        """Every batch through the scan loop, then the alerts."""
        from flowwarden.engine.loop import scan_loop

        scan_loop(batches, [self], progress)
        return self.finish()

    def add_batch(self, item: BatchLike) -> None:
        rules = [r for r in self.rules if item.log_type in r.log_types]
        offset = self._positions[item.source]
        self._positions[item.source] += item.batch.num_rows
        self.result.records += item.batch.num_rows
        if not rules or item.batch.num_rows == 0:
            return

        def handle(rule: Rule, result: RuleResult, row: int, record: dict[str, Any]) -> None:
            self._handle(rule, result, item.source, offset + row, record)

        self.result.python_rows += self.evaluation.evaluate(item, rules, handle)

    def finish(self) -> ScanResult:
        self.result.alerts = list(self.grouper.alerts())
        return self.result

    def columns(self) -> tuple[str, ...] | None:
        """The columns phase 1 reads (every log type of the rules), or None for everything."""
        return self.evaluation.columns(self.rules)

    @property
    def compiled(self) -> Any:
        """The duckdb engine's ``CompiledPack`` (None for the python engine)."""
        return getattr(self.evaluation, "compiled", None)

    def _handle(self, rule: Rule, result: RuleResult, source: str, position: int,
                record: dict[str, Any]) -> None:
        if result.errors:
            self.result.record_errors(rule.id, result, source, position)
        if result.matched:
            self.result.matches[rule.id] += 1
            key: OrderKey = (event_time(record), source, position)
            self.grouper.add(rule, result, key, record)


def full_rows(item: BatchLike, positions: np.ndarray) -> pa.RecordBatch:
    """Complete records at ``positions``: phase 2 of a projected read, else a plain take."""
    loader = getattr(item, "full_rows", None)
    if loader is not None:
        return loader(positions)
    return item.batch.take(pa.array(positions, type=pa.int64()))
