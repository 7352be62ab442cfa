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

# Python's json writes these escapes (ensure_ascii=False); DuckDB's to_json writes the same
# but for upper-case hex letters (\u000B where Python writes \u000b).
_SHORT = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
_PYTHON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), *(
    (chr(code), _SHORT.get(code, f"\\u{code:04x}")) for code in range(0x20)))
ESCAPE_START = "\\u00"  # how to_json's escapes of control characters begin


def json_string(sql: str) -> str:
    """JSON text of a non-null VARCHAR exactly as ``json.dumps(text, ensure_ascii=False)``
    writes it: DuckDB's ``to_json``, or, where that wrote a ``\\u00XX`` escape (whose hex
    letters it writes upper case), Python's escapes spelled out, backslashes first."""
    text = f"CAST(to_json({sql}) AS VARCHAR)"
    escaped = sql
    for char, escape in _PYTHON_ESCAPES:
        escaped = f"replace({escaped}, {sql_literal(char)}, {sql_literal(escape)})"
    # DuckDB computes the repeated to_json once; contains() is cheaper than a regexp
    return (f"(CASE WHEN contains({text}, {sql_literal(ESCAPE_START)}) "
            f"THEN '\"' || {escaped} || '\"' ELSE {text} END)")


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
