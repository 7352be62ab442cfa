"""AWS.VPCFlow from Parquet: AWS's snake_case columns (or Panther's camelCase) to Panther's schema.

Tolerates producers that wrote other types: numbers as strings, int64 account ids, and the
strings ``"None"`` or ``"-"`` for null (flowlogs-reader's fixture). Streams by ``iter_batches``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowwarden.logs import fields as F
from flowwarden.logs.common import indices
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.vpcflow_text import MAX_DIGITS, seconds, to_batch

LOG_TYPE = F.LOG_TYPE
NULL_STRINGS = pa.array(["-", "None", ""])
MIN_KNOWN_COLUMNS = 3


def column_field(name: str) -> F.Field:
    """The flow log field a Parquet column holds (AWS snake_case, Panther camelCase, or new)."""
    return F.BY_SNAKE.get(name) or F.BY_PANTHER.get(name) or F.field_for(name)


def detect(schema: pa.Schema) -> bool:
    """Whether a Parquet schema holds flow log columns."""
    names = set(schema.names)
    if "class_uid" in names:
        return False
    known = [n for n in names if n in F.BY_SNAKE or n in F.BY_PANTHER]
    return len(known) >= MIN_KNOWN_COLUMNS


def schema(parquet_schema: pa.Schema) -> pa.Schema:
    """The batch columns for a file with ``parquet_schema`` (without the p_ columns)."""
    return F.schema(_unknown(parquet_schema))


def read_batches(
    file: pq.ParquetFile, source: str, options: ReadOptions, stats: FileStats
) -> Iterator[pa.RecordBatch]:
    """Stream a Parquet flow log as Panther-named batches, a slice of row groups at a time."""
    extra = _unknown(file.schema_arrow)
    row = 0
    for raw in file.iter_batches(batch_size=options.batch_size):
        batch = convert(raw, row + 1, extra, source, stats)
        row += raw.num_rows
        if batch is not None and batch.num_rows:
            yield batch


def convert(
    raw: pa.RecordBatch,
    first_row: int,
    extra: tuple[F.Field, ...],
    source: str,
    stats: FileStats,
) -> pa.RecordBatch | None:
    """Coerce one batch of raw columns; rows with uncastable values become rejections."""
    ok = pa.repeat(pa.scalar(True), raw.num_rows)
    typed: dict[str, pa.Array] = {}
    reasons: dict[int, str] = {}
    known = {f.panther: f for f in extra}
    for name in raw.schema.names:
        if name.startswith("p_"):
            continue
        f = column_field(name)
        f = known.get(f.panther, f)
        col = raw.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        value, bad = _coerce(col, f)
        for index in indices(pc.and_(ok, bad)):
            reasons[index] = f"{f.panther} ({name}): cannot read {col[index].as_py()!r}"
        ok = pc.and_(ok, pc.invert(bad))
        typed[f.panther] = value
    for index, reason in sorted(reasons.items()):
        stats.reject(first_row + index, reason)
    rows = raw.num_rows - len(reasons)
    stats.accept(rows)
    if rows == 0:
        return None
    fields = tuple(column_field(n) for n in typed)
    typed = {k: v.filter(ok) for k, v in typed.items()}
    return to_batch(typed, rows, (*fields, *extra), source)


def _coerce(col: pa.Array, f: F.Field) -> tuple[pa.Array, pa.Array]:
    """(value cast to the field's type, mask of values that could not be cast)."""
    no = pa.repeat(pa.scalar(False), len(col))
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if f.type == F.STR or f.version == 0:
        if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
            return col.cast(pa.string()), no
        return _null_strings(col.cast(pa.string())), no
    if pa.types.is_timestamp(col.type):
        return col.cast(pa.timestamp("s", tz=col.type.tz or "UTC")).cast(F.TIME), no
    if pa.types.is_integer(col.type):
        ints = col.cast(F.INT)
        return (seconds(ints) if f.type == F.TIME else ints), no
    if pa.types.is_floating(col.type):
        ints = col.cast(F.INT, safe=False)
        return (seconds(ints) if f.type == F.TIME else ints), no
    text = _null_strings(col.cast(pa.string()))
    fine = pc.and_(pc.utf8_is_digit(text), pc.less_equal(pc.utf8_length(text), MAX_DIGITS))
    bad = pc.and_(text.is_valid(), pc.invert(pc.fill_null(fine, False)))
    clean = pc.if_else(bad, pa.scalar(None, pa.string()), text).cast(F.INT)
    return (seconds(clean) if f.type == F.TIME else clean), bad


def _null_strings(col: pa.Array) -> pa.Array:
    nulls = pc.fill_null(pc.is_in(col, NULL_STRINGS), False)
    return pc.if_else(nulls, pa.scalar(None, pa.string()), col)


def _unknown(parquet_schema: pa.Schema) -> tuple[F.Field, ...]:
    out = []
    for name in parquet_schema.names:
        f = column_field(name)
        if f.version == 0 and not name.startswith("p_"):
            out.append(F.Field(f.aws, f.panther, parquet_schema.field(name).type, 0))
    return tuple(out)
