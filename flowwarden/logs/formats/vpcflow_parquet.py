"""AWS.VPCFlow from Parquet: AWS's snake_case columns (or Panther's camelCase) to Panther's schema.

Tolerates producers that wrote other types: numbers as strings, int64 account ids, and the
strings ``"None"`` or ``"-"`` for null (flowlogs-reader's fixture). Streams by ``iter_batches``.
The Spark engine converts the batches Spark reads with the same code (``coerce_batch``), and
hands files whose conversion can fail (``can_fail``) to this reader whole.

Projected reads (``ReadOptions.columns``), and why their statistics are exactly a full read's:
a record is rejected only when one of its values cannot be converted, and what a column's
conversion can do depends on its Parquet type alone (``conversion``): nothing bad (INERT: the
AWS types), reject rows (REJECTS: numbers written as text, numbers that may be out of range
unless the row group statistics show they are not), or need value-by-value work (FAILS: binary,
nested or other values Arrow cannot always cast; the rows that cannot be read are rejected).
Phase 1 therefore decodes the asked-for columns plus every REJECTS column, in file order, and
rejects the same rows with the same first reason a full read gives; INERT columns cannot change
that, so they are left to phase 2, which converts them for chosen rows only
(``LogBatch.full_rows``). A file with a FAILS column is read in full. Batches are cut every
``batch_size`` rows as in a full read (Parquet ends dictionary-encoded batches at row groups;
``coalesced`` joins them again). What phase 1 never decodes cannot be checked: corrupt bytes in
such a column surface only if phase 2 reads them (see ``flowwarden.logs.parquet``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowwarden.logs import fields as F
from flowwarden.logs.common import Names, Projected, indices, kept_rows, projection
from flowwarden.logs.formats.base import BatchIter, FormatBase
from flowwarden.logs.formats.parquet_values import (
    coerce,
    null_dictionary,
    out_of_range_reason,
    raw_range,
    shown_values,
    unreadable_reason,
)
from flowwarden.logs.formats.vpcflow_text import INDICATOR_SOURCES, to_batch
from flowwarden.logs.limits import (
    python_unsafe,
    valid_text,
)
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.parquet import RowRanges, coalesced, complete_rows, locked
from flowwarden.logs.parquet_rows import LateRows
from flowwarden.util.iterables import ahead

LOG_TYPE = F.LOG_TYPE
MIN_KNOWN_COLUMNS = 3
# The source columns of the computed p_ columns.
STANDARD_SOURCES = {"p_event_time": ("start", "end"), **INDICATOR_SOURCES}
INERT, REJECTS, FAILS = "inert", "rejects", "fails"


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


def read_batches(
    file: pq.ParquetFile, source: str, options: ReadOptions, stats: FileStats
) -> Iterator[pa.RecordBatch | Projected]:
    """Stream a Parquet flow log as Panther-named batches, a slice of row groups at a time."""
    extra = _unknown(file.schema_arrow)
    plan = _plan(file.schema_arrow, extra, projection(options), file.metadata)
    if plan is not None:
        yield from _read_projected(file, plan, source, options, stats)
        return
    row = 0
    for raw in file.iter_batches(batch_size=options.batch_size):
        batch = convert(raw, row + 1, extra, source, stats)
        row += raw.num_rows
        if batch is not None and batch.num_rows:
            yield batch


class VpcFlowParquet(FormatBase):
    """Flow log Parquet: at least ``MIN_KNOWN_COLUMNS`` flow log columns and no ``class_uid``."""

    name = "vpcflow-parquet"
    log_types = (LOG_TYPE,)

    def detect_parquet(self, schema: pa.Schema, options: ReadOptions) -> bool:
        return self.allows(options) and detect(schema)

    def read_parquet(self, file: pq.ParquetFile, source: str, options: ReadOptions,
                     stats: FileStats) -> BatchIter:
        return read_batches(file, source, options, stats)

    def dictionary_columns(self, schema: pa.Schema, options: ReadOptions) -> list[str]:
        """The string columns a projected read takes dictionary-encoded (distinct values come
        free from Parquet's dictionary pages), or none for a full read."""
        plan = _plan(schema, _unknown(schema), projection(options))
        if plan is None:
            return []
        return [n for n in plan.read if _is_text(schema.field(n).type)
                and column_field(n).type == F.STR and column_field(n).version > 0]


FORMAT = VpcFlowParquet()


def convert(
    raw: pa.RecordBatch,
    first_row: int,
    extra: tuple[F.Field, ...],
    source: str,
    stats: FileStats,
) -> pa.RecordBatch | None:
    """Coerce one batch of raw columns; rows with uncastable values become rejections."""
    batch, _ = coerce_batch(raw, source, extra, stats, first_row)
    return batch if batch.num_rows else None


def coerce_batch(
    raw: pa.RecordBatch,
    source: str,
    extra: tuple[F.Field, ...] | None = None,
    stats: FileStats | None = None,
    first_row: int = 1,
) -> tuple[pa.RecordBatch, pa.Array | None]:
    """(records of the good rows of ``raw``, with the ``p_`` columns; the good-row mask, or None
    for all). ``extra`` defaults to the unknown columns of ``raw``; rejections go to ``stats``.

    >>> raw = pa.RecordBatch.from_pydict({"srcport": ["443", "-", "x1"], "custom": ["a", "-", "b"]})
    >>> batch, kept = coerce_batch(raw, "f.parquet")
    >>> batch.select(["srcPort", "custom"]).to_pylist(), kept.to_pylist()
    ([{'srcPort': 443, 'custom': 'a'}, {'srcPort': None, 'custom': None}], [True, True, False])
    """
    if extra is None:
        extra = _unknown(raw.schema)
    checked = _check(raw, first_row, extra, stats or FileStats(source))
    if checked is None:
        return to_batch({}, 0, extra, source), pa.repeat(pa.scalar(False), raw.num_rows)
    typed, rows, ok = checked
    return to_batch(typed, rows, extra, source), ok  # every known field, then the unknown ones


def can_fail(parquet_schema: pa.Schema) -> bool:
    """Whether some column of a file with ``parquet_schema`` needs more than Arrow casts
    (FAILS), or is a ``uint64`` or sub-second time (which Spark reads as other types): the
    Spark engine hands such files to this reader."""
    extra = _unknown(parquet_schema)
    for name in parquet_schema.names:
        dtype = parquet_schema.field(name).type
        if pa.types.is_dictionary(dtype):
            dtype = dtype.value_type
        odd = dtype == pa.uint64() or pa.types.is_timestamp(dtype) and dtype.unit != "s"
        if not name.startswith("p_") and (odd or conversion(dtype, _field(name, extra)) == FAILS):
            return True
    return False


def _check(
    raw: pa.RecordBatch, first_row: int, extra: tuple[F.Field, ...], stats: FileStats,
    encoded: bool = False,
) -> tuple[dict[str, pa.Array], int, pa.Array | None] | None:
    """(typed columns of the good rows, their count, the good-row mask or None for all).

    ``encoded`` keeps dictionary-encoded string columns encoded (nulling ``"-"`` and the like
    in their dictionaries), for a projected read.
    """
    ok: pa.Array | None = None
    typed: dict[str, pa.Array] = {}
    reasons: dict[int, str] = {}
    for name in raw.schema.names:
        if name.startswith("p_"):
            continue
        f = _field(name, extra)
        col = raw.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        col = valid_text(col)
        if encoded and pa.types.is_dictionary(col.type) and f.type == F.STR and f.version:
            typed[f.panther] = null_dictionary(col)
            continue
        value, unreadable, beyond = coerce(col, f)
        typed[f.panther] = value
        shown = shown_values(col)
        for bad, why in ((unreadable, unreadable_reason), (beyond, out_of_range_reason)):
            if bad is None:
                continue
            fresh = bad if ok is None else pc.and_(ok, bad)
            for index in indices(fresh):
                reasons[index] = why(f, name, shown[index].as_py() if f.version else None)
            ok = pc.invert(bad) if ok is None else pc.and_(ok, pc.invert(bad))
    for index, reason in sorted(reasons.items()):
        stats.reject(first_row + index, reason)
    rows = raw.num_rows - len(reasons)
    stats.accept(rows)
    if rows == 0:
        return None
    if reasons:
        typed = {k: v.filter(ok) for k, v in typed.items()}
    return typed, rows, ok if reasons else None


def _field(name: str, extra: tuple[F.Field, ...]) -> F.Field:
    f = column_field(name)
    for known in extra:
        if known.panther == f.panther:
            return known
    return f


def _unknown(parquet_schema: pa.Schema) -> tuple[F.Field, ...]:
    out = []
    for name in parquet_schema.names:
        f = column_field(name)
        if f.version == 0 and not name.startswith("p_"):
            out.append(F.Field(f.aws, f.panther, parquet_schema.field(name).type, 0))
    return tuple(out)


# -- projected reads ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """Which Parquet columns a projected read decodes first, and which only on demand."""

    keep: frozenset[str]
    read: tuple[str, ...]
    rest: tuple[str, ...]
    extra: tuple[F.Field, ...]


def _plan(parquet_schema: pa.Schema, extra: tuple[F.Field, ...],
          keep: frozenset[str] | None, metadata: pq.FileMetaData | None = None) -> _Plan | None:
    """The projected read of a file, or None when it must be read in full. A number column
    whose statistics (in ``metadata``) show every value in range is left to phase 2."""
    if keep is None:
        return None
    wanted = Names([*keep, *(source for name, sources in STANDARD_SOURCES.items()
                             if name in keep for source in sources)])
    read: list[str] = []
    rest: list[str] = []
    for name in parquet_schema.names:
        if name.startswith("p_"):  # recomputed, never read
            continue
        f = _field(name, extra)
        dtype = parquet_schema.field(name).type
        kind = conversion(dtype, f)
        if kind == FAILS:
            return None
        if kind == REJECTS and _proven(metadata, _leaf(metadata, name), dtype, f):
            kind = INERT
        (read if f.panther in wanted or kind == REJECTS else rest).append(name)
    return _Plan(keep, tuple(read), tuple(rest), extra)


def conversion(dtype: pa.DataType, f: F.Field) -> str:
    """What converting a column of ``dtype`` to field ``f`` can do: nothing bad (INERT), reject
    rows (REJECTS: numbers written as text, numbers that may be out of range) or fail the
    whole batch (FAILS)."""
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    numeric = pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
    if f.version == 0:
        return INERT if python_unsafe(pa.array([], dtype)) is None else REJECTS
    if f.type == F.STR:
        return INERT if _is_text(dtype) or numeric or pa.types.is_boolean(dtype) else FAILS
    if pa.types.is_unsigned_integer(dtype) and _fits(dtype, *raw_range(dtype, f)):
        return INERT
    if numeric or pa.types.is_timestamp(dtype) or _is_text(dtype):
        return REJECTS
    return FAILS


def _fits(dtype: pa.DataType, low: int, high: int) -> bool:
    """Whether every value of an unsigned integer type lies in ``low..high``."""
    return low <= 0 and 2 ** dtype.bit_width - 1 <= high


def _proven(metadata: pq.FileMetaData | None, index: int, dtype: pa.DataType,
            f: F.Field) -> bool:
    """Whether the row group statistics of integer column ``index`` show every value in
    range, so that the column cannot reject a row of this file."""
    if (metadata is None or index < 0 or not pa.types.is_signed_integer(dtype)
            or metadata.num_row_groups == 0):
        return False
    low, high = raw_range(dtype, f)
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            return False
        if not (isinstance(stats.min, int) and isinstance(stats.max, int)):
            return False
        if stats.min < low or stats.max > high:
            return False
    return True


def _leaf(metadata: pq.FileMetaData | None, name: str) -> int:
    """The index of the Parquet leaf column holding top-level column ``name`` (-1 if none)."""
    if metadata is None:
        return -1
    for index in range(metadata.num_columns):
        if metadata.schema.column(index).path == name:
            return index
    return -1


def _is_text(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


@dataclass
class _Part:
    """One projected raw batch: enough to rebuild the complete records of any of its rows."""

    raw: pa.RecordBatch
    first: int  # file row of its first row
    ok: pa.Array | None  # its rows that were not rejected (None: all)
    names: tuple[str, ...]
    rest: RowRanges | None
    extra: tuple[F.Field, ...]
    source: str


def _read_projected(
    file: pq.ParquetFile, plan: _Plan, source: str, options: ReadOptions, stats: FileStats
) -> Iterator[Projected]:
    """Decode and check the next batches in a background thread while this one is evaluated
    (both release the GIL); each batch's counts join ``stats`` as it is handed on, so they are
    always those of the batches read so far. Complete rows come from the other columns."""
    for part, counts in ahead(_projected_parts(file, plan, source, options)):
        stats.add(counts)
        if part is not None:
            yield part


def _projected_parts(
    file: pq.ParquetFile, plan: _Plan, source: str, options: ReadOptions
) -> Iterator[tuple[Projected | None, FileStats]]:
    size = options.sizing or options.batch_size
    # decoded in pieces of the first batch's size, whatever the size of the batches handed on
    first = size() if callable(size) else size
    rest = RowRanges(file, plan.rest, first, source) if plan.rest else None
    names = tuple(n for n in file.schema_arrow.names if not n.startswith("p_"))
    again = LateRows.of(source, file.schema_arrow, names)
    row = 0
    raws = locked(file.iter_batches(batch_size=first, columns=list(plan.read)), rest)
    for raw in coalesced(raws, size):
        counts = FileStats(source)
        checked = _check(raw, row + 1, plan.extra, counts, encoded=True)
        part = None
        if checked is not None:
            typed, rows, ok = checked
            batch = to_batch(typed, rows, plan.extra, source, plan.keep)
            part = Projected(batch, partial(_complete, _Part(raw, row, ok, names, rest,
                                                             plan.extra, source)),
                             None if again is None else partial(_late, again, row, ok,
                                                                plan.extra, source))
        yield part, counts
        row += raw.num_rows


def _complete(part: _Part, positions: pa.Array) -> pa.RecordBatch:
    """The complete records at ``positions`` of a part's good rows, as a full read builds them."""
    raw = complete_rows(part.raw, part.first, kept_rows(part.ok, positions), part.names,
                        part.rest)
    return _converted(raw, part.extra, part.source)


def _late(again: LateRows, first: int, ok: pa.Array | None, extra: tuple[F.Field, ...],
          source: str, positions: pa.Array) -> pa.RecordBatch:
    """``_complete``'s records, every column read again from the file (``LogBatch.late``)."""
    return _converted(again.batch(first, ok, positions), extra, source)


def _converted(raw: pa.RecordBatch, extra: tuple[F.Field, ...], source: str) -> pa.RecordBatch:
    """Raw rows checked in the first phase, converted as a full read converts them."""
    scratch = FileStats(source)
    batch = convert(raw, 1, extra, source, scratch)
    if scratch.rejected:  # the rows were checked in the first phase: this cannot happen
        raise AssertionError(f"{source}: rows rejected only when read in full")
    if batch is None:
        batch = to_batch({}, 0, extra, source)
    return batch
