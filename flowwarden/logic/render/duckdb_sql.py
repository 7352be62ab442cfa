"""The DuckDB dialect of the SQL renderer (``sql``): DuckDB's quoting, and the renderer in it.

Strings are single-quoted with control characters spliced in as ``chr(n)`` and integers above
BIGINT cast from text to UBIGINT (``sqltext.sql_literal``); identifiers are double-quoted. Input
aliases show the key path they read (``"f0:dstPort"``), which makes the SQL readable.

>>> import pyarrow as pa
>>> from flowwarden.logic.ir import Compare, Const, Field
>>> renderer = DuckDBRenderer(pa.schema([("dstAddr", pa.string())]))
>>> renderer.verdict(Compare("==", Field(("dstAddr",)), Const("it's")))
'CAST(coalesce("f0:dstAddr" = \\'it\\'\\'s\\', false) AS TINYINT)'
"""

from __future__ import annotations

from typing import ClassVar

from flowwarden.logic.render.sql import Dialect, SqlRenderer
from flowwarden.logic.render.sqltext import quote_identifier, sql_literal


def json_string(sql: str) -> str:
    """JSON text of a non-null VARCHAR: DuckDB's ``to_json`` escapes quotes, backslashes and
    control characters."""
    return f"CAST(to_json({sql}) AS VARCHAR)"


def epoch_micros(sql: str) -> str:
    """Epoch microseconds of a TIMESTAMP WITH TIME ZONE (independent of the session time zone)."""
    return f"epoch_us({sql})"


def date_time(micros: str, sep: str) -> str:
    """``YYYY-MM-DD<sep>HH:MM:SS`` of epoch microseconds, in UTC (a naive TIMESTAMP has no zone;
    ``%Y`` pads years to four digits)."""
    return f"strftime(make_timestamp({micros}), {sql_literal(f'%Y-%m-%d{sep}%H:%M:%S')})"


DUCKDB = Dialect("duckdb", sql_literal, quote_identifier, "{kind}{index}:{path}",
                 json_string=json_string, micros=epoch_micros, date_time=date_time,
                 starts_with=lambda s, p: f"starts_with({s}, {p})",
                 ends_with=lambda s, p: f"ends_with({s}, {p})",
                 byte_length=lambda s: f"strlen({s})")


class DuckDBRenderer(SqlRenderer):
    """Renders conditions to DuckDB SQL over the columns of one Arrow batch."""

    NAME: ClassVar[str] = "duckdb"
    DIALECT: ClassVar[Dialect | None] = DUCKDB
