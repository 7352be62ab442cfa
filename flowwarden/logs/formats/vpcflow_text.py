"""AWS.VPCFlow from space-separated text (S3 delivery, with or without a header line).

Parsing is vectorized per block of lines with pyarrow compute; only rejected lines are touched
one at a time in Python. A block of plain lines (printable ASCII, single spaces) is split by
pyarrow's CSV reader, any other block by Unicode whitespace; both hand the same tokens to one
validation, so a line parses the same wherever it falls.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import partial
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from flowwarden.logs import fields as F
from flowwarden.logs import indicators as I
from flowwarden.logs.common import (
    Numbered,
    Projected,
    arange,
    indices,
    printable,
    projection,
    with_standard,
)
from flowwarden.logs.formats.base import BatchIter, FormatBase
from flowwarden.logs.formats.vpcflow_header import (
    Header,
    detect,
    reject_all,
)
from flowwarden.logs.limits import (
    MAX_DIGITS,
    TIME_MAX,
    TIME_MIN,
    int_range,
    outside,
    range_reason,
    time_reason,
)
from flowwarden.logs.lines import after_chunk, line_chunks
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.streams import Opened

LOG_TYPE = F.LOG_TYPE
NULL_STR = pa.scalar(None, pa.string())
# The CSV reader splits only at a space and a newline, where the general path splits at any
# Unicode whitespace (a bare CR, a tab, NBSP, U+2028...): a block with anything but printable
# ASCII and newlines takes the general path. The general path also takes a run of spaces as
# one and trims lines, where the CSV reader finds an empty value: so does any empty value.
PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\n"
MAX_BLOCK = 8 << 20
# The columns Panther's AWS.VPCFlow schema marks as each indicator kind (``logs.indicators``).
INDICATOR_SOURCES: dict[str, tuple[str, ...]] = {
    I.IP_ADDRESSES: F.IP_COLUMNS,
    I.AWS_ACCOUNT_IDS: ("account",),
    I.AWS_INSTANCE_IDS: ("instanceId",),
}


def schema(fields: tuple[F.Field, ...] = ()) -> pa.Schema:
    """The columns of a batch read with ``fields`` (all known fields plus any unknown ones)."""
    return F.schema(tuple(f for f in fields if f.panther not in F.BY_PANTHER))


def read_batches(
    opened: Opened, source: str, options: ReadOptions, stats: FileStats
) -> Iterator[Numbered]:
    """Parse a decompressed text stream block by block into Arrow record batches, each with
    its records' line numbers.

    Every field of every line is split and checked; a projected read (``ReadOptions.columns``)
    of a clean block then builds only the asked-for columns. A line longer than
    ``ReadOptions.max_line_bytes`` is one rejection.
    """
    state = Header()
    keep = projection(options)
    line_no = 0
    for chunk in line_chunks(opened, block_size(options.batch_size), options.max_line_bytes):
        data = chunk.data
        fast = None
        if state.fields is not None and state.problem is None:
            fast = _parse_fast(data, state.fields, state.header, source, stats, line_no + 1, keep)
        if fast is not None:  # a plain block: one record per line
            line_no += data.count(b"\n")
            if fast[0] is not None:
                yield Numbered(*fast)
        elif data:
            lines = _split(data)
            if state.fields is None:
                lines, line_no = state.resolve(lines, options, line_no, stats)
            if state.problem is not None:
                reject_all(lines, line_no + 1, state, stats)
            elif state.fields is not None and len(lines):
                checked = _check_lines(lines, line_no + 1, state.fields, stats, state.header)
                if checked is not None:  # the reader skips empty batches
                    yield Numbered(_built(checked, state.fields, source, keep), checked.numbers)
            line_no += len(lines)
        line_no = after_chunk(chunk, line_no, options.max_line_bytes, stats)
        if chunk.error is not None:
            return


class VpcFlowText(FormatBase):
    """Flow log text: detected from its first line, or taken as such under ``--format`` or
    ``--log-type AWS.VPCFlow``; never input that starts as JSON."""

    name = "vpcflow-text"
    log_types = (LOG_TYPE,)

    def detect_text(self, head: bytes, options: ReadOptions) -> bool:
        if head.lstrip().startswith(b"{") or not self.allows(options):
            return False
        return bool(options.format) or options.log_type == LOG_TYPE or detect(head)

    def read_text(self, opened: Opened, source: str, options: ReadOptions,
                  stats: FileStats) -> BatchIter:
        return read_batches(opened, source, options, stats)


FORMAT = VpcFlowText()


def _parse_fast(
    data: bytes,
    fields: tuple[F.Field, ...],
    header: str | None,
    source: str,
    stats: FileStats,
    first_line: int,
    keep: frozenset[str] | None = None,
) -> tuple[pa.RecordBatch | Projected | None, pa.Array] | None:
    """Split a plain block with pyarrow's CSV reader, then check and type its tokens as the
    general path does (``_checked``); None sends the block to the general path.

    Only a block of plain lines qualifies (only ``PLAIN_BYTES``, single spaces between
    values only: no empty value): no repeated header, no blank line, every line with the right
    field count.
    """
    if not data or data.translate(None, PLAIN_BYTES):
        return None
    if header is not None and header.encode() in data:
        return None
    names = [f"c{i}" for i in range(len(fields))]
    invalid: list[object] = []

    def skip(row: object) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(
                column_names=names, use_threads=False, block_size=len(data) + 1
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=" ",
                quote_char=False,
                escape_char=False,
                invalid_row_handler=skip,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), null_values=[],
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if invalid or table.num_rows != data.count(b"\n"):  # blank lines: numbered by the general path
        return None
    raw = {f.panther: table.column(n).combine_chunks() for n, f in zip(names, fields, strict=True)}
    if any(pc.any(pc.equal(pc.binary_length(col), 0)).as_py() for col in raw.values()):
        return None  # a run of spaces, or a space at either end of a line
    checked = _checked(raw, fields, arange(table.num_rows), first_line, stats)
    if not checked.rows:
        return None, checked.numbers
    return _built(checked, fields, source, keep), checked.numbers


def _built(checked: _Checked, fields: tuple[F.Field, ...], source: str,
           keep: frozenset[str] | None) -> pa.RecordBatch | Projected:
    """The batch of checked records: complete, or only the columns ``keep`` names (the rest,
    the ``p_`` indicator columns included, are built only for the rows asked for later)."""
    if keep is None:
        return to_batch(checked.typed, checked.rows, fields, source)
    batch = to_batch(checked.typed, checked.rows, fields, source, keep)
    return Projected(batch, partial(_complete, checked.typed, fields, source))


def _complete(typed: dict[str, pa.Array], fields: tuple[F.Field, ...], source: str,
              positions: pa.Array) -> pa.RecordBatch:
    """The complete records at ``positions`` of a block parsed for a projected read."""
    return to_batch({k: v.take(positions) for k, v in typed.items()}, len(positions), fields,
                    source)


def block_size(batch_size: int) -> int:
    """Bytes of text parsed at once: about ``batch_size`` lines, at most ``MAX_BLOCK`` (larger
    blocks parse slower and hold more memory; the reader then yields smaller batches)."""
    return min(max(batch_size * 128, 1 << 16), MAX_BLOCK)


def parse_lines(
    lines: pa.Array,
    first_line: int,
    fields: tuple[F.Field, ...],
    source: str,
    stats: FileStats,
    skip: str | None = None,
) -> pa.RecordBatch | None:
    """Parse records, one per string in ``lines`` (the first is line ``first_line``), into a batch.

    Blank lines and repeats of the header (``skip``) are ignored; bad lines become rejections.
    """
    return parse_numbered(lines, first_line, fields, source, stats, skip)[0]


def parse_numbered(
    lines: pa.Array,
    first_line: int,
    fields: tuple[F.Field, ...],
    source: str,
    stats: FileStats,
    skip: str | None = None,
) -> tuple[pa.RecordBatch | None, pa.Array | None]:
    """``parse_lines``, and the line number of each record of the batch."""
    checked = _check_lines(lines, first_line, fields, stats, skip)
    if checked is None:
        return None, None
    return to_batch(checked.typed, checked.rows, fields, source), checked.numbers


def _check_lines(lines: pa.Array, first_line: int, fields: tuple[F.Field, ...],
                 stats: FileStats, skip: str | None) -> _Checked | None:
    """Split, check and type records, one per string in ``lines``; None when none is good."""
    lines = pc.utf8_trim_whitespace(lines)
    keep = pc.greater(pc.binary_length(lines), 0)
    if skip is not None:
        keep = pc.and_(keep, pc.not_equal(lines, skip))
    tokens = pc.utf8_split_whitespace(lines)
    width = len(fields)
    counts = pc.list_value_length(tokens)
    wrong = pc.and_(keep, pc.not_equal(counts, width))
    for index in indices(wrong):
        found = counts[index].as_py()
        stats.reject(first_line + index, f"expected {width} fields, found {found}")
    good = pc.and_(keep, pc.equal(counts, width))
    positions = pc.indices_nonzero(good).cast(pa.int64())
    kept = tokens.filter(good)
    raw = {f.panther: pc.list_element(kept, i) for i, f in enumerate(fields)}
    checked = _checked(raw, fields, positions, first_line, stats)
    return checked if checked.rows else None


class _Checked(NamedTuple):
    """Records checked and typed: the typed columns of the good ones, their count and lines."""

    typed: dict[str, pa.Array]
    rows: int
    numbers: pa.Array


def _checked(raw: dict[str, pa.Array], fields: tuple[F.Field, ...], positions: pa.Array,
             first_line: int, stats: FileStats) -> _Checked:
    """Check the tokens of records (``raw``, one string column per field; record ``i`` is on
    line ``first_line + positions[i]``), reject the bad ones and type the good ones. The one
    place a flow log line's values are judged, whichever way it was split."""
    ok, reasons, numbers = _validate(raw, fields, pa.repeat(pa.scalar(True), len(positions)))
    for index, reason in sorted(reasons.items()):
        stats.reject(first_line + positions[index].as_py(), reason)
    rows = len(positions) - len(reasons)
    stats.accept(rows)
    if reasons:
        raw = {k: v.filter(ok) for k, v in raw.items()}
        numbers = {k: v.filter(ok) for k, v in numbers.items()}
        positions = positions.filter(ok)
    typed = {f.panther: _typed(raw[f.panther], numbers.get(f.panther), f) for f in fields}
    return _Checked(typed, rows, pc.add(positions, first_line))


def to_batch(
    columns: dict[str, pa.Array],
    rows: int,
    fields: tuple[F.Field, ...],
    source: str,
    keep: frozenset[str] | None = None,
) -> pa.RecordBatch:
    """A full AWS.VPCFlow batch from the typed columns present; absent ones are null.

    With a projection ``keep``, only those columns are built (string columns may then be
    dictionary-encoded).
    """
    target = [f for f in schema(fields) if keep is None or f.name in keep]
    arrays = [columns.get(f.name, pa.nulls(rows, f.type)) for f in target]
    if keep is None:
        batch = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(target))
    else:
        kinds = [f.with_type(a.type) if pa.types.is_dictionary(a.type) else f
                 for f, a in zip(target, arrays, strict=True)]
        batch = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(kinds))
    event = None
    if keep is None or "p_event_time" in keep:
        nulls = pa.nulls(rows, F.TIME)
        event = pc.coalesce(columns.get("start", nulls), columns.get("end", nulls))
    sources = {name: [columns[c] for c in names if c in columns]
               for name, names in INDICATOR_SOURCES.items()}
    return with_standard(batch, LOG_TYPE, source, event, I.build(sources, rows, keep), keep, rows)


def _validate(
    raw: dict[str, pa.Array], fields: tuple[F.Field, ...], ok: pa.Array
) -> tuple[pa.Array, dict[int, str], dict[str, pa.Array]]:
    """Narrow ``ok`` to rows whose typed fields are valid: the first reason for each bad row,
    and each number field as int64 (times in Unix seconds; null where ``-`` or bad)."""
    reasons: dict[int, str] = {}
    numbers: dict[str, pa.Array] = {}
    for f in fields:
        col = raw[f.panther]
        name = f"{f.panther} ({f.aws})"
        if f.type in (F.INT, F.TIME):
            # ASCII digits only, not "²" or "٣" (byte length is length then)
            fine = pc.and_(pc.ascii_is_decimal(col), pc.less_equal(pc.binary_length(col),
                                                                    MAX_DIGITS))
            bad = pc.and_(ok, pc.invert(pc.or_(pc.equal(col, "-"), fine)))
            for index in indices(bad):
                reasons[index] = f"{name}: not an integer: {printable(col[index].as_py())}"
            ok = pc.and_(ok, pc.invert(bad))
            values = pc.if_else(pc.and_(ok, fine), col, NULL_STR).cast(F.INT)
            if f.type == F.TIME:
                values = epoch_seconds(values)
                low, high = TIME_MIN, TIME_MAX
            else:
                low, high = int_range(f.panther)
            beyond = pc.and_(ok, outside(values, low, high))
            for index in indices(beyond):
                value = col[index].as_py()
                reasons[index] = (time_reason(name, value) if f.type == F.TIME
                                  else range_reason(name, value, low, high))
            ok = pc.and_(ok, pc.invert(beyond))
            numbers[f.panther] = values
        elif f.panther == "action":
            fine = pc.is_in(col, pa.array(sorted(F.ACTIONS)))
            bad = pc.and_(ok, pc.invert(pc.or_(pc.equal(col, "-"), fine)))
            for index in indices(bad):
                reasons[index] = (f"{name}: expected ACCEPT, REJECT or -, found "
                                  f"{printable(col[index].as_py())}")
            ok = pc.and_(ok, pc.invert(bad))
    return ok, reasons, numbers


def _typed(col: pa.Array, number: pa.Array | None, f: F.Field) -> pa.Array:
    """A field's column as its type: ``number`` (from ``_validate``) for numbers, else the
    text with ``-`` as null."""
    if f.type == F.INT and number is not None:
        return number
    if f.type == F.TIME and number is not None:
        return number.cast(F.TIME)
    return pc.if_else(pc.equal(col, "-"), NULL_STR, col)


def epoch_seconds(values: pa.Array) -> pa.Array:
    """Unix seconds from seconds or milliseconds (values above ``MS_THRESHOLD``), as int64."""
    values = values.cast(F.INT)
    is_ms = pc.fill_null(pc.greater(values, F.MS_THRESHOLD), False)
    return pc.if_else(is_ms, pc.divide(values, 1000), values)


def seconds(values: pa.Array) -> pa.Array:
    """Unix seconds (or milliseconds, when implausibly large) as ``timestamp[s, UTC]``."""
    return epoch_seconds(values).cast(F.TIME)


def _split(data: bytes) -> pa.Array:
    if not data:
        return pa.array([], pa.string())
    try:
        text = pa.array([data], pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        text = pa.array([data.decode("utf-8", errors="replace")], pa.string())
    parts = pc.list_flatten(pc.split_pattern(text, "\n"))
    return parts.slice(0, len(parts) - 1) if data.endswith(b"\n") else parts
