"""Hypothesis strategies for batches whose fields hold every value type the readers produce.

A batch fixes one Arrow type per field (so ``pa.Table.from_pylist`` gets one schema): usually
the reader's own type for that field ("canonical"), else any of str, int, bool, timestamps in
seconds, milliseconds and microseconds (UTC), float or all-null. Strings include unicode,
quotes, backslashes, control characters and very long strings; datetimes come with and without
microseconds, over years 1-9999; fields and struct parents are None or left out at random.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from tests.logic.test_render_duckdb import NASTY

TYPES: dict[str, pa.DataType] = {
    "str": pa.string(), "int": pa.int64(), "bool": pa.bool_(),
    "ts_s": pa.timestamp("s", tz="UTC"), "ts_ms": pa.timestamp("ms", tz="UTC"),
    "ts_us": pa.timestamp("us", tz="UTC"), "float": pa.float64(), "null": pa.null(),
}
STRINGS = [*NASTY, "10.0.0.1", "eni-1", "ACCEPT", "x" * 5000, "ü'\\\"" * 1500, "a" * 999 + "é"]
INTS = [0, 1, -1, 2, 22, 53, 443, 2**31, 2**63 - 1, -(2**63)]
TIMES = [datetime(2024, 5, 1, 12, 0, tzinfo=UTC), datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=UTC),
         datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
         datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), datetime(999, 1, 2, tzinfo=UTC)]
MISSING = object()


def _time(unit: str) -> st.SearchStrategy[datetime]:
    any_time = st.one_of(st.sampled_from(TIMES), st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
        timezones=st.just(UTC)))
    step = {"ts_s": 1_000_000, "ts_ms": 1000, "ts_us": 1}[unit]
    return any_time.map(lambda t: t.replace(microsecond=t.microsecond // step * step))


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "str": st.one_of(st.sampled_from(STRINGS), st.text(max_size=12)),
    "int": st.one_of(st.sampled_from(INTS), st.integers(-5, 70000)),
    "bool": st.booleans(),
    "ts_s": _time("ts_s"), "ts_ms": _time("ts_ms"), "ts_us": _time("ts_us"),
    "float": st.floats(allow_nan=False), "null": st.none(),
}

# The readers' own types of the fields the alert functions read.
TEXT, NUMBER, TIME = "str", "int", "ts_s"
VPCFLOW: dict[tuple[str, ...], str] = {
    **{(k,): TEXT for k in ("srcAddr", "dstAddr", "action", "account", "region", "interfaceId",
                         "vpcId", "status", "flowDirection", "pktSrcAddr", "pktDstAddr")},
    **{(k,): NUMBER for k in ("srcPort", "dstPort", "protocol", "bytes", "packets", "tcpFlags")},
    ("start",): TIME, ("end",): TIME,
}
OCSF: dict[tuple[str, ...], str] = {
    **{(e, k): TEXT for e in ("src_endpoint", "dst_endpoint") for k in ("ip", "interface_uid", "vpc_uid")},
    ("src_endpoint", "port"): NUMBER, ("dst_endpoint", "port"): NUMBER,
    **{("connection_info", k): NUMBER for k in ("protocol_num", "tcp_flags", "direction_id")},
    ("cloud", "region"): TEXT, ("cloud", "account", "uid"): TEXT, ("cloud", "account_uid"): TEXT,
    ("traffic", "bytes"): NUMBER, ("traffic", "packets"): NUMBER, ("start_time",): NUMBER, ("end_time",): NUMBER,
    ("status_code",): TEXT, ("action",): TEXT,
}
# The synthetic rules' fields (tests/logic/fixtures/alert_rules).
SYNTHETIC: dict[tuple[str, ...], str] = {
    ("s",): TEXT, ("i",): NUMBER, ("b",): "bool", ("t",): "ts_us", ("n",): "null", ("o", "x"): TEXT,
    ("f",): "float",
}


def _schema(kinds: dict[tuple[str, ...], str]) -> pa.Schema:
    tree: dict[str, Any] = {}
    for path, kind in kinds.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = TYPES[kind]

    def fields(node: dict[str, Any]) -> list[pa.Field]:
        return [pa.field(k, pa.struct(fields(v)) if isinstance(v, dict) else v)
                for k, v in node.items()]

    return pa.schema(fields(tree))


def _row(draw: st.DrawFn, schema: pa.Schema | pa.StructType, kinds: dict[tuple[str, ...], str],
         prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for field in schema:
        path = (*prefix, field.name)
        if pa.types.is_struct(field.type):
            value: Any = draw(st.sampled_from([None, MISSING, "struct", "struct", "struct"]))
            if value == "struct":
                value = _row(draw, field.type, kinds, path)
        else:
            value = draw(st.one_of(VALUES[kinds[path]], VALUES[kinds[path]], VALUES[kinds[path]],
                                   st.none(), st.just(MISSING)))
        if value is not MISSING:
            row[field.name] = value
    return row


@st.composite
def batches(draw: st.DrawFn, spec: dict[tuple[str, ...], str], log_type: str | None
            ) -> tuple[pa.Table, bool]:
    """(table, canonical): rows of ``spec``'s fields; ``canonical`` when every field has the
    reader's type (timestamps in any unit), as the readers produce them."""
    canonical = draw(st.integers(0, 2)) > 0
    kinds: dict[tuple[str, ...], str] = {}
    for path, kind in spec.items():
        if canonical:
            kinds[path] = draw(st.sampled_from(["ts_s", "ts_ms", "ts_us"])) if kind == TIME else kind
        elif draw(st.integers(0, 9)) > 0:
            kinds[path] = kind if draw(st.booleans()) else draw(st.sampled_from(sorted(TYPES)))
    schema = _schema(kinds)
    rows = [_row(draw, schema, kinds) for _ in range(draw(st.integers(1, 5)))]
    if log_type is not None:
        schema = schema.append(pa.field("p_log_type", pa.string()))
        rows = [{**row, "p_log_type": log_type} for row in rows]
    return pa.Table.from_pylist(rows, schema=schema), canonical
