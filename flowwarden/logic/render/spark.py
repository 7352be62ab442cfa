"""The Spark SQL renderer: the DuckDB renderer with Spark's quoting, exact to Python.

Spark SQL shares DuckDB's expression subset the base renders (``CASE``, ``IN``, ``coalesce``,
``IS NOT DISTINCT FROM``, ``&``); what differs is how text gets into the query. Spark string
literals treat backslash as an escape and ``${...}`` as a variable to substitute, and double
quotes delimit strings, not identifiers. So every string that is not plain printable ASCII is
spliced in as its UTF-8 bytes (``CAST(X'..' AS STRING)``), identifiers take backticks, and
column aliases carry no user text at all.

IP predicates read the same per-row probe codes as DuckDB; the Spark engine computes them with
an Arrow UDF around the engine's ``IpClassifier`` (the running ``ipaddress`` module).

>>> import pyarrow as pa
>>> from flowwarden.logic.ir import Field, InSet
>>> inputs = SparkInputs(pa.schema([("dstPort", pa.int64())]))
>>> SparkRenderer(inputs).verdict(InSet(Field(("dstPort",)), frozenset({53, "53"})))
'CAST(coalesce(`__fw_f0` IN (53), false) AS TINYINT)'
>>> spark_literal("it's")
"CAST(X'69742773' AS STRING)"
"""

from __future__ import annotations

import re
from typing import ClassVar

from flowwarden.errors import RenderError
from flowwarden.logic import ir
from flowwarden.logic.render.duckdb_sql import (
    FALSE,
    INT,
    NULL,
    OTHER,
    STR,
    BatchInputs,
    Cond,
    DuckDBRenderer,
    NeedsPython,
    Value,
    resolve_path,
)
from flowwarden.logic.render.probe import Probe
from flowwarden.logic.render.sqltext import INT64_MIN, UINT64_MAX, sql_literal

INT64_MAX = 2**63 - 1
# https://spark.apache.org/docs/latest/sql-ref-literals.html#string-literal : backslash escapes,
# and `${var}` is substituted (spark.sql.variable.substitute). Plain text avoids all three.
PLAIN_STRING = re.compile(r"[ !#%&(-\[\]-~]*")
# https://spark.apache.org/docs/latest/sql-ref-identifiers.html : backquoted, `` for a backquote.
IDENTIFIER_QUOTE = "`"
# https://spark.apache.org/docs/latest/sql-ref-datatypes.html : BIGINT is the widest integer.
WIDE_INTEGER = "DECIMAL(20, 0)"


def spark_literal(value: ir.Scalar) -> str:
    """A Spark SQL literal for ``value`` that no parser setting can reinterpret.

    >>> spark_literal("10.0.0.0/8"), spark_literal(None), spark_literal(2**64 - 1)
    ("'10.0.0.0/8'", 'NULL', "CAST('18446744073709551615' AS DECIMAL(20, 0))")
    """
    if isinstance(value, str):
        if PLAIN_STRING.fullmatch(value):
            return f"'{value}'"
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise RenderError(f"string literal {value!r} holds a lone surrogate") from None
        return f"CAST(X'{data.hex().upper()}' AS STRING)"
    if isinstance(value, int) and not isinstance(value, bool) and INT64_MAX < value <= UINT64_MAX:
        return f"CAST('{value}' AS {WIDE_INTEGER})"
    if isinstance(value, int) and not isinstance(value, bool) and value == INT64_MIN:
        return f"CAST('{value}' AS BIGINT)"  # `-9223372036854775808` parses as -(2**63): too big
    return sql_literal(value)


def spark_identifier(name: str, sql: bool = True) -> str:
    """A backquoted Spark identifier.

    In SQL text (``sql``) a ``$`` is refused: variable substitution runs before parsing. Column
    names given to ``functions.col`` are not substituted and may hold anything but NUL.

    >>> spark_identifier("we`ird.name", sql=False)
    '`we``ird.name`'
    """
    if "\x00" in name or (sql and "$" in name):
        raise RenderError(f"identifier {name!r} cannot be quoted for Spark SQL")
    return IDENTIFIER_QUOTE + name.replace(IDENTIFIER_QUOTE, IDENTIFIER_QUOTE * 2) + IDENTIFIER_QUOTE


class SparkInputs(BatchInputs):
    """The columns and probe codes a Spark query reads, aliased ``__fw_f<n>``/``__fw_ip<n>``.

    The aliases hold no user text, and the prefix keeps them apart from the input's columns.
    """

    PREFIX: ClassVar[str] = "__fw_"

    def column(self, keys: tuple[str, ...]) -> Value:
        kind, indexes = resolve_path(self.schema, keys)
        if kind == NULL:
            return Value("NULL", NULL)
        if kind == OTHER:
            raise NeedsPython
        if keys not in self.columns:
            self.columns[keys] = (f"{self.PREFIX}f{len(self.columns)}", indexes)
        return Value(spark_identifier(self.columns[keys][0]), kind)

    def probe(self, keys: tuple[str, ...], probe: Probe) -> str:
        if (keys, probe) not in self.probes:
            self.probes[(keys, probe)] = f"{self.PREFIX}ip{len(self.probes)}"
        return spark_identifier(self.probes[(keys, probe)])


class SparkRenderer(DuckDBRenderer):
    """Renders conditions to Spark SQL over the columns of ``inputs`` (a ``SparkInputs``)."""

    NAME: ClassVar[str] = "spark"

    def const_sql(self, node: ir.Const) -> Value | Cond:
        if isinstance(node.value, bool):
            return super().const_sql(node)
        kind = NULL if node.value is None else INT if isinstance(node.value, int) else STR
        return Value(spark_literal(node.value), kind, const=True)

    def inset_sql(self, node: ir.InSet) -> Cond:
        operand = self.value(node.operand)
        if operand.kind not in (INT, STR):
            return Cond(FALSE, None)  # None is in no set of str/int
        wanted = int if operand.kind == INT else str
        values = sorted(v for v in node.values if type(v) is wanted)
        if not values:
            return Cond(FALSE, None)
        items = ", ".join(spark_literal(v) for v in values)
        return Cond(f"coalesce({operand.sql} IN ({items}), false)", None)
