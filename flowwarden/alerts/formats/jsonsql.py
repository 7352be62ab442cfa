"""Records as alert JSON, written by DuckDB: what ``jsonl.alert_json`` writes of a sample.

A sample is ``compact(record)`` (null fields left out, at every depth) written by
``json.dumps(jsonable(...), sort_keys=True, ensure_ascii=False)``. ``record_json`` renders one
SQL expression per Arrow schema that gives exactly that text for each row, so that samples
never become Python objects: keys sorted in Python (code point order) when the query is built,
strings through ``duckdb_sql.json_string``, floats as ``repr`` (DuckDB's shortest round-trip
text equals it, ``Infinity``/``NaN`` aside), timestamps as ``isoformat()``. A type whose text
could differ (decimals, maps, non-UTC zones, nanoseconds, unions) makes the schema
unsupported: ``record_json`` returns None and the caller keeps the Python path.
``tests/alerts/test_jsonsql.py`` compares both on hypothesis tables.
"""

from __future__ import annotations

import json

import pyarrow as pa

from flowwarden.errors import RenderError
from flowwarden.logic.render.duckdb_sql import ESCAPE_START, time_text
from flowwarden.logic.render.sqltext import quote_identifier, sql_literal

UTC_ZONES = frozenset({"UTC", "utc", "+00:00", "Etc/UTC", "Z"})
_MIN_MICROS, _MAX_MICROS = -62135596800000000, 253402300799999999  # datetime.min/max


class Unsupported(Exception):
    """An Arrow type whose JSON text SQL does not reproduce."""


def record_json(schema: pa.Schema, source: str, key: str | None = None) -> str | None:
    """A DuckDB query of one column ``j``, each row of ``source`` (a table or view with
    ``schema``) as sample JSON, or NULL where Python must write it; None where the schema is
    unsupported. With ``key`` (a column of ``source`` that is not a field), that column first.

    Strings are written by ``to_json``, which differs from Python's json only in the case of
    ``\\u00XX`` escapes: a record whose text holds such an escape is left to Python (NULL), so
    the expression stays small (one ``to_json`` per string, not a chain of replacements)."""
    try:
        members = [(f.name, quote_identifier(f.name), f.type) for f in schema]
        text = _object(members)
    except (Unsupported, RenderError):  # a name SQL cannot quote (NUL)
        return None
    escape = sql_literal(ESCAPE_START)
    keyed = "" if key is None else f"{quote_identifier(key)}, "
    return (f"SELECT {keyed}CASE WHEN contains(j, {escape}) THEN NULL ELSE j END AS j "
            f"FROM (SELECT {keyed}{text} AS j FROM {source})")


def _object(members: list[tuple[str, str, pa.DataType]], depth: int = 0) -> str:
    """A JSON object of the non-null members, keys sorted: ``'{' || entries || '}'``."""
    names = {name.lower() for name, _, _ in members}
    if len(names) != len(members):  # DuckDB's names are case-insensitive: one would hide another
        raise Unsupported("field names equal but for case")
    entries = []
    for name, sql, kind in sorted(members, key=lambda m: m[0]):
        key = sql_literal(json.dumps(name, ensure_ascii=False) + ": ")
        entries.append(f"CASE WHEN {sql} IS NULL THEN NULL ELSE {key} || {_value(sql, kind, depth)} END")
    if not entries:
        return "'{}'"
    return f"('{{' || concat_ws(', ', {', '.join(entries)}) || '}}')"


def _value(sql: str, kind: pa.DataType, depth: int = 0) -> str:
    """JSON text of a non-null value of ``kind`` (a null inside a list is written ``null``)."""
    if pa.types.is_null(kind):
        return "'null'"
    if pa.types.is_dictionary(kind):
        return _value(f"CAST({sql} AS VARCHAR)", kind.value_type, depth)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return f"CAST(to_json({sql}) AS VARCHAR)"  # exact but for escapes (``record_json``)
    if pa.types.is_boolean(kind):
        return f"(CASE WHEN {sql} THEN 'true' ELSE 'false' END)"
    if pa.types.is_integer(kind):
        return f"CAST({sql} AS VARCHAR)"
    if pa.types.is_float32(kind) or pa.types.is_float64(kind):
        double = f"CAST({sql} AS DOUBLE)"
        return (f"(CASE WHEN isnan({double}) THEN 'NaN' WHEN {double} = 'inf'::DOUBLE "
                f"THEN 'Infinity' WHEN {double} = '-inf'::DOUBLE THEN '-Infinity' "
                f"ELSE CAST({double} AS VARCHAR) END)")
    if pa.types.is_timestamp(kind):
        return _timestamp(sql, kind)
    if pa.types.is_date32(kind) or pa.types.is_date64(kind):
        return f"('\"' || strftime(CAST({sql} AS DATE), '%Y-%m-%d') || '\"')"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return f"('\"' || to_base64(CAST({sql} AS BLOB)) || '\"')"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        name = f"item{depth}"  # nested lambdas each get their own name
        inner = _value(name, kind.value_type, depth + 1)
        item = f"CASE WHEN {name} IS NULL THEN 'null' ELSE {inner} END"
        texts = f"list_transform({sql}, lambda {name}: {item})"
        return f"('[' || array_to_string({texts}, ', ') || ']')"
    if pa.types.is_struct(kind):
        return _object([(f.name, f"struct_extract({sql}, {sql_literal(f.name)})", f.type)
                        for f in kind], depth)
    raise Unsupported(str(kind))


def _timestamp(sql: str, kind: pa.TimestampType) -> str:
    """``isoformat()`` of the datetime ``to_pylist`` gives: UTC zones as ``+00:00``, naive
    without an offset, microseconds only when there are any."""
    if kind.unit == "ns" or (kind.tz is not None and kind.tz not in UTC_ZONES):
        raise Unsupported(str(kind))
    micros = f"epoch_us({sql})"
    # outside datetime's years to_pylist raises: no JSON to match, so no row is written
    return (f"(CASE WHEN {micros} BETWEEN {_MIN_MICROS} AND {_MAX_MICROS} "
            f"THEN {iso_micros(micros, kind.tz is not None)} END)")


def iso_micros(micros: str, aware: bool = True, quoted: bool = True) -> str:
    """JSON text (or, not ``quoted``, the text) of ``isoformat()`` of the UTC datetime
    ``micros`` (BIGINT epoch microseconds): ``+00:00`` when ``aware``, a fraction only when
    there is one."""
    return time_text(micros, "T", "+00:00" if aware else "", '"' if quoted else "")
