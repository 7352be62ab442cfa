"""Python's value semantics as DuckDB SQL over JSON values, for queries that must give what
Python code gives for the same alert (``ocsfquery``): a JSON value is a ``JSON`` column, NULL
where the key is absent; the functions here return SQL text.

Also the SQL pieces such queries share: a struct of a fixed Arrow type, an optimization barrier,
epoch milliseconds, and ``is_ip`` (IPv4 by regular expression, anything with a colon by Python's
``ipaddress`` once per distinct value, through the ``IS_IP`` function ``add_is_ip`` adds).
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.func import PythonUDFType

from flowwarden.logic.render.sqltext import quote_identifier, sql_literal

IS_IP = "flowwarden_is_ip"  # the UDF's name on the query's connection
INT32 = (-(2 ** 31), 2 ** 31 - 1)
IPV4_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = f"{IPV4_OCTET}(\\.{IPV4_OCTET}){{3}}"  # ipaddress's strict dotted quad, no leading zeros
INTS = "('BIGINT', 'UBIGINT')"

def json_kind(v: str) -> str:
    return f"coalesce(json_type({v}), 'NULL')"


def kind_in(v: str, *kinds: str) -> str:
    return f"({json_kind(v)} IN ({', '.join(sql_literal(k) for k in ('NULL', *kinds))}))"


def string_of(v: str) -> str:
    return f"({v} ->> '$')"


def py_text(v: str) -> str:
    """``ocsf._text``: a string but ``""`` and ``-``, an integer's digits; else NULL."""
    return (f"(CASE {json_kind(v)} WHEN 'VARCHAR' THEN nullif(nullif({string_of(v)}, ''), '-') "
            f"WHEN 'BIGINT' THEN {string_of(v)} WHEN 'UBIGINT' THEN {string_of(v)} END)")


TEXT_KINDS = ("VARCHAR", "BIGINT", "UBIGINT")


def truthy_text(v: str) -> str:
    """``str(v) if v``: a non-empty string, a non-zero integer's digits."""
    return (f"(CASE {json_kind(v)} WHEN 'VARCHAR' THEN nullif({string_of(v)}, '') "
            f"WHEN 'BIGINT' THEN nullif({string_of(v)}, '0') "
            f"WHEN 'UBIGINT' THEN nullif({string_of(v)}, '0') END)")


def py_int(v: str) -> str:
    """``ocsf._int`` of a JSON integer (HUGEINT); booleans and absence are NULL."""
    return f"(CASE WHEN {json_kind(v)} IN {INTS} THEN CAST({string_of(v)} AS HUGEINT) END)"


def int32(value: str) -> str:
    return f"(CASE WHEN {value} BETWEEN {INT32[0]} AND {INT32[1]} THEN CAST({value} AS INTEGER) END)"


def outside_int32(value: str) -> str:
    return f"coalesce({value} NOT BETWEEN {INT32[0]} AND {INT32[1]}, false)"


def is_ip(text: str) -> str:
    """Whether ``ipaddress.ip_address(text)`` accepts it (false for NULL)."""
    return (f"coalesce(CASE WHEN contains({text}, ':') THEN {IS_IP}({text}) "
            f"ELSE regexp_full_match({text}, {sql_literal(IPV4)}) END, false)")


def is_ascii(text: str) -> str:
    return f"coalesce(strlen({text}) = length({text}), true)"


def struct_sql(kinds: dict[str, pa.DataType], values: dict[str, str]) -> str:
    """``struct_pack`` of ``kinds`` in order, the members not in ``values`` NULL."""
    members = []
    for name, kind in kinds.items():
        members.append(f"{quote_identifier(name)} := CAST({values.get(name, 'NULL')} AS "
                       f"{sql_type(kind)})")
    return f"struct_pack({', '.join(members)})"


def sql_type(kind: pa.DataType) -> str:
    if pa.types.is_map(kind):
        return "MAP(VARCHAR, VARCHAR)"
    if pa.types.is_list(kind):
        return sql_type(kind.value_type) + "[]"
    if pa.types.is_struct(kind):
        return "STRUCT(" + ", ".join(f"{quote_identifier(f.name)} {sql_type(f.type)}"
                                     for f in kind) + ")"
    return {pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.int64(): "BIGINT"}[kind]


def barrier(sql: str) -> str:
    """``sql``, computed once where it stands: DuckDB copies a subquery's expression into each
    use above it (a parsed sample once per field read of it, a struct once per member the JSON
    text reads), but never a volatile one."""
    return f"(CASE WHEN random() < 2 THEN {sql} END)"


def epoch_ms_sql(micros: str) -> str:
    """Epoch milliseconds, floored (``ocsf.epoch_ms``)."""
    return f"(({micros} - ((({micros}) % 1000) + 1000) % 1000) // 1000)"


def pack(**members: str) -> str:
    """``struct_pack`` of ``members`` in order (names quoted: ``desc`` is a keyword)."""
    return "struct_pack(" + ", ".join(f"{quote_identifier(name)} := {sql}"
                                      for name, sql in members.items()) + ")"


def struct_of(kind: pa.StructType, values: dict[str, str]) -> str:
    return struct_sql({f.name: f.type for f in kind}, values)


def add_is_ip(con: duckdb.DuckDBPyConnection) -> None:
    """``IS_IP`` on ``con``'s database (once: its cursors share it): ``ipaddress.ip_address``
    once per distinct value of a chunk."""
    if con.execute("SELECT 1 FROM duckdb_functions() WHERE function_name = ?",
                   [IS_IP]).fetchall():
        return
    con.create_function(IS_IP, _is_ip_column, ["VARCHAR"], "BOOLEAN",
                        type=PythonUDFType.ARROW, side_effects=False)


def _is_ip_column(values: Any) -> pa.Array:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    distinct = pc.unique(values)
    verdicts = pa.array([_is_ip(v) for v in distinct.to_pylist()], pa.bool_())
    return verdicts.take(pc.index_in(values, value_set=distinct))


@cache
def _is_ip(text: str | None) -> bool | None:
    if text is None:
        return None
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
