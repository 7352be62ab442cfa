"""One query per (conditions, batch schema, log type), in any dialect: a verdict per condition.

Both engines evaluate rules through this: the local engine runs ``BatchQuery.select`` in DuckDB
over each Arrow batch, the Spark engine adds ``BatchQuery.verdicts`` as columns of a DataFrame.
The inputs (``BatchQuery.columns``, and ``BatchQuery.probes``: IP codes the engine computes with
the running ``ipaddress`` module) are what the engine must provide under their aliases.

Rows whose ``p_log_type`` is present and differs from the query's log type ask Python for every
rule (their data model would differ); a ``p_log_type`` column that does not hold strings makes
every row ask. Without a ``p_log_type`` column the batch's log type is assumed.

>>> import pyarrow as pa
>>> from flowwarden.logic.ir import Field, InSet
>>> from flowwarden.logic.render.duckdb_sql import DUCKDB
>>> schema = pa.schema([("dstPort", pa.int64()), ("p_log_type", pa.string())])
>>> query = build_query([("ssh", InSet(Field(("dstPort",)), frozenset({22})))], schema, DUCKDB,
...                     "AWS.VPCFlow")
>>> print(query.select("batch"))
SELECT
  CAST(CASE WHEN (NOT coalesce("f1:p_log_type" = 'AWS.VPCFlow', false)) THEN 2 ELSE CAST(coalesce("f0:dstPort" IN (22), false) AS TINYINT) END AS TINYINT) AS "r0"
FROM batch
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa

from flowwarden.logic import ir
from flowwarden.logic.render.sql import (
    FALSE,
    PYTHON,
    TRUE,
    BatchInputs,
    Dialect,
    Input,
    ProbeInput,
    SqlRenderer,
    any_of,
    decide_gets,
)
from flowwarden.logic.render.sql_values import AlertColumn, function_column

LOG_TYPE_COLUMN = "p_log_type"


Alerts = Sequence[tuple[str, Sequence[tuple[str, ir.Node | None]]]]


@dataclass(frozen=True)
class BatchQuery:
    """Verdict SQL per named condition over one schema, and the inputs it reads.

    ``alerts`` holds, per named condition given alert functions, their ``AlertColumn``s
    (``sql_values``): the SQL of each function's value and of the rows needing Python.
    """

    dialect: Dialect
    names: tuple[str, ...]
    verdicts: tuple[str, ...]  # a constant verdict is its digit
    columns: tuple[Input, ...]
    probes: tuple[ProbeInput, ...]
    alerts: tuple[tuple[str, tuple[AlertColumn, ...]], ...] = ()

    @cached_property
    def constants(self) -> dict[str, int]:
        """The conditions whose verdict is the same on every row."""
        return {n: int(v) for n, v in zip(self.names, self.verdicts, strict=True) if v.isdigit()}

    @cached_property
    def slots(self) -> tuple[str, ...]:
        """The conditions whose verdict the SQL computes, in the order of ``select``'s columns."""
        return tuple(n for n, v in zip(self.names, self.verdicts, strict=True) if not v.isdigit())

    @property
    def constant_no_match(self) -> bool:
        """True when no row can be a candidate (every verdict is the constant 0)."""
        return all(v == "0" for v in self.verdicts)

    def select(self, source: str) -> str | None:
        """One SELECT of the non-constant verdicts from ``source``, as ``r0``, ``r1``...; None
        when every verdict is constant."""
        computed = [v for v in self.verdicts if not v.isdigit()]
        if not computed:
            return None
        items = ",\n  ".join(f"{v} AS {self.dialect.identifier(f'r{i}')}"
                             for i, v in enumerate(computed))
        return f"SELECT\n  {items}\nFROM {source}"

    def alert_select(self, source: str, name: str, where: str | None = None) -> str:
        """One SELECT of condition ``name``'s alert columns from ``source``: per function, its
        value as ``<function>`` and its "needs Python" flag as ``<function>:python``; ``where``
        (SQL) filters the rows, say to the matches."""
        columns = dict(self.alerts)[name]
        quote = self.dialect.identifier
        items = [f"{c.value} AS {quote(c.name)},\n  {c.python} AS {quote(c.name + ':python')}"
                 for c in columns] or ["NULL AS " + quote("none")]
        body = ",\n  ".join(items)
        return f"SELECT\n  {body}\nFROM {source}" + (f"\nWHERE {where}" if where else "")


def build_query(conditions: Sequence[tuple[str, ir.Node]], schema: pa.Schema, dialect: Dialect,
                log_type: str | None = None, alerts: Alerts = ()) -> BatchQuery:
    """Render named conditions against ``schema`` in ``dialect``; with a ``log_type``, rows of
    another log type ask Python.

    ``alerts`` gives alert functions per condition name: ``(name, [(function, value IR or None
    when not compiled), ...])``, resolved for the log type (``AlertPlan.resolved(...).items()``);
    their columns read the same inputs as the verdicts.
    """
    renderer = SqlRenderer(BatchInputs(schema, dialect))
    verdicts = [renderer.verdict(condition) for _, condition in conditions]
    foreign = None if log_type is None else foreign_rows(renderer, log_type)
    if foreign is not None:
        verdicts = [ask_python_where(foreign, v) for v in verdicts]
    columns = tuple((name, tuple(
        function_column(f, None if node is None else decide_gets(node, schema), renderer, foreign)
        for f, node in items)) for name, items in alerts)
    inputs = renderer.inputs
    return BatchQuery(dialect, tuple(name for name, _ in conditions), tuple(verdicts),
                      tuple(inputs.columns.values()), tuple(inputs.probes.values()), columns)


def foreign_rows(renderer: SqlRenderer, log_type: str) -> str | None:
    """SQL true on rows whose ``p_log_type`` is not ``log_type``: ``p_log_type != log_type``,
    where a column Python would compare oddly (not strings) counts as foreign throughout."""
    if LOG_TYPE_COLUMN not in renderer.inputs.schema.names:
        return None
    same = ir.Compare("==", ir.Field((LOG_TYPE_COLUMN,)), ir.Const(log_type))
    value, error = renderer.cond(same)
    return any_of([renderer.negate(value), *([error] if error is not None else [])])


def ask_python_where(rows: str, verdict: str) -> str:
    """``verdict`` with the code PYTHON on ``rows``."""
    if verdict == str(PYTHON) or rows == TRUE:
        return str(PYTHON)
    if rows == FALSE:
        return verdict
    return f"CAST(CASE WHEN {rows} THEN {PYTHON} ELSE {verdict} END AS TINYINT)"
