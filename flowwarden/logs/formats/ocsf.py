"""OCSF.NetworkActivity (class_uid 4001) from JSON lines or Parquet (Security Lake layout).

Nested objects stay nested struct columns, so ``dst_endpoint.ip`` resolves as a struct path.
Normalizations: ``"-"`` in an ip field becomes null (Security Lake preview output), and the
account id is filled in both shapes, ``cloud.account.uid`` (1.1.0) and ``cloud.account_uid``
(1.0.0-rc.2). Event time is ``time`` (epoch milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowwarden.logs import indicators as I
from flowwarden.logs.common import (
    Names,
    Projected,
    indices,
    kept_rows,
    projection,
    with_standard,
)
from flowwarden.logs.formats.base import BatchIter, FormatBase
from flowwarden.logs.jsonrows import merge_type
from flowwarden.logs.limits import (
    TIME_MAX_MS,
    outside,
    python_unsafe,
    range_reason,
    time_reason,
    valid_text,
)
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.parquet import RowRanges, complete_rows
from flowwarden.logs.parquet_rows import LateRows

LOG_TYPE = "OCSF.NetworkActivity"
CLASS_UID = 4001
ENDPOINTS = ("src_endpoint", "dst_endpoint")
TIMES = ("time", "start_time", "end_time")  # epoch milliseconds
RANGED = {
    ("src_endpoint", "port"): (0, 65535),
    ("dst_endpoint", "port"): (0, 65535),
    ("connection_info", "protocol_num"): (0, 255),
}
S, INT = pa.string(), pa.int64()
# Where OCSF Network Activity holds each indicator kind (``logs.indicators``), as struct paths.
# The account id has two shapes (1.1.0 nested, 1.0.0-rc.2 flat); the reader fills both, and
# the set holds it once.
INDICATOR_SOURCES: dict[str, tuple[tuple[str, ...], ...]] = {
    I.IP_ADDRESSES: tuple((end, child) for end in ENDPOINTS for child in ("ip", "intermediate_ips")),
    I.AWS_ACCOUNT_IDS: (("cloud", "account", "uid"), ("cloud", "account_uid")),
    I.AWS_INSTANCE_IDS: tuple((end, "instance_uid") for end in ENDPOINTS),
}
# The top-level columns the indicator fields are read from, for projected reads.
INDICATOR_COLUMNS: dict[str, frozenset[str]] = {
    name: frozenset(path[0] for path in paths) for name, paths in INDICATOR_SOURCES.items()
}
ENDPOINT = pa.struct(
    [
        ("ip", S),
        ("port", INT),
        ("hostname", S),
        ("domain", S),
        ("uid", S),
        ("name", S),
        ("interface_uid", S),
        ("interface_name", S),
        ("instance_uid", S),
        ("vpc_uid", S),
        ("subnet_uid", S),
        ("svc_name", S),
        ("zone", S),
        ("mac", S),
        ("type", S),
        ("type_id", INT),
        ("intermediate_ips", pa.list_(S)),
    ]
)
KNOWN: dict[str, pa.DataType] = {
    "class_uid": INT,
    "class_name": S,
    "category_uid": INT,
    "category_name": S,
    "activity_id": INT,
    "activity_name": S,
    "type_uid": INT,
    "type_name": S,
    "severity_id": INT,
    "severity": S,
    "time": INT,
    "start_time": INT,
    "end_time": INT,
    "message": S,
    "status": S,
    "status_id": INT,
    "status_code": S,
    "status_detail": S,
    "action": S,
    "action_id": INT,
    "disposition": S,
    "disposition_id": INT,
    "metadata": pa.struct(
        [
            ("version", S),
            ("uid", S),
            ("log_name", S),
            ("log_provider", S),
            (
                "product",
                pa.struct(
                    [
                        ("name", S),
                        ("vendor_name", S),
                        ("version", S),
                        ("feature", pa.struct([("name", S)])),
                    ]
                ),
            ),
            ("profiles", pa.list_(S)),
        ]
    ),
    "cloud": pa.struct(
        [
            ("provider", S),
            ("region", S),
            ("zone", S),
            ("account_uid", S),
            ("account", pa.struct([("uid", S), ("name", S), ("type", S)])),
        ]
    ),
    "src_endpoint": ENDPOINT,
    "dst_endpoint": ENDPOINT,
    "connection_info": pa.struct(
        [
            ("direction", S),
            ("direction_id", INT),
            ("protocol_num", INT),
            ("protocol_name", S),
            ("protocol_ver", S),
            ("protocol_ver_id", INT),
            ("tcp_flags", INT),
            ("boundary", S),
            ("boundary_id", INT),
            ("uid", S),
        ]
    ),
    "traffic": pa.struct(
        [
            ("bytes", INT),
            ("packets", INT),
            ("bytes_in", INT),
            ("bytes_out", INT),
            ("packets_in", INT),
            ("packets_out", INT),
        ]
    ),
}


def detect_json(obj: dict[str, Any]) -> bool:
    """Whether a JSON object is an OCSF Network Activity event."""
    return obj.get("class_uid") == CLASS_UID


def detect(schema: pa.Schema) -> bool:
    """Whether a Parquet schema holds OCSF events."""
    return "class_uid" in schema.names


def schema() -> pa.Schema:
    """The declared OCSF columns (inputs may add more; those are kept as inferred)."""
    return pa.schema(list(KNOWN.items()))


def normalize_row(row: dict[str, Any]) -> dict[str, Any]:
    """Null ``"-"`` ips and fill both account id shapes, in place; returns ``row``."""
    for name in ENDPOINTS:
        endpoint = row.get(name)
        if isinstance(endpoint, dict):
            if endpoint.get("ip") == "-":
                endpoint["ip"] = None
            ips = endpoint.get("intermediate_ips")
            if isinstance(ips, list):
                endpoint["intermediate_ips"] = [ip for ip in ips if ip != "-"]
    cloud = row.get("cloud")
    if isinstance(cloud, dict):
        account = cloud.get("account")
        if cloud.get("account_uid") is not None and not isinstance(account, dict):
            cloud["account"] = {"uid": cloud["account_uid"]}
        elif isinstance(account, dict) and cloud.get("account_uid") is None:
            cloud["account_uid"] = account.get("uid")
    return row


def finish(
    batch: pa.RecordBatch, source: str, keep: frozenset[str] | None = None,
    rows: int | None = None,
) -> pa.RecordBatch:
    """Add the standard columns: event time from ``time`` (ms) and the indicator fields.

    With a projection ``keep``, only those columns are built (``rows`` counts the rows when
    ``batch`` may have no columns).
    """
    rows = batch.num_rows if rows is None else rows
    event = None
    if keep is None or "p_event_time" in keep:
        event = pa.nulls(rows, pa.timestamp("ms", tz="UTC"))
        if "time" in batch.schema.names and pa.types.is_integer(batch.column("time").type):
            event = batch.column("time").cast(INT).cast(pa.timestamp("ms", tz="UTC"))
    sources = {name: _paths(batch, paths) for name, paths in INDICATOR_SOURCES.items()}
    return with_standard(batch, LOG_TYPE, source, event, I.build(sources, rows, keep), keep, rows)


def _paths(batch: pa.RecordBatch, paths: tuple[tuple[str, ...], ...]) -> list[pa.Array]:
    """The string (or list of string) values at each struct path the batch has."""
    found: list[pa.Array] = []
    for top, *rest in paths:
        if top not in batch.schema.names:
            continue
        values: pa.Array = batch.column(top)
        for child in rest:
            if not pa.types.is_struct(values.type) or values.type.get_field_index(child) < 0:
                break
            values = pc.struct_field(values, child)
        else:
            if _is_text(values.type):
                found.append(values)
    return found


def _is_text(type_: pa.DataType) -> bool:
    if pa.types.is_list(type_):
        type_ = type_.value_type
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def out_of_range(columns: Mapping[str, pa.Array]) -> dict[int, str]:
    """Rows holding a time outside 1970..9999, a port outside 0..65535 or a protocol outside
    0..255 (or, in any column, a time or date Python cannot hold), with the first reason.

    >>> out_of_range({"time": pa.array([1418530010000, 9300000000000000])})
    {1: 'time: 9300000000000000 is out of range (a time in 1970-01-01..9999-12-31)'}
    """
    reasons: dict[int, str] = {}
    for name in TIMES:
        col = columns.get(name)
        if col is not None and pa.types.is_integer(col.type):
            for index in indices(outside(col, 0, TIME_MAX_MS)):
                reasons.setdefault(index, time_reason(name, col[index].as_py()))
    for (parent, child), (low, high) in RANGED.items():
        col = columns.get(parent)
        if col is None or not pa.types.is_struct(col.type) or col.type.get_field_index(child) < 0:
            continue
        values = pc.struct_field(col, child)
        if not pa.types.is_integer(values.type):
            continue
        for index in indices(pc.and_(outside(values, low, high), col.is_valid())):
            reasons.setdefault(index, range_reason(f"{parent}.{child}", values[index].as_py(),
                                                   low, high))
    for name, col in columns.items():
        bad = python_unsafe(col)
        if bad is not None:
            for index in indices(bad):
                reasons.setdefault(index, f"{name}: holds a time outside 0001..9999")
    return reasons


def can_reject(field: pa.Field) -> bool:
    """Whether ``out_of_range`` may reject a row for a value of this Parquet column."""
    if field.name in TIMES or any(field.name == parent for parent, _ in RANGED):
        return True
    return python_unsafe(pa.array([], field.type)) is not None  # None: no value can be


def read_parquet_batches(
    file: pq.ParquetFile, source: str, options: ReadOptions, stats: FileStats
) -> Iterator[pa.RecordBatch | Projected]:
    """Stream OCSF Parquet (e.g. Security Lake) batches, conformed to the declared columns;
    rows with values out of range are rejected (numbered by their row in the file).

    A projected read decodes only the asked-for top-level columns (and the sources of asked-for
    ``p_`` columns, and every column a row can be rejected for), so the statistics are a full
    read's.
    """
    keep = projection(options)
    row = 0
    if keep is None:
        for raw in file.iter_batches(batch_size=options.batch_size):
            conformed = conform(raw)
            ok = _checked(conformed, row + 1, stats)
            row += raw.num_rows
            if ok is not None:
                conformed = conformed.filter(ok)
            if conformed.num_rows:
                yield finish(conformed, source)
        return
    names = file.schema_arrow.names
    wanted = Names([*keep, *(["time"] if "p_event_time" in keep else []),
                    *(c for name, cols in INDICATOR_COLUMNS.items() if name in keep for c in cols),
                    *(n for n in names if can_reject(file.schema_arrow.field(n)))])
    read = [n for n in names if n in wanted]
    rest = [n for n in names if n not in wanted]
    ranges = RowRanges(file, rest, options.batch_size, source) if rest else None
    again = LateRows.of(source, file.schema_arrow, names)
    for raw in file.iter_batches(batch_size=options.batch_size, columns=read):
        conformed = conform(raw, wanted)
        ok = _checked(conformed, row + 1, stats)
        rows = raw.num_rows
        if ok is not None:
            conformed = conformed.filter(ok)
            rows = conformed.num_rows
        complete = partial(_complete, raw, row, names, ranges, source, ok)
        late = None if again is None else partial(_late, again, row, source, ok)
        row += raw.num_rows
        if rows:
            yield Projected(finish(conformed, source, keep, rows), complete, late)


def _checked(batch: pa.RecordBatch, first_row: int, stats: FileStats) -> pa.Array | None:
    """Count ``batch``'s rows (file rows from ``first_row``); the mask of the good ones, or None
    when all are good."""
    reasons = out_of_range(dict(zip(batch.schema.names, batch.columns, strict=True)))
    for index, reason in sorted(reasons.items()):
        stats.reject(first_row + index, reason)
    stats.accept(batch.num_rows - len(reasons))
    if not reasons:
        return None
    return pa.array([i not in reasons for i in range(batch.num_rows)])


class OcsfParquet(FormatBase):
    """OCSF Parquet (a ``class_uid`` column); no column is read dictionary-encoded (struct
    children are cast). OCSF JSON lines are ``panther_json.OcsfJson``."""

    name = "ocsf-parquet"
    log_types = (LOG_TYPE,)

    def detect_parquet(self, schema: pa.Schema, options: ReadOptions) -> bool:
        return self.allows(options) and detect(schema)

    def read_parquet(self, file: pq.ParquetFile, source: str, options: ReadOptions,
                     stats: FileStats) -> BatchIter:
        return read_parquet_batches(file, source, options, stats)


FORMAT = OcsfParquet()


def _complete(raw: pa.RecordBatch, first: int, names: list[str], ranges: RowRanges | None,
              source: str, ok: pa.Array | None, positions: pa.Array) -> pa.RecordBatch:
    """The complete records at ``positions`` of a projected batch (of its good rows ``ok``),
    as a full read builds them."""
    return finish(conform(complete_rows(raw, first, kept_rows(ok, positions), names, ranges)),
                  source)


def _late(again: LateRows, first: int, source: str, ok: pa.Array | None,
          positions: pa.Array) -> pa.RecordBatch:
    """``_complete``'s records, every column read again from the file (``LogBatch.late``)."""
    return finish(conform(again.batch(first, ok, positions)), source)


def conform(raw: pa.RecordBatch, keep: frozenset[str] | None = None) -> pa.RecordBatch:
    """Declared columns first, cast by name (widened with any extra struct fields), then the
    rest; ``"-"`` ips nulled and both account id shapes filled, as for JSON input.

    With a projection ``keep``, only those columns are built.
    """
    raw = pa.RecordBatch.from_arrays([valid_text(c) for c in raw.columns], schema=raw.schema)
    columns: dict[str, pa.Array] = {}
    for name, type_ in KNOWN.items():
        if keep is not None and name not in keep:
            continue
        if name not in raw.schema.names:
            columns[name] = pa.nulls(raw.num_rows, type_)
            continue
        col = raw.column(name)
        try:
            columns[name] = col.cast(merge_type(type_, col.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            columns[name] = col
    for name in raw.schema.names:
        if keep is None or name in keep:
            columns.setdefault(name, raw.column(name))
    for name in ENDPOINTS:
        if name in columns and pa.types.is_struct(columns[name].type):
            columns[name] = _replace_child(columns[name], "ip", _null_dash)
    if "cloud" in columns and _is_known_cloud(columns["cloud"].type):
        columns["cloud"] = _fill_accounts(columns["cloud"])
    return pa.RecordBatch.from_pydict(columns)


def _null_dash(ip: pa.Array) -> pa.Array:
    return pc.if_else(pc.fill_null(pc.equal(ip, "-"), False), pa.scalar(None, ip.type), ip)


def _is_known_cloud(type_: pa.DataType) -> bool:
    if not pa.types.is_struct(type_) or type_.get_field_index("account_uid") < 0:
        return False
    index = type_.get_field_index("account")
    account = type_.field(index).type if index >= 0 else None
    return (
        account is not None and pa.types.is_struct(account) and account.get_field_index("uid") >= 0
    )


def _replace_child(
    col: pa.StructArray, name: str, fn: Callable[[pa.Array], pa.Array]
) -> pa.StructArray:
    if col.type.get_field_index(name) < 0:
        return col
    fields = [col.type.field(i) for i in range(col.type.num_fields)]
    children = [
        fn(pc.struct_field(col, f.name)) if f.name == name else pc.struct_field(col, f.name)
        for f in fields
    ]
    return pa.StructArray.from_arrays(children, fields=fields, mask=col.is_null())


def _fill_accounts(cloud: pa.StructArray) -> pa.StructArray:
    account = pc.struct_field(cloud, "account")
    flat = pc.coalesce(pc.struct_field(cloud, "account_uid"), pc.struct_field(account, "uid"))
    mask = pc.and_(account.is_null(), flat.is_null())
    fields = [account.type.field(i) for i in range(account.type.num_fields)]
    kids = [flat if f.name == "uid" else pc.struct_field(account, f.name) for f in fields]
    filled = pa.StructArray.from_arrays(kids, fields=fields, mask=mask)
    cloud = _replace_child(cloud, "account_uid", lambda _: flat)
    return _replace_child(cloud, "account", lambda _: filled)
