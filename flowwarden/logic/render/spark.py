"""The Spark SQL dialect of the SQL renderer (``sql``): Spark's quoting, and the renderer in it.

Spark SQL shares the expressions the renderer builds (``CASE``, ``IN``, ``coalesce``,
``IS NOT DISTINCT FROM``, ``&``); what differs is how text gets into the query. Spark string
literals treat backslash as an escape and ``${...}`` as a variable to substitute, and double
quotes delimit strings, not identifiers. So every string that is not plain printable ASCII is
spliced in as its UTF-8 bytes (``CAST(X'..' AS STRING)``), identifiers take backticks, and
input aliases (``__fw_f<n>``, ``__fw_ip<n>``) carry no user text at all.

IP predicates read the same per-row probe codes as DuckDB; the Spark engine computes them with
an Arrow UDF around the engine's ``IpClassifier`` (the running ``ipaddress`` module).

>>> import pyarrow as pa
>>> from flowwarden.logic.ir import Field, InSet
>>> renderer = SparkRenderer(pa.schema([("dstPort", pa.int64())]))
>>> renderer.verdict(InSet(Field(("dstPort",)), frozenset({53, "53"})))
'CAST(coalesce(`__fw_f0` IN (53), false) AS TINYINT)'
>>> spark_literal("it's")
"CAST(X'69742773' AS STRING)"
"""

from __future__ import annotations

import re
from typing import ClassVar

from flowwarden.errors import RenderError
from flowwarden.logic import ir
from flowwarden.logic.render.sql import Dialect, SqlRenderer
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


# Input aliases hold no user text; the prefix keeps them apart from the input's own columns.
ALIAS_PREFIX = "__fw_"
DAY = 86_400_000_000  # microseconds


def json_string(sql: str) -> str:
    """JSON text of a non-null STRING: ``to_json`` of a one-item array, brackets cut off."""
    array = f"to_json(array({sql}))"
    return f"substring({array}, 2, length({array}) - 2)"


def date_time(micros: str, sep: str) -> str:
    """``YYYY-MM-DD<sep>HH:MM:SS`` of epoch microseconds by arithmetic, in UTC whatever
    ``spark.sql.session.timeZone`` says."""
    day = f"((({micros}) - pmod({micros}, {DAY})) div {DAY})"
    second = f"(pmod({micros}, {DAY}) div 1000000)"
    date = f"CAST(date_from_unix_date(CAST({day} AS INT)) AS STRING)"
    clock = [f"lpad(CAST({part} AS STRING), 2, '0')"
             for part in (f"({second} div 3600)", f"pmod({second} div 60, 60)", f"pmod({second}, 60)")]
    return "(" + " || ".join([date, spark_literal(sep), clock[0], "':'", clock[1], "':'",
                              clock[2]]) + ")"


def time_text(micros: str, sep: str) -> str:
    """``isoformat(sep)`` of the UTC datetime of epoch microseconds: ``date_time``, six digits
    of fraction where there is one, ``+00:00``."""
    frac = f"pmod({micros}, 1000000)"
    fraction = f"(CASE WHEN {frac} = 0 THEN '' ELSE '.' || lpad(CAST({frac} AS STRING), 6, '0') END)"
    return f"({date_time(micros, sep)} || {fraction} || '+00:00')"


SPARK = Dialect("spark", spark_literal, spark_identifier, ALIAS_PREFIX + "{kind}{index}",
                string_type="STRING", json_string=json_string,
                micros=lambda sql: f"unix_micros({sql})", time_text=time_text,
                starts_with=lambda s, p: f"startswith({s}, {p})",
                ends_with=lambda s, p: f"endswith({s}, {p})",
                byte_length=lambda s: f"octet_length({s})")


class SparkRenderer(SqlRenderer):
    """Renders conditions to Spark SQL over the columns of a DataFrame (given its schema)."""

    NAME: ClassVar[str] = "spark"
    DIALECT: ClassVar[Dialect | None] = SPARK
