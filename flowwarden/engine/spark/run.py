"""One Spark scan: inputs to verdicts to rule calls to alert groups, in a single action."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

from flowwarden.engine.enrichment import pack_enrichment, unknown_tables
from flowwarden.engine.local.vectorized import CompiledPack, compile_pack
from flowwarden.engine.scan import ScanResult
from flowwarden.engine.spark.alerts import (
    alert_frame,
    apply_stats,
    group_frame,
    stats_metrics,
)
from flowwarden.engine.spark.arrow import POSITION, SOURCE, arrow_schema
from flowwarden.engine.spark.chunks import collect_alerts
from flowwarden.engine.spark.enrichment import ShippedTables, enriched_frame, ship_tables
from flowwarden.engine.spark.inputs import InputFrame, input_frames
from flowwarden.engine.spark.keys import (
    CALLS,
    RECORD_ROW,
    RuleKeys,
    compiled_rows,
    event_micros,
    rule_calls,
)
from flowwarden.engine.spark.rules import (
    RESULT_DDL,
    VERDICT,
    PackSpec,
    evaluator,
    with_verdicts,
)
from flowwarden.logic.render.query import build_query
from flowwarden.logic.render.spark import SPARK, spark_identifier
from flowwarden.logic.render.sql import PYTHON
from flowwarden.logs.model import ReadOptions
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule

SPREAD = 4  # candidate partitions per core


class SparkScan:
    """Runs ``rules`` over inputs on ``session``; ``run`` returns the ``ScanResult``."""

    def __init__(self, session: Any, pack: Pack, rules: list[Rule], spec: PackSpec,
                 max_samples: int = 3, findings: bool = False) -> None:
        self.session = session
        self.findings = findings  # the executors make the alerts' OCSF findings too
        self.pack = pack
        self.rules = rules
        self.max_samples = max_samples
        self.compiled: CompiledPack = compile_pack(pack, rules)
        # the tables load here, as the local scanner loads them: a bad one stops the scan early
        self.enrichment = pack_enrichment(pack, {lt for rule in rules for lt in rule.log_types})
        self._shipped: ShippedTables | None = None
        if self.enrichment.enricher is not None:  # executors enrich and answer event.lookup
            self._shipped = ship_tables(session, pack, self.enrichment.enricher)
            spec = dataclasses.replace(spec, tables=self._shipped)
        self.spec = spec
        self._observations: list[Any] = []
        self._counted: list[Any] = []

    def run(self, sources: Sequence[str], options: ReadOptions) -> ScanResult:
        try:
            return self._run(sources, options)
        finally:
            if self._shipped is not None:
                self._shipped.release()

    def _run(self, sources: Sequence[str], options: ReadOptions) -> ScanResult:
        results = [r for f in input_frames(self.session, sources, options)
                   if (r := self.evaluated(f)) is not None]
        scan = ScanResult(notes=list(self.enrichment.notes),
                          hints=unknown_tables(self.pack, self.rules, self.compiled))
        if results:
            from pyspark.sql import Observation

            union = functools.reduce(
                lambda a, b: a.unionByName(b, allowMissingColumns=True), results)
            stats = Observation("flowwarden_rule_stats")
            union = union.observe(stats, *stats_metrics(self.rules))
            groups = group_frame(union.where("matched"), self.rules, self.max_samples)
            frame = alert_frame(groups, self.spec, self.max_samples, self.findings)
            scan.alerts, raised = collect_alerts(frame, self.findings)
            scan.errors = apply_stats(stats.get, self.rules, scan.matches, scan.error_counts)
            for error in raised:
                scan.record_errors(error.rule_id, {error.function: error.error}, error.source,
                                   error.position)
        for observation in self._observations:
            metrics = observation.get
            scan.records += metrics["records"] or 0
            scan.python_rows += metrics["python"] or 0
        scan.records += sum(frame.count() for frame in self._counted)
        return scan

    def evaluated(self, item: InputFrame) -> Any | None:
        """The result rows of one input frame (None when no row can match: only counted)."""
        from pyspark.sql import Observation
        from pyspark.sql import functions as S

        wanted = {r.id for r in self.rules}
        plans = [p for p in self.compiled.rules_for(item.log_type) if p.rule_id in wanted]
        if not plans:
            self._counted.append(item.frame)
            return None
        read = item.frame  # counting a frame needs no enrichment
        item = self.enriched(item)
        records = [c for c in item.frame.columns if c not in (SOURCE, POSITION)]
        schema = arrow_schema(item.frame.drop(SOURCE, POSITION).schema)
        query = build_query([(p.rule_id, p.condition) for p in plans], schema, SPARK,
                            item.log_type, [(p.rule_id, p.keys) for p in plans if p.keys])
        if query.constant_no_match:
            self._counted.append(read)
            return None
        verdicts = with_verdicts(item.frame, query)
        codes = [S.col(f"{VERDICT}{i}") for i in range(len(plans))]
        observation = Observation(f"flowwarden_frame_{len(self._observations)}")
        self._observations.append(observation)
        asked = sum((S.when(c == PYTHON, 1).otherwise(0) for c in codes), S.lit(0))
        verdicts = verdicts.observe(observation, S.count(S.lit(1)).alias("records"),
                                    S.sum(asked).alias("python"))
        candidates = verdicts.where(functools.reduce(lambda a, b: a | b, [c != 0 for c in codes]))
        event_us = event_micros(schema)
        rules = {r.id: r for r in self.rules}
        keyed = [(rules[p.rule_id], RuleKeys(query, i), code)
                 for i, (p, code) in enumerate(zip(plans, codes, strict=True))]
        # where Spark cannot order the events as Python does, Python takes every match
        calls = rule_calls(keyed, compiled=event_us is not None)
        candidates = candidates.select(*[S.col(spark_identifier(c, sql=False))
                                         for c in (*records, SOURCE, POSITION)],
                                       calls.alias(CALLS))
        # Rule calls are the expensive part: spread them over every core, whatever the input
        # layout (one small file is one input partition; one text file is one task). Both
        # branches below read this one exchange (Spark reuses it): the input is read once.
        # Python's branch reads it directly and comes first (its exchange is the one executed,
        # the other's is reused): Spark drops a branch that an empty exchange makes empty,
        # and the frame's observed metrics with it, but not a Python function's.
        parts = self.session.sparkContext.defaultParallelism * SPREAD
        candidates = candidates.repartition(parts, S.col(SOURCE), S.col(POSITION))
        python = candidates.mapInArrow(evaluator(self.spec, query.names, records), RESULT_DDL)
        if event_us is None:
            return python
        struct = f"{RECORD_ROW}{len(self._observations)}"
        compiled = compiled_rows(candidates, event_us, records, struct)
        return python.unionByName(compiled, allowMissingColumns=True)

    def enriched(self, item: InputFrame) -> InputFrame:
        """``item`` with ``p_enrichment`` where a lookup table selects into its log type."""
        enricher, shipped = self.enrichment.enricher, self._shipped
        if enricher is None or shipped is None:
            return item
        return enriched_frame(item, enricher, shipped)
