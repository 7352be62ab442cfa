"""Rule verdicts and Python rule calls on Spark executors.

Verdict columns come from the query both engines render (``logic.render.query.build_query``,
here in the Spark dialect); IP probe codes from an Arrow UDF around the engine's
``IpClassifier`` (each batch's distinct addresses classified once by ``ipaddress``).
Next to them the rules' compiled key functions (``keys``): a MATCH whose keys compile becomes
its result row in Spark. The rows left to Python (a PYTHON verdict, or keys that need Python)
go through ``mapInArrow``: each becomes a ``PantherEvent`` and runs ``Rule.evaluate_match`` (the
key functions) or ``Rule.evaluate`` (the whole rule), exactly as the in-process scanner does, on
a copy of the pack loaded once per Python worker.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.alerts.grouping import event_time, micros, window_start
from flowwarden.engine.enrichment import panther_records
from flowwarden.engine.local.ipclass import IpClassifier
from flowwarden.engine.spark.arrow import POSITION, SOURCE
from flowwarden.engine.spark.enrichment import ShippedTables
from flowwarden.engine.spark.keys import CALLS, key_outputs
from flowwarden.errors import RuleLoadError
from flowwarden.logic.render.probe import Probe
from flowwarden.logic.render.query import BatchQuery
from flowwarden.logic.render.spark import ALIAS_PREFIX, spark_identifier
from flowwarden.logic.render.sql import MATCH, PYTHON
from flowwarden.rules.loader import BUILTIN_PACKS, Pack, load_pack, resolve_pack_paths
from flowwarden.rules.rule import Rule, RuleResult

VERDICT = "__fw_r"
ROW = "__fw_row"
SHIPPED = "spark-files:"
MAX_ERROR_SAMPLES = 50
# One row per rule call that matched or raised; times as epoch microseconds (no time zones).
RESULT_DDL = (
    "rule_id string, matched boolean, dedup string, window_us long, event_us long, "
    "source string, position long, `unique` string, result binary, record binary, "
    "errors map<string,string>, error_sample boolean, title string"
)


@dataclass(frozen=True)
class PackSpec:
    """How an executor loads the pack: built-in names, directories, or shipped directories."""

    paths: tuple[str, ...]
    config: bytes
    tables: ShippedTables | None = None  # the scan's lookup tables, which event.lookup asks

    def load(self) -> Pack:
        """The pack, loaded once per Python worker process."""
        return _load_pack(self)

    def rules(self, rule_ids: Sequence[str]) -> list[Rule]:
        """The named rules of the loaded pack (the driver's rules, loaded again here)."""
        by_id = {rule.id: rule for rule in self.load().rules}
        missing = [r for r in rule_ids if r not in by_id]
        if missing:
            raise RuleLoadError(f"rules {missing} are not in the pack loaded from {self.paths}; "
                                "pass the --pack paths the driver loaded")
        return [by_id[r] for r in rule_ids]


@functools.lru_cache(maxsize=4)
def _load_pack(spec: PackSpec) -> Pack:
    paths = []
    for path in spec.paths:
        if path.startswith(SHIPPED):
            from pyspark import SparkFiles

            paths.append(SparkFiles.get(path[len(SHIPPED):]))
        elif path in BUILTIN_PACKS:  # a built-in name brings its layers (tuned: default too)
            paths.extend(str(p) for p in resolve_pack_paths([path]))
        else:
            paths.append(path)
    pack = load_pack(list(dict.fromkeys(paths)), pickle.loads(spec.config))
    if spec.tables is not None:  # as ``engine.enrichment.pack_enrichment`` sets it locally
        pack.lookup_function = spec.tables.enricher().lookup
    return pack


@functools.lru_cache(maxsize=1)
def _classifier() -> IpClassifier:
    return IpClassifier()


def field_column(keys: tuple[str, ...]) -> Any:
    """The column at a key path; a null parent gives null, as ``deep_get`` gives None."""
    from pyspark.sql import functions as F

    column = F.col(spark_identifier(keys[0], sql=False))
    for key in keys[1:]:
        column = column.getField(key)
    return column


def probe_column(probe: Probe, column: Any) -> Any:
    """Per-row probe codes (int16) of a string column, computed by ``ipaddress`` per value."""
    from pyspark.sql import functions as F

    def codes(values: pa.Array) -> pa.Array:
        return _classifier().codes(values, probe)

    udf: Any = F.arrow_udf  # its stubs type the function by eval type; the hints choose it here
    return udf(codes, "smallint")(column)


def with_verdicts(frame: Any, query: BatchQuery) -> Any:
    """``frame`` plus one TINYINT verdict column ``__fw_r<i>`` per rule of ``query``, and the
    rules' key values and flags (``keys.key_outputs``)."""
    from pyspark.sql import functions as F

    inputs = [*[field_column(keys).alias(alias) for alias, keys, _ in query.columns],
              *[probe_column(probe, field_column(keys)).alias(alias)
                for alias, keys, _, probe in query.probes]]
    outputs = [*((f"{VERDICT}{i}", sql) for i, sql in enumerate(query.verdicts)),
               *key_outputs(query)]
    names = [name for name, _ in outputs]
    verdicts = [F.expr(sql).alias(name) for name, sql in outputs]
    columns = [F.col(spark_identifier(c, sql=False)) for c in frame.columns]
    if not any(c.startswith(ALIAS_PREFIX) for c in frame.columns):
        return frame.select(*columns, *inputs).select(*columns, *verdicts)
    # An input column could clash with an alias: the inputs travel in one struct (slower).
    staged = frame.select(F.struct(*columns).alias(ROW), *inputs)
    return staged.select(ROW, *verdicts).select(f"{ROW}.*", *names)


def evaluator(spec: PackSpec, rule_ids: Sequence[str], record_names: Sequence[str]
              ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function running the rules' Python on the candidate rows that ask
    for it (``keys.CALLS``: on PYTHON the rule, on MATCH its key functions)."""
    rule_ids, record_names = tuple(rule_ids), tuple(record_names)

    def evaluate(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        pack, rules = spec.load(), spec.rules(rule_ids)
        out = ResultRows()
        for batch in batches:
            batch, verdicts = asked_rows(batch, len(rules))
            records = panther_records(batch.select(list(record_names)))
            sources = batch.column(SOURCE).to_pylist()
            positions = batch.column(POSITION).to_pylist()
            for index, record in enumerate(records):
                event = pack.event(record)
                for rule, codes in zip(rules, verdicts, strict=True):
                    code = codes[index]
                    if code == MATCH:
                        result = rule.evaluate_match(event, keys_only=True)
                    elif code == PYTHON:
                        result = rule.evaluate(event, keys_only=True)
                    else:
                        continue
                    out.add(rule, result, record, sources[index], positions[index])
            yield out.flush()

    return evaluate


def asked_rows(batch: pa.RecordBatch, rules: int) -> tuple[pa.RecordBatch, list[np.ndarray]]:
    """The rows of ``batch`` on which Python has something to run, and per rule the verdict
    it acts on there (the ``ask`` of the row's ``CALLS``; 0: nothing)."""
    calls = batch.column(CALLS)
    flat = calls.flatten()
    codes = np.zeros((rules, batch.num_rows), dtype=np.int8)
    codes[np.asarray(flat.field("rule")), np.asarray(pc.list_parent_indices(calls))] = (
        np.asarray(flat.field("ask")))
    rows = np.flatnonzero(codes.any(axis=0))
    return batch.take(pa.array(rows, pa.int64())), list(codes[:, rows])


class ResultRows:
    """Columns of the result rows of one task (errors sampled per task)."""

    NAMES = ("rule_id", "matched", "dedup", "window_us", "event_us", "source", "position",
             "unique", "result", "record", "errors", "error_sample", "title")

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in self.NAMES}
        self.error_samples = 0

    def add(self, rule: Rule, result: RuleResult, record: dict[str, Any], source: str,
            position: int) -> None:
        if not result.matched and not result.errors:
            return
        sample = bool(result.errors) and self.error_samples < MAX_ERROR_SAMPLES
        self.error_samples += sample
        values: dict[str, Any] = {"rule_id": rule.id, "matched": bool(result.matched),
                                  "source": source, "position": position,
                                  "errors": list(result.errors.items()), "error_sample": sample}
        if result.matched:
            when = event_time(record)
            dedup = result.dedup or f"defaultDedupString:{rule.id}"
            values.update(dedup=dedup, event_us=micros(when), unique=result.unique,
                          window_us=micros(window_start(when, rule.dedup_minutes)),
                          result=pickle.dumps(result), record=pickle.dumps(record))
        for name, column in self.columns.items():
            column.append(values.get(name))

    def flush(self) -> pa.RecordBatch:
        batch = pa.RecordBatch.from_pydict(self.columns, schema=RESULT_SCHEMA)
        for column in self.columns.values():
            column.clear()
        return batch


RESULT_SCHEMA = pa.schema([
    ("rule_id", pa.string()), ("matched", pa.bool_()), ("dedup", pa.string()),
    ("window_us", pa.int64()), ("event_us", pa.int64()), ("source", pa.string()),
    ("position", pa.int64()), ("unique", pa.string()), ("result", pa.binary()),
    ("record", pa.binary()), ("errors", pa.map_(pa.string(), pa.string())),
    ("error_sample", pa.bool_()), ("title", pa.string()),
])

