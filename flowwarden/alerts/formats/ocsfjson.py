"""Findings as ``ocsf.finding_json`` writes them, rendered by DuckDB from the columns of
``ocsfquery.finding_sql``: keys sorted, null members left out (the query's nulls are where
``to_finding`` prunes), strings with Python's escapes (``duckdb_sql.json_string``)."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pyarrow as pa

from flowwarden.alerts.formats.jsonsql import iso_micros
from flowwarden.alerts.formats.ocsf import FINDING_SCHEMA
from flowwarden.alerts.formats.ocsfquery import RULE_JSON
from flowwarden.logic.render.duckdb_sql import json_string
from flowwarden.logic.render.sqltext import sql_literal

# Parts of the JSON text that need no rendering per alert: the rule's (``rule_parts``, written
# by Python once per rule) and constants; and lists that hold one item at most (no lambda).
JSON_TEXT = {f"finding_info.{name}": f"{name}_json" for name in RULE_JSON} | {
    "metadata.profiles": sql_literal(json.dumps(["cloud"]))}
SINGLE_ITEM = frozenset({"remediation.references"})


def _evidences_json() -> str:
    """The evidences' JSON text from the columns they are made of (``_finding_select``): no
    struct read back out of the list once per member."""
    kinds = {f.name: f.type for f in FINDING_SCHEMA.field("evidences").type.value_type}
    flow = _object([(name, _json(name, kinds[name], f"evidences[].{name}"))
                    for name in ("src_endpoint", "dst_endpoint", "connection_info")])
    data = _object([("data", json_string("evidence_data"))])
    return (f"CASE WHEN evidences IS NULL THEN NULL WHEN evidence_data IS NOT NULL "
            f"THEN '[' || {data} || ']' ELSE '[' || {flow} || ']' END")


def json_sql(inner: str) -> str:
    """Each finding of ``inner`` (``finding_sql``) as ``finding_json`` writes it, with its
    newline (NULL where exotic), beside ``inner``'s columns."""
    special = {"unmapped": _unmapped_json(), "evidences": _evidences_json()}
    members = [(field.name, special.get(field.name) or _json(field.name, field.type, field.name))
               for field in FINDING_SCHEMA]
    return (f"SELECT *, CASE WHEN NOT exotic THEN {_object(members)} || chr(10) END AS json "
            f"FROM ({inner})")


def _object(members: Iterable[tuple[str, str]]) -> str:
    """A JSON object of the members (``(key, JSON text or NULL)``) but the null ones, keys
    sorted: ``||`` makes a null member's entry null, which ``concat_ws`` leaves out, so each
    member's SQL appears once (nested twice per level, it would grow exponentially)."""
    parts = [f"{sql_literal(json.dumps(key) + ': ')} || {sql}" for key, sql in sorted(members)]
    return f"('{{' || concat_ws(', ', {', '.join(parts)}) || '}}')"


def _json(sql: str, kind: pa.DataType, path: str) -> str:
    """JSON text of ``sql`` of ``kind`` (at ``path`` in the finding), NULL for NULL (nulls
    inside are left out)."""
    if path in JSON_TEXT:
        return JSON_TEXT[path]
    if pa.types.is_struct(kind):
        members = [(f.name, _json(_member(sql, f.name), f.type, f"{path}.{f.name}"))
                   for f in kind]
        return f"CASE WHEN {sql} IS NOT NULL THEN {_object(members)} END"
    if pa.types.is_list(kind) and path in SINGLE_ITEM:
        return f"('[' || {_json(f'{sql}[1]', kind.value_type, path + '[]')} || ']')"
    if pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
        return (f"('[' || array_to_string(list_transform({sql}, lambda x: "
                f"coalesce({json_string('x')}, 'null')), ', ') || ']')")
    if pa.types.is_string(kind):
        return json_string(sql)
    if pa.types.is_integer(kind):
        return f"CAST({sql} AS VARCHAR)"
    raise TypeError(f"no JSON text for {path} ({kind})")


def _member(sql: str, name: str) -> str:
    return f"struct_extract({sql}, {sql_literal(name)})"


def _unmapped_json() -> str:
    window = iso_micros("window_us")
    return _object([
        ("alert_context", "pruned_context"), ("dedup", json_string("dedup")),
        ("window_start", window), ("threshold", "CAST(threshold AS VARCHAR)"),
        ("unique_count", "CAST(unique_count AS VARCHAR)"),
        ("log_types", "CASE WHEN log_types_json <> '[]' THEN log_types_json END"),
        ("destinations", "kept_destinations")])

