"""The scanner: batches of records in, rule results grouped into alerts.

A ``Scanner`` holds what a scan accumulates (matches, errors, alert groups); how rules meet a
batch is its ``Evaluation`` (``flowwarden.engine.local``): every rule on every event for the
``python`` engine, compiled conditions with Python only where needed for ``duckdb``. Batches
reach scanners through the one scan loop, ``flowwarden.engine.loop.scan_loop``, which reads phase
1 with only the columns the scanners' evaluations need (``Scanner.columns``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from flowwarden.alerts.grouping import Grouper, MatchColumns, OrderKey, event_time, time_value
from flowwarden.alerts.groupstore import Resolve, SqlGrouper, Wanted
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
    # a list, or the alerts of a ``groupstore.SqlGrouper`` read back from DuckDB each time
    alerts: Sequence[Alert] = field(default_factory=list)
    records: int = 0
    matches: Counter[str] = field(default_factory=Counter)
    python_rows: int = 0
    error_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: list[RuleError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. lookup tables left out, and why
    # worth saying, not a warning: e.g. a rule reading a lookup table nobody defined
    hints: list[str] = field(default_factory=list)

    def record_errors(self, rule_id: str, errors: Mapping[str, str], source: str,
                      position: int) -> None:
        for function, error in errors.items():
            self.error_counts[(rule_id, function)] += 1
            if len(self.errors) < MAX_ERROR_SAMPLES:
                self.errors.append(RuleError(rule_id, function, error, source, position))

    def errors_by_rule(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (rule_id, _), count in self.error_counts.items():
            counts[rule_id] += count
        return counts


class Results(Protocol):
    """Where an evaluation hands the rule results of one batch (``Scanner.add_batch``)."""

    def __call__(self, rule: Rule, result: RuleResult, row: int,
                 record: dict[str, Any] | None, when: datetime | None = None) -> bool:
        """One rule result for batch row ``row``: ``record`` is its record, or None when it
        was not loaded (then ``when`` is its event time, and the result returns True when
        the record is wanted: hand it to ``fill``). ``result`` holds keys only (dedup,
        unique) on a match: the alert functions run on the alert's first event."""

    def wanted(self, rule: Rule, matches: MatchColumns) -> Wanted:
        """Matches whose keys were computed together (no records): returns those that may be
        an alert's first event or a sample, to hand over with ``rendered`` or ``want``."""

    def want(self, wanted: Wanted) -> list[tuple[int, RuleResult]]:
        """Wanted matches whose records come with ``fill``: their rule results, by row."""

    def fill(self, records: Mapping[int, dict[str, Any]]) -> None:
        """Records (by batch row) of rows whose record was wanted: all at once, or in parts."""

    @property
    def renders(self) -> bool:
        """Whether wanted matches may be handed over rendered (``rendered``)."""

    def rendered(self, wanted: Wanted, samples: pa.Array, fields: Mapping[str, pa.Array]
                 ) -> None:
        """Wanted matches with their samples and alert values rendered by the query
        (``groupstore.SqlGrouper.add_rendered``): no record needed."""

    @property
    def defers(self) -> bool:
        """Whether wanted matches may be handed over late (``defer``)."""

    def defer(self, wanted: Wanted, resolve: Resolve) -> None:
        """Wanted matches whose records are read only if they become an alert's kept events,
        when the alerts are collected (``groupstore.SqlGrouper.add_late``)."""


class Evaluation(Protocol):
    """How one local engine runs rules over a batch (see ``flowwarden.engine.local``)."""

    name: str

    def columns(self, rules: Sequence[Rule]) -> tuple[str, ...] | None:
        """The columns phase 1 must read for ``rules``, or None for complete records."""

    def evaluate(self, item: BatchLike, rules: Sequence[Rule], results: Results) -> int:
        """Run ``rules`` on the batch, handing ``results`` each rule result worth keeping;
        returns how many (rule, row) pairs ran the rule's whole Python."""


class Scanner:
    """Runs a set of rules over batches of one or more log types."""

    def __init__(self, pack: Pack, rules: Sequence[Rule], engine: str | Evaluation = "duckdb",
                 max_samples: int = 3, grouper: Grouper | None = None) -> None:
        from flowwarden.engine.enrichment import pack_enrichment, unknown_tables
        from flowwarden.engine.local import evaluation

        self.pack = pack
        self.rules = list(rules)
        self.log_types = sorted({lt for rule in self.rules for lt in rule.log_types})
        self.enrichment = pack_enrichment(pack, self.log_types)
        self.evaluation = evaluation(engine, pack, self.rules) if isinstance(engine, str) else engine
        if self.compiled is not None:
            self.enrichment = self.enrichment.reading(
                {lt: self.compiled.paths(lt) for lt in self.log_types})
        self.engine = self.evaluation.name
        self.grouper: Grouper = grouper if grouper is not None else SqlGrouper(max_samples)
        if self.grouper.complete is None:
            self.grouper.complete = self._complete_first
        self.result = ScanResult(notes=list(self.enrichment.notes),
                                 hints=unknown_tables(pack, self.rules, self.compiled))
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
        item = self.enrichment.batch(item)
        self.result.python_rows += self.evaluation.evaluate(
            item, rules, _BatchResults(self, item.source, offset))
        self.grouper.end_batch()

    def finish(self) -> ScanResult:
        self.result.alerts = self.grouper.collect()
        return self.result

    @property
    def handled(self) -> int:
        """The rows the rules matched and the rows they ran on in Python, so far."""
        return sum(self.result.matches.values()) + self.result.python_rows

    def columns(self) -> tuple[str, ...] | None:
        """The columns phase 1 reads (every log type of the rules), or None for everything."""
        from flowwarden.engine.enrichment import without_enrichment

        columns = self.evaluation.columns(self.rules)
        if columns is None:
            return None
        return tuple(sorted({*without_enrichment(columns), *self.enrichment.columns(self.log_types)}))

    @property
    def compiled(self) -> Any:
        """The duckdb engine's ``CompiledPack`` (None for the python engine)."""
        return getattr(self.evaluation, "compiled", None)

    def handle(self, rule: Rule, result: RuleResult, key: OrderKey,
               record: dict[str, Any] | None) -> bool:
        """One rule result of the event at ``key``; True when its record is wanted."""
        if result.errors:
            self.result.record_errors(rule.id, result.errors, key[1], key[2])
        if result.matched:
            self.result.matches[rule.id] += 1
            return self.grouper.add(rule, result, key, record)
        return False

    def _complete_first(self, rule: Rule, result: RuleResult, key: OrderKey,
                        record: dict[str, Any]) -> None:
        """An alert's own values, from its first event: its errors are counted here."""
        raised = rule.alert_fields(self.pack.event(record), result)
        if raised:
            self.result.record_errors(rule.id, raised, key[1], key[2])


class _BatchResults:
    """``Results`` of one batch for a scanner: rows become order keys, wanted records go to
    the scanner's grouper by those keys."""

    def __init__(self, scanner: Scanner, source: str, offset: int) -> None:
        self.scanner, self.source, self.offset = scanner, source, offset
        self.wanted_keys: dict[int, OrderKey] = {}
        self._held: dict[str, dict[int, RuleResult]] = {}  # rule results of another grouper

    def __call__(self, rule: Rule, result: RuleResult, row: int,
                 record: dict[str, Any] | None, when: datetime | None = None) -> bool:
        if record is not None:
            when = event_time(record)
        key: OrderKey = (when if when is not None else time_value(None), self.source,
                         self.offset + row)
        wanted = self.scanner.handle(rule, result, key, record)
        if wanted:
            self.wanted_keys[row] = key
        return wanted

    def wanted(self, rule: Rule, matches: MatchColumns) -> Wanted:
        self.scanner.result.matches[rule.id] += len(matches.rows)
        grouper = self.scanner.grouper
        if isinstance(grouper, SqlGrouper):
            return grouper.wanted(rule, matches, self.source, self.offset)
        # another grouper takes every match with its rule result: all of them are wanted
        self._held[rule.id] = {row: result for row, result, _ in self._keyed(
            grouper.add_matches(rule, matches, self.source, self.offset))}
        rows = np.fromiter(self._held[rule.id], dtype=np.int64, count=len(self._held[rule.id]))
        # only its rule and rows are read (``want``): the held results carry the rest
        nothing, zeros = pa.nulls(len(rows), pa.string()), np.zeros(len(rows), dtype=np.int64)
        return Wanted(rule, self.source, self.offset, rows, nothing, zeros, zeros, nothing,
                      nothing)

    def want(self, wanted: Wanted) -> list[tuple[int, RuleResult]]:
        held = self._held.get(wanted.rule.id)
        if held is not None:
            return [(row, held[row]) for row in wanted.rows.tolist()]
        grouper = self.scanner.grouper
        assert isinstance(grouper, SqlGrouper)  # others' matches are held
        return [(row, result) for row, result, _ in self._keyed(grouper.want(wanted))]

    def _keyed(self, wanted: list[tuple[int, RuleResult, OrderKey]]
               ) -> list[tuple[int, RuleResult, OrderKey]]:
        for row, _, key in wanted:
            self.wanted_keys[row] = key
        return wanted

    @property
    def renders(self) -> bool:
        return isinstance(self.scanner.grouper, SqlGrouper)

    def rendered(self, wanted: Wanted, samples: pa.Array, fields: Mapping[str, pa.Array]
                 ) -> None:
        grouper = self.scanner.grouper
        assert isinstance(grouper, SqlGrouper)  # ``renders``
        grouper.add_rendered(wanted, samples, fields)

    @property
    def defers(self) -> bool:
        grouper = self.scanner.grouper
        return isinstance(grouper, SqlGrouper) and grouper.defers

    def defer(self, wanted: Wanted, resolve: Resolve) -> None:
        grouper = self.scanner.grouper
        assert isinstance(grouper, SqlGrouper)  # ``defers``
        grouper.add_late(wanted, resolve)

    def fill(self, records: Mapping[int, dict[str, Any]]) -> None:
        found = {}
        for row, record in records.items():
            key = self.wanted_keys.pop(row, None)
            if key is not None:
                found[key] = record
        self.scanner.grouper.fill(found)


def full_rows(item: BatchLike, positions: np.ndarray) -> pa.RecordBatch:
    """Complete records at ``positions``: phase 2 of a projected read, else a plain take."""
    loader = getattr(item, "full_rows", None)
    if loader is not None:
        return loader(positions)
    return item.batch.take(pa.array(positions, type=pa.int64()))
