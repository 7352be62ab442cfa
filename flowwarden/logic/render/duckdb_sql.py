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

# DuckDB's to_json escapes control characters as Python's json does (ensure_ascii=False), but
# with upper-case hex letters (\u000B where Python writes \u000b): these nine differ (both write
# \b, \t, \n, \f and \r short).
_SHORT = frozenset({0x08, 0x09, 0x0A, 0x0C, 0x0D})
_UPPER_ESCAPES = tuple(f"\\u{code:04X}" for code in range(0x20)
                       if code not in _SHORT and f"{code:04X}" != f"{code:04x}")
ESCAPE_START = "\\u00"  # how to_json's escapes of control characters begin


def json_string(sql: str) -> str:
    """JSON text of a non-null VARCHAR exactly as ``json.dumps(text, ensure_ascii=False)``
    writes it: DuckDB's ``to_json``, with the hex letters of its ``\\u00XX`` escapes lower-cased
    where it wrote any.

    The escaped backslashes (``\\\\``) are set aside as NUL (which ``to_json`` never leaves raw)
    while the escapes are rewritten, so a text that spells out ``\\u000B`` stays as it is. A
    short expression on purpose: DuckDB plans every call of it, and a long one (a ``replace``
    per control character) cost milliseconds per query."""
    text = f"CAST(to_json({sql}) AS VARCHAR)"
    fixed = f"replace({text}, {sql_literal(chr(92) * 2)}, chr(0))"
    for upper in _UPPER_ESCAPES:
        fixed = f"replace({fixed}, {sql_literal(upper)}, {sql_literal(upper.lower())})"
    fixed = f"replace({fixed}, chr(0), {sql_literal(chr(92) * 2)})"
    # DuckDB computes the repeated to_json once; contains() is cheaper than a regexp
    return (f"(CASE WHEN contains({text}, {sql_literal(ESCAPE_START)}) THEN {fixed} "
            f"ELSE {text} END)")


def json_quick(sql: str) -> tuple[str, str]:
    """``to_json``'s text of a non-null VARCHAR, and where it wrote an escape of a control
    character (which ``json_string`` would have to rewrite): alert functions leave those rare
    values to Python rather than plan ``json_string`` for each of their strings."""
    text = f"CAST(to_json({sql}) AS VARCHAR)"
    return text, f"contains({text}, {sql_literal(ESCAPE_START)})"


def epoch_micros(sql: str) -> str:
    """Epoch microseconds of a TIMESTAMP WITH TIME ZONE (independent of the session time zone)."""
    return f"epoch_us({sql})"


def time_text(micros: str, sep: str = "T", zone: str = "+00:00", quote: str = "") -> str:
    """``isoformat()`` (``sep`` "T") or ``str()`` (``sep`` " ") of the UTC datetime of epoch
    microseconds (in years 1-9999), ``zone`` after it and ``quote`` around it: one ``strftime``
    whose format holds all of it but the choice of fraction (six digits, where there is one).
    A third of the cost of joining the text from parts, and an alert line holds nine."""
    whole, fraction = (sql_literal(f"{quote}%Y-%m-%d{sep}%H:%M:%S{part}{zone}{quote}")
                       for part in ("", ".%f"))
    stamp = f"make_timestamp({micros})"
    return (f"(CASE WHEN ({micros}) % 1000000 = 0 THEN strftime({stamp}, {whole}) "
            f"ELSE strftime({stamp}, {fraction}) END)")


DUCKDB = Dialect("duckdb", sql_literal, quote_identifier, "{kind}{index}:{path}",
                 json_string=json_string, json_quick=json_quick, micros=epoch_micros, time_text=time_text,
                 starts_with=lambda s, p: f"starts_with({s}, {p})",
                 ends_with=lambda s, p: f"ends_with({s}, {p})",
                 byte_length=lambda s: f"strlen({s})")


class DuckDBRenderer(SqlRenderer):
    """Renders conditions to DuckDB SQL over the columns of one Arrow batch."""

    NAME: ClassVar[str] = "duckdb"
    DIALECT: ClassVar[Dialect | None] = DUCKDB
