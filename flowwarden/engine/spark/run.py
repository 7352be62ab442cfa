"""One Spark scan: inputs to verdicts to rule calls to alert groups, in a single action."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from flowwarden.engine.local.vectorized import CompiledPack, compile_pack
from flowwarden.engine.scan import ScanResult
from flowwarden.engine.spark.alerts import (
    alert_frame,
    apply_stats,
    collect_alerts,
    group_frame,
    stats_metrics,
)
from flowwarden.engine.spark.arrow import POSITION, SOURCE, arrow_schema
from flowwarden.engine.spark.inputs import InputFrame, input_frames
from flowwarden.engine.spark.rules import RESULT_DDL, VERDICT, PackSpec, evaluator, with_verdicts
from flowwarden.logic.render.query import build_query
from flowwarden.logic.render.spark import SPARK
from flowwarden.logic.render.sql import PYTHON
from flowwarden.logs.model import ReadOptions
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule

SPREAD = 4  # candidate partitions per core


class SparkScan:
    """Runs ``rules`` over inputs on ``session``; ``run`` returns the ``ScanResult``."""

    def __init__(self, session: Any, pack: Pack, rules: list[Rule], spec: PackSpec,
                 max_samples: int = 3) -> None:
        self.session = session
        self.pack = pack
        self.rules = rules
        self.spec = spec
        self.max_samples = max_samples
        self.compiled: CompiledPack = compile_pack(pack, rules)
        self._observations: list[Any] = []
        self._counted: list[Any] = []

    def run(self, sources: Sequence[str], options: ReadOptions) -> ScanResult:
        results = [r for f in input_frames(self.session, sources, options)
                   if (r := self.evaluated(f)) is not None]
        scan = ScanResult()
        if results:
            from pyspark.sql import Observation

            union = functools.reduce(lambda a, b: a.unionByName(b), results)
            stats = Observation("flowwarden_rule_stats")
            union = union.observe(stats, *stats_metrics(self.rules))
            groups = group_frame(union.where("matched"), self.rules, self.max_samples)
            scan.alerts, raised = collect_alerts(alert_frame(groups, self.spec, self.max_samples))
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
        records = [c for c in item.frame.columns if c not in (SOURCE, POSITION)]
        schema = arrow_schema(item.frame.drop(SOURCE, POSITION).schema)
        query = build_query([(p.rule_id, p.condition) for p in plans], schema, SPARK,
                            item.log_type)
        if not plans or query.constant_no_match:
            self._counted.append(item.frame)
            return None
        verdicts = with_verdicts(item.frame, query)
        codes = [S.col(f"{VERDICT}{i}") for i in range(len(plans))]
        observation = Observation(f"flowwarden_frame_{len(self._observations)}")
        self._observations.append(observation)
        python_rows = sum((S.when(c == PYTHON, 1).otherwise(0) for c in codes), S.lit(0))
        verdicts = verdicts.observe(observation, S.count(S.lit(1)).alias("records"),
                                    S.sum(python_rows).alias("python"))
        candidates = verdicts.where(functools.reduce(lambda a, b: a | b, [c != 0 for c in codes]))
        # Rule calls are the expensive part: spread them over every core, whatever the input
        # layout (one small file is one input partition; one text file is one task).
        parts = self.session.sparkContext.defaultParallelism * SPREAD
        candidates = candidates.repartition(parts, S.col(SOURCE), S.col(POSITION))
        run = evaluator(self.spec, query.names, records)
        return candidates.mapInArrow(run, RESULT_DDL)

