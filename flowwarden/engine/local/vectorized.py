"""Vectorized rule evaluation: every rule's condition over an Arrow batch in one DuckDB query.

Each rule gets a three-valued verdict per row: MATCH, NO_MATCH, or PYTHON (the engine must run
the Python rule on that row: Python would raise there, a residual or data-model method is
reached, or the column types are not ones the SQL reproduces). Running Python on the PYTHON
rows and trusting the rest gives exactly the results of running Python on every row.

The query is ``logic.render.query.build_query`` in the DuckDB dialect, the one the Spark engine
renders in Spark's; this module feeds it Arrow batches.

>>> import pyarrow as pa
>>> from flowwarden.rules.loader import load_pack, resolve_pack_paths
>>> compiled = compile_pack(load_pack(resolve_pack_paths([])))
>>> batch = pa.RecordBatch.from_pylist([{"dstPort": 22, "srcAddr": "45.33.32.156",
...     "dstAddr": "10.0.0.1", "p_log_type": "AWS.VPCFlow"}])
>>> verdicts = evaluate_batch(compiled, batch, "AWS.VPCFlow")
>>> verdicts["AWS.VPC.InboundAdminPort"].match.tolist()
[0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.alerts.formats.jsonsql import record_json
from flowwarden.engine.local.ipclass import IpClassifier
from flowwarden.logic import ir
from flowwarden.logic.alerts import extract_alert_functions
from flowwarden.logic.extract import Extraction, extract_rule
from flowwarden.logic.render.duckdb_sql import DUCKDB, DuckDBRenderer
from flowwarden.logic.render.probe import Probe
from flowwarden.logic.render.query import Alerts, BatchQuery, build_query
from flowwarden.logic.render.sql import MATCH, NO_MATCH, PYTHON
from flowwarden.logic.rewrite import resolve_fields
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule
from flowwarden.util.prepared import Prepared
from flowwarden.util.registered import registered
from flowwarden.util.split_query import SplitQuery

__all__ = ["MATCH", "NO_MATCH", "PYTHON", "BatchEvaluator", "CompiledPack", "MatchKeys", "RulePlan",
           "Verdicts", "alert_values", "compile_pack", "evaluate_batch", "match_key_table"]
VIEW = "flowwarden_batch"
# The alert functions that decide which alert a match joins, run on every match.
KEY_FUNCTIONS = ("dedup", "title", "unique")
SAMPLE_QUERIES = 64  # sample queries kept, one per schema and set of all-null columns


@dataclass(frozen=True)
class RulePlan:
    """One rule on one log type: its condition with data-model fields resolved."""

    rule_id: str
    log_type: str
    condition: ir.Node
    exact: bool
    reasons: tuple[str, ...]
    sql: str | None = None
    # ``KEY_FUNCTIONS`` the rule defines, as value IR resolved for the log type (None: Python)
    keys: tuple[tuple[str, ir.Node | None], ...] = ()
    # its other alert functions (and the title), run on first events
    alert: tuple[tuple[str, ir.Node | None], ...] = ()


@dataclass(frozen=True)
class Verdicts:
    """One rule's verdicts over a batch: row indices to alert on and rows to run in Python."""

    codes: np.ndarray
    match: np.ndarray
    python: np.ndarray

    @classmethod
    def from_codes(cls, codes: np.ndarray) -> Verdicts:
        return cls(codes, np.flatnonzero(codes == MATCH), np.flatnonzero(codes == PYTHON))

    def within(self, low: int, high: int) -> Verdicts:
        """These verdicts with the matches and PYTHON rows of rows ``[low, high)`` alone."""
        if low == 0 and high >= len(self.codes):
            return self

        def inside(rows: np.ndarray) -> np.ndarray:
            return rows[np.searchsorted(rows, low):np.searchsorted(rows, high)]

        return Verdicts(self.codes, inside(self.match), inside(self.python))


class BatchEvaluator:
    """Runs conditions over batches: one DuckDB connection, one IP classifier, cached queries.

    >>> import pyarrow as pa
    >>> from flowwarden.logic.ir import Field, Truthy
    >>> batch = pa.table({"srcPort": [0, 443, None]})
    >>> BatchEvaluator().codes({"r": Truthy(Field(("srcPort",)))}, batch)["r"].tolist()
    [0, 1, 0]
    """

    def __init__(self) -> None:
        self.connection = duckdb.connect()
        self.prepared = Prepared(self.connection)
        self.classifier = IpClassifier()
        self._queries: dict[tuple[object, str | None, pa.Schema], BatchQuery] = {}
        self._last: tuple[pa.RecordBatch | pa.Table, BatchQuery, pa.Table] | None = None
        self._samples: dict[tuple[pa.Schema, tuple[int, ...]], str | None] = {}
        self._split = SplitQuery(self.connection, VIEW)  # samples: the heaviest per-row query

    def query(self, conditions: Sequence[tuple[str, ir.Node]], schema: pa.Schema,
              key: object = None, log_type: str | None = None, alerts: Alerts = ()) -> BatchQuery:
        """The query for ``conditions`` (and ``alerts``, see ``build_query``) over ``schema``
        (rows of another ``log_type`` ask Python); cached under ``key`` when given."""
        if key is None:
            return build_query(conditions, schema, DUCKDB, log_type, alerts)
        if (key, log_type, schema) not in self._queries:
            self._queries[(key, log_type, schema)] = build_query(conditions, schema, DUCKDB,
                                                                 log_type, alerts)
        return self._queries[(key, log_type, schema)]

    def codes(self, conditions: Mapping[str, ir.Node], batch: pa.RecordBatch | pa.Table,
              key: object = None, log_type: str | None = None) -> dict[str, np.ndarray]:
        """Verdict codes (0, 1, 2) per row for each named condition; with a ``log_type``, rows
        whose ``p_log_type`` differs are PYTHON."""
        query = self.query(list(conditions.items()), batch.schema, key, log_type)
        return self.run(query, batch)

    def run(self, query: BatchQuery, batch: pa.RecordBatch | pa.Table) -> dict[str, np.ndarray]:
        """Verdict codes per row for each of the query's conditions."""
        rows = batch.num_rows
        codes = {name: np.full(rows, code, dtype=np.int8) for name, code in query.constants.items()}
        if query.slots:
            if rows:
                codes.update(self._run(query, self.inputs(query, batch)))
            else:
                codes.update({name: np.zeros(0, dtype=np.int8) for name in query.slots})
        return codes

    def alert_values(self, query: BatchQuery, name: str, inputs: pa.Table,
                     rows: np.ndarray) -> dict[str, list[Any]]:
        """Condition ``name``'s alert columns (``BatchQuery.alert_select``) on ``rows`` of the
        query's ``inputs``, as Python lists by column name."""
        table = self.alert_table(query, name, inputs, rows)
        return {column: table.column(column).to_pylist() for column in table.column_names}

    def alert_table(self, query: BatchQuery, name: str, inputs: pa.Table,
                    rows: np.ndarray) -> pa.Table:
        """``alert_values`` as an Arrow table."""
        with registered(self.connection, VIEW, inputs.take(pa.array(rows, type=pa.int64()))):
            return self.prepared.sql(query.alert_select(VIEW, name)).to_arrow_table()

    def samples(self, batch: pa.RecordBatch | pa.Table) -> pa.Array | None:
        """Each row of complete records as an alert's sample, JSON text rendered by DuckDB
        (``jsonsql.record_json``); None where the schema has a type it does not render.

        Columns null on every row are left out of the query: a sample leaves out null fields,
        and a flow log's fields of later versions are often all absent (half of a version-5
        record's 65 columns, a fifth of the query's time)."""
        present = tuple(i for i, column in enumerate(batch.columns)
                        if column.null_count < batch.num_rows)
        key = (batch.schema, present)
        if key not in self._samples:
            if len(self._samples) >= SAMPLE_QUERIES:
                self._samples.clear()
            self._samples[key] = record_json(pa.schema([batch.schema.field(i) for i in present]),
                                             VIEW)
        query = self._samples[key]
        if query is None:
            return None
        return self._split.column(query, batch.select(list(present)))

    def inputs(self, query: BatchQuery, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        """What the query reads from ``batch``, under the query's aliases (IP probes computed).
        The last batch's are kept: the key functions of its matches read them again."""
        last = self._last
        if last is not None and last[0] is batch and last[1] is query:
            return last[2]
        inputs = self._inputs(query, batch)
        self._last = (batch, query, inputs)
        return inputs

    def _inputs(self, query: BatchQuery, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        arrays: dict[str, pa.Array] = {}
        for alias, _, indexes in query.columns:
            column = _column(batch, indexes)
            if pa.types.is_string_view(column.type):
                column = column.cast(pa.string())
            elif pa.types.is_dictionary(column.type) and pa.types.is_string_view(
                    column.type.value_type):
                column = column.cast(pa.dictionary(column.type.index_type, pa.string()))
            arrays[alias] = column
        by_column: dict[tuple[int, ...], list[tuple[str, Probe]]] = {}
        for alias, _, indexes, probe in query.probes:
            by_column.setdefault(indexes, []).append((alias, probe))
        for indexes, wanted in by_column.items():
            codes = self.classifier.codes_many(_column(batch, indexes), [p for _, p in wanted])
            arrays.update({alias: code for (alias, _), code in zip(wanted, codes, strict=True)})
        if not arrays:
            arrays["_rows"] = pa.nulls(batch.num_rows, pa.int8())
        return pa.table(arrays)

    def _run(self, query: BatchQuery, inputs: pa.Table) -> dict[str, np.ndarray]:
        sql = query.select(VIEW)
        assert sql is not None  # some verdict is not constant
        with registered(self.connection, VIEW, inputs):
            # Not prepared: DuckDB runs an EXECUTE's scan of the view on one thread, and this
            # query reads a whole batch (a 1M-row batch of the tuned pack: 152 ms against 95 ms
            # planned afresh, which costs about 1.5 ms).
            result = self.connection.execute(sql).fetchnumpy()
        return {name: np.asarray(result[f"r{i}"], dtype=np.int8)
                for i, name in enumerate(query.slots)}


@dataclass
class CompiledPack:
    """A pack's rules compiled for vectorized evaluation."""

    pack: Pack
    extractions: dict[str, Extraction]
    plans: dict[tuple[str, str], RulePlan]
    evaluator: BatchEvaluator = field(default_factory=BatchEvaluator, repr=False)

    def rules_for(self, log_type: str) -> list[RulePlan]:
        """The plans of rules whose LogTypes include ``log_type``, in pack order."""
        return [p for (_, lt), p in self.plans.items() if lt == log_type]

    def query(self, log_type: str, schema: pa.Schema) -> BatchQuery:
        """The query for batches of ``log_type`` with ``schema`` (rendered once, then cached):
        every rule's verdict, and the key functions of the rules that define any."""
        plans = self.rules_for(log_type)
        conditions = [(p.rule_id, p.condition) for p in plans]
        alerts = [(p.rule_id, p.keys) for p in plans if p.keys]
        return self.evaluator.query(conditions, schema, key=log_type, log_type=log_type,
                                    alerts=alerts)

    def alert_query(self, log_type: str, schema: pa.Schema) -> BatchQuery:
        """The query of the alert functions (title and the rest, not the keys) of every rule of
        ``log_type``, over complete records with ``schema``."""
        alerts = [(p.rule_id, p.alert) for p in self.rules_for(log_type) if p.alert]
        return self.evaluator.query([], schema, key=("alert", log_type), log_type=log_type,
                                    alerts=alerts)

    def columns(self, log_type: str) -> set[str]:
        """Top-level columns the compiled conditions of ``log_type`` read (plus
        ``p_event_time``, by which matches are grouped).

        A reader may project to these for the vectorized pass; rows handed to Python (matches
        and PYTHON verdicts) still need their full record. ``p_log_type`` is not asked for: a
        reader's batches are of one log type each, and a batch without the column is taken to
        be of its log type, so the query tests no row's log type.
        """
        return {"p_event_time"} | {path[0] for path in self.paths(log_type)}

    def paths(self, log_type: str, rule_id: str | None = None) -> set[tuple[str, ...]]:
        """The field paths the compiled conditions and key functions of ``log_type`` read (of
        one rule's, with ``rule_id``)."""
        found: set[tuple[str, ...]] = set()
        for plan in self.rules_for(log_type):
            if rule_id is not None and plan.rule_id != rule_id:
                continue
            nodes = [plan.condition, *(node for _, node in plan.keys if node is not None)]
            found.update(n.keys for node in nodes for n in ir.walk(node)
                         if isinstance(n, ir.Field))
        return found

    def sql(self, log_type: str, schema: pa.Schema) -> str | None:
        """The one SQL query evaluating every rule of ``log_type`` over such a batch."""
        return self.query(log_type, schema).select(VIEW)


def compile_pack(pack: Pack, rules: Sequence[Rule] | None = None,
                 schemas: Mapping[str, pa.Schema] | None = None) -> CompiledPack:
    """Extract and plan every rule (default: all loaded rules) for each of its log types.

    ``schemas`` (log type -> Arrow schema), when given, fills each plan's ``sql`` for display;
    evaluation always renders against the actual batch schema.
    """
    extractions: dict[str, Extraction] = {}
    plans: dict[tuple[str, str], RulePlan] = {}
    for rule in pack.rules if rules is None else rules:
        extraction = extractions[rule.id] = extract_rule(rule)
        functions = extract_alert_functions(rule)
        for log_type in rule.log_types:
            values = functions.resolved(pack.data_models.get(log_type)).items()
            keys = tuple((n, v) for n, v in values if n in KEY_FUNCTIONS)
            alert = tuple((n, v) for n, v in values if n not in KEY_FUNCTIONS or n == "title")
            condition = resolve_fields(extraction.condition, pack.data_models.get(log_type))
            reasons = [r.reason for r in ir.residuals(condition)]
            reasons += [f"data-model field {u.name!r} needs Python (method or indexed path)"
                        for u in ir.walk(condition) if isinstance(u, ir.Udm)]
            sql = None
            if schemas and log_type in schemas:
                sql = DuckDBRenderer(schemas[log_type]).verdict(condition)
            plans[(rule.id, log_type)] = RulePlan(rule.id, log_type, condition, not reasons,
                                                  tuple(reasons), sql, keys, alert)
    return CompiledPack(pack, extractions, plans)


def evaluate_batch(compiled: CompiledPack, batch: pa.RecordBatch | pa.Table,
                   log_type: str) -> dict[str, Verdicts]:
    """Verdicts for every rule whose LogTypes include ``log_type`` (other rules are absent).

    Rows whose ``p_log_type`` is present and differs from ``log_type`` are PYTHON for every
    rule (their data model would differ); without a ``p_log_type`` column the batch's log type
    is assumed (``logic.render.query``).
    """
    plans = compiled.rules_for(log_type)
    if not plans:
        return {}
    codes = compiled.evaluator.run(compiled.query(log_type, batch.schema), batch)
    return {plan.rule_id: Verdicts.from_codes(codes[plan.rule_id]) for plan in plans}


@dataclass(frozen=True)
class MatchKeys:
    """A rule's key functions on some matched rows (``match_keys``): per function, its value
    as ``str(result)`` (None where it returned None) and whether Python must run it there."""

    values: dict[str, list[str | None]]
    python: dict[str, list[bool]]

    def row(self, index: int) -> tuple[dict[str, str | None], bool]:
        """The ``index``-th row's values, and whether any needs Python."""
        return ({name: column[index] for name, column in self.values.items()},
                any(column[index] for column in self.python.values()))


def match_key_table(compiled: CompiledPack, batch: pa.RecordBatch | pa.Table, log_type: str,
                    rule_id: str, rows: np.ndarray) -> pa.Table | None:
    """The key functions of ``rule_id`` (``RulePlan.keys``) on ``rows`` of ``batch``: per
    function, its value as ``str(result)`` (null where it returned None) and, in column
    ``<name>:python``, whether Python must run it there; None when the rule defines none."""
    if not compiled.plans[(rule_id, log_type)].keys:
        return None
    return _function_table(compiled, compiled.query(log_type, batch.schema), batch, rule_id, rows)


def alert_values(compiled: CompiledPack, batch: pa.RecordBatch | pa.Table, log_type: str,
                 rule_id: str, rows: np.ndarray) -> MatchKeys:
    """The alert functions of ``rule_id`` other than the keys (and the title) on ``rows`` of
    ``batch``, complete records; JSON shapes (context, destinations) still as JSON text."""
    plan = compiled.plans[(rule_id, log_type)]
    return _values(compiled, compiled.alert_query(log_type, batch.schema), batch, rule_id, rows,
                   [name for name, _ in plan.alert])


def alert_value_table(compiled: CompiledPack, batch: pa.RecordBatch | pa.Table, log_type: str,
                      rule_id: str, rows: np.ndarray) -> pa.Table | None:
    """``alert_values`` as an Arrow table (columns ``<name>`` and ``<name>:python``); None when
    the rule defines no alert function but its keys."""
    if not compiled.plans[(rule_id, log_type)].alert:
        return None
    return _function_table(compiled, compiled.alert_query(log_type, batch.schema), batch,
                           rule_id, rows)


def _function_table(compiled: CompiledPack, query: BatchQuery, batch: pa.RecordBatch | pa.Table,
                    rule_id: str, rows: np.ndarray) -> pa.Table:
    """The columns ``query`` computes for ``rule_id``'s functions on ``rows`` of ``batch``."""
    inputs = compiled.evaluator.inputs(query, batch)
    return compiled.evaluator.alert_table(query, rule_id, inputs, rows)


def _values(compiled: CompiledPack, query: BatchQuery, batch: pa.RecordBatch | pa.Table,
            rule_id: str, rows: np.ndarray, names: list[str]) -> MatchKeys:
    if not names:
        return MatchKeys({}, {})
    inputs = compiled.evaluator.inputs(query, batch)
    found = compiled.evaluator.alert_values(query, rule_id, inputs, rows)
    return MatchKeys({n: found[n] for n in names},
                     {n: [bool(v) for v in found[n + ":python"]] for n in names})


def _column(batch: pa.RecordBatch | pa.Table, indexes: tuple[int, ...]) -> pa.Array:
    column = batch.column(indexes[0])
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    for index in indexes[1:]:
        column = pc.struct_field(column, [index])  # parent nulls propagate, as deep_get's None
    return column
