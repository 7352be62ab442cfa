"""Dedup windows and thresholds as Spark aggregations; alerts assembled by ``AlertGrouper``.

Matches are grouped by (rule, dedup string, window start), the window being the tumbling,
epoch-aligned ``window_start`` computed next to the rule call. Per group Spark keeps the count,
the last event time, the distinct ``unique()`` values, the first event's rule result (pickled
from Python, or its compiled keys) and the first ``max_samples`` sample records (pickled, or
a compiled match's record struct: only these become Python dicts), "first" meaning the
smallest (event time, source, position), the key the local scanner orders by. Groups below their rule's threshold are
dropped in Spark; on the executors each remaining group becomes the ``Group`` state of an
``AlertGrouper``, whose own code turns it into the alert (id from ``alert_id``, MITRE entries,
the alert functions run on the first event's record, as the local scanner runs them, their
errors sent back with the alert), the groups sorted by the grouper's key first; the driver keeps
the alerts as the compressed chunks they arrive in, on disk (``chunks``).
"""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from flowwarden.alerts.grouping import (
    AlertGrouper,
    Complete,
    Group,
    GroupKey,
    OrderKey,
    from_micros,
    kept,
)
from flowwarden.alerts.model import Alert
from flowwarden.engine.enrichment import panther_record
from flowwarden.engine.scan import MAX_ERROR_SAMPLES, RuleError
from flowwarden.engine.spark.chunks import CHUNK_DDL, chunk_batch
from flowwarden.engine.spark.keys import RECORD_ROW
from flowwarden.engine.spark.rules import PackSpec
from flowwarden.rules.rule import ALERT_FUNCTIONS, Rule, RuleResult

KEYS = ("rule_id", "dedup", "window_us")
FUNCTIONS = ("rule", *ALERT_FUNCTIONS)
def group_frame(matches: Any, rules: Sequence[Rule], max_samples: int) -> Any:
    """One row per (rule, dedup, window) group that reached its rule's threshold."""
    from pyspark.sql import Window
    from pyspark.sql import functions as S

    order = Window.partitionBy(*KEYS).orderBy("event_us", "source", "position")
    ranked = matches.withColumn("rank", S.row_number().over(order))
    rank = S.col("rank")
    # a record travels pickled (Python's matches) or as a struct (compiled ones, per frame)
    records = ["record", *(c for c in matches.columns if c.startswith(RECORD_ROW))]
    first = S.struct("event_us", "source", "position", "result", "title", "unique", *records)
    sample = S.struct("rank", "event_us", "source", "position", *records)
    groups = ranked.groupBy(*KEYS).agg(
        S.count(S.lit(1)).alias("count"),
        S.max("event_us").alias("last_us"),
        S.collect_set("unique").alias("uniques"),
        S.min_by(first, rank).alias("first"),  # records need not be orderable: no max(struct)
        S.array_sort(S.collect_list(S.when(rank <= max_samples, sample)),
                     lambda a, b: S.signum(a["rank"] - b["rank"]).cast("int")).alias("samples"),
    )
    threshold = _by_rule({r.id: r.threshold for r in rules})
    uses_unique = _by_rule({r.id: r.function("unique") is not None for r in rules})
    reached = S.when(uses_unique, S.size("uniques")).otherwise(S.col("count"))
    return groups.where(reached >= threshold)


def _by_rule(values: dict[str, Any]) -> Any:
    from pyspark.sql import functions as S

    mapping = S.create_map(*[S.lit(v) for item in values.items() for v in item])
    return S.try_element_at(mapping, S.col("rule_id"))


def alert_frame(groups: Any, spec: PackSpec, max_samples: int, findings: bool = False) -> Any:
    """Each group's ``Alert``, built on the executors by ``AlertGrouper``, in chunks, in the
    grouper's order: the first event's time, source and position, then rule id and dedup.

    The groups are sorted before their alerts are built (a sort samples its input to choose
    its ranges: the groups are cheap to read again, the alerts' Python is not)."""
    from pyspark.sql import functions as S

    first = [S.col(f"first.{name}") for name in ("event_us", "source", "position")]
    ordered = groups.orderBy(*first, "rule_id", "dedup")
    return ordered.mapInArrow(_alerts_of_groups(spec, max_samples, findings), CHUNK_DDL)


def _alerts_of_groups(spec: PackSpec, max_samples: int, findings: bool) -> Callable[
        [Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def build(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rules: dict[str, Rule] = {}
        for batch in batches:
            alerts: list[Alert] = []
            errors: list[RuleError] = []
            for row in batch.to_pylist():
                grouper = AlertGrouper(max_samples, _completer(spec, errors))
                if row["rule_id"] not in rules:
                    rules[row["rule_id"]] = spec.rules([row["rule_id"]])[0]
                _add_group(grouper, rules[row["rule_id"]], row)
                alerts.extend(grouper.alerts())
            if alerts:
                yield chunk_batch(alerts, errors, findings)

    return build


def _completer(spec: PackSpec, errors: list[RuleError]) -> Complete:
    """The grouper's ``complete``: the alert functions on a first event, errors into ``errors``."""
    def complete(rule: Rule, result: RuleResult, key: OrderKey, record: dict[str, Any]) -> None:
        raised = rule.alert_fields(spec.load().event(record), result)
        errors.extend(RuleError(rule.id, name, error, key[1], key[2])
                      for name, error in raised.items())

    return complete


def _add_group(grouper: AlertGrouper, rule: Rule, row: dict[str, Any]) -> GroupKey:
    """Put one aggregated group row into ``grouper`` as the state its ``add`` would have built."""
    first, start = row["first"], from_micros(row["window_us"])
    key: GroupKey = (rule.id, row["dedup"], start)
    group = grouper.groups[key] = Group(
        rule=rule, dedup=row["dedup"], window_start=start,
        first_key=(from_micros(first["event_us"]), first["source"], first["position"]),
        first=_first_result(rule, row), last_time=from_micros(row["last_us"]),
        count=row["count"], uniques=set(row["uniques"]),
        samples=[((from_micros(s["event_us"]), s["source"], s["position"]), _record(s))
                 for s in row["samples"]],
        first_record=None if grouper.max_samples else _record(first),
    )
    group.samples = [(k, kept(group, k, r)) for k, r in group.samples]
    return key


def _record(event: dict[str, Any]) -> dict[str, Any]:
    """An event's record: unpickled, or the record struct ``to_pylist`` made a dict (the dict
    ``to_records`` gives for the row, shown as Panther shows it, as Python's matches carry it)."""
    if event["record"] is not None:
        record: dict[str, Any] = pickle.loads(event["record"])
        return record
    return panther_record(
        next(v for k, v in event.items() if k.startswith(RECORD_ROW) and v is not None))


def _first_result(rule: Rule, row: dict[str, Any]) -> RuleResult:
    """The first event's keys-only result: Python's (pickled), or the compiled keys' (as the
    local engine's grouper builds it from ``match_columns``)."""
    first = row["first"]
    if first["result"] is not None:
        result: RuleResult = pickle.loads(first["result"])
        return result
    return RuleResult(rule.id, matched=True, title=first["title"], unique=first["unique"],
                      dedup=row["dedup"], keys_only=True)


def stats_metrics(rules: Sequence[Rule]) -> list[Any]:
    """Observation metrics over result rows: matches and errors per rule, error samples."""
    from pyspark.sql import functions as S

    def count(test: Any) -> Any:
        return S.sum(S.when(test, 1).otherwise(0))

    rule_id = S.col("rule_id")
    metrics = [count((rule_id == r.id) & S.col("matched")).alias(f"m{i}")
               for i, r in enumerate(rules)]
    metrics += [count((rule_id == r.id) & S.map_contains_key("errors", fn)).alias(f"e{i}_{j}")
                for i, r in enumerate(rules) for j, fn in enumerate(FUNCTIONS)]
    sample = S.struct("source", "position", "rule_id", "errors")
    metrics.append(S.collect_list(S.when(S.col("error_sample"), sample)).alias("error_samples"))
    return metrics


def apply_stats(metrics: dict[str, Any], rules: Sequence[Rule], matches: Counter[str],
                error_counts: Counter[tuple[str, str]]) -> list[RuleError]:
    """Fill the match and error counters from observed ``metrics``; the error samples."""
    order = {r.id: i for i, r in enumerate(rules)}
    for i, rule in enumerate(rules):
        if metrics.get(f"m{i}"):
            matches[rule.id] += metrics[f"m{i}"]
        for j, fn in enumerate(FUNCTIONS):
            if metrics.get(f"e{i}_{j}"):
                error_counts[(rule.id, fn)] += metrics[f"e{i}_{j}"]
    samples = sorted(metrics.get("error_samples") or [],
                     key=lambda s: (s.source, s.position, order[s.rule_id]))
    errors = [RuleError(s.rule_id, fn, error, s.source, s.position)
              for s in samples for fn, error in _items(s.errors)]
    return errors[:MAX_ERROR_SAMPLES]


def _items(errors: Any) -> list[tuple[str, str]]:
    """A map column's entries in the rule's function order."""
    found = dict(errors or {})
    return [(fn, found[fn]) for fn in FUNCTIONS if fn in found]
