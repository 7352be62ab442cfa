"""AWS.VPCFlow from space-separated text (S3 delivery, with or without a header line).

Parsing is vectorized per block of lines with pyarrow compute; only rejected lines are touched
one at a time in Python.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from flowwarden.errors import LogFormatError
from flowwarden.logs import fields as F
from flowwarden.logs.common import (
    Numbered,
    Projected,
    any_ips,
    arange,
    indices,
    printable,
    projection,
    with_standard,
)
from flowwarden.logs.formats.base import BatchIter, FormatBase
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.streams import Opened, blocks, prefetch

LOG_TYPE = F.LOG_TYPE
HEADER_TOKEN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
MAX_DIGITS = 18
NULL_STR = pa.scalar(None, pa.string())
# A run of spaces could hide a missing field from the CSV reader's field count; a tab would be
# read as part of a value. Other oddities (leading or trailing spaces) change the field count,
# which the CSV reader reports, sending the block to the general path.
SLOW_MARKERS = (b"  ", b"\t")
MAX_BLOCK = 8 << 20


def header_fields(line: str) -> tuple[F.Field, ...] | None:
    """The fields a header line names, or None if ``line`` is not a header.

    >>> [f.panther for f in header_fields("version srcaddr log-status")]
    ['version', 'srcAddr', 'status']
    """
    tokens = line.split()
    if not tokens or not all(HEADER_TOKEN.match(t) for t in tokens):
        return None
    if not any(t.replace("_", "-") in F.BY_AWS for t in tokens):
        return None
    return tuple(F.field_for(t) for t in tokens)


def format_fields(options: ReadOptions) -> tuple[F.Field, ...]:
    """Fields for headerless input: ``options.format`` or AWS's default (v2) format."""
    names = F.parse_format(options.format) if options.format else F.DEFAULT_V2
    if not names:
        raise LogFormatError(f"the format {options.format!r} names no fields")
    return tuple(F.field_for(n) for n in names)


def detect(head: bytes) -> bool:
    """Whether ``head`` (decompressed first bytes) looks like flow log text."""
    line = _first_line(head)
    if line is None:
        return False
    if header_fields(line) is not None:
        return True
    tokens = line.split()
    return len(tokens) == len(F.DEFAULT_V2) and tokens[0].isdigit() and tokens[-1].isupper()


def schema(fields: tuple[F.Field, ...] = ()) -> pa.Schema:
    """The columns of a batch read with ``fields`` (all known fields plus any unknown ones)."""
    return F.schema(tuple(f for f in fields if f.panther not in F.BY_PANTHER))


def read_batches(
    opened: Opened, source: str, options: ReadOptions, stats: FileStats
) -> Iterator[Numbered]:
    """Parse a decompressed text stream block by block into Arrow record batches, each with
    its records' line numbers.

    Every field of every line is split and checked; a projected read (``ReadOptions.columns``)
    of a clean block then builds only the asked-for columns.
    """
    fields: tuple[F.Field, ...] | None = None
    header: str | None = None
    keep = projection(options)
    line_no = 0
    for data, error in line_chunks(opened, block_size(options.batch_size)):
        batch = _parse_fast(data, fields, header, source, stats, keep) if fields else None
        numbers: pa.Array | None = None
        if batch is not None:  # a clean block: one record per line
            numbers = pc.add(arange(data.count(b"\n")), line_no + 1)
            line_no += data.count(b"\n")
        else:
            lines = _split(data)
            if fields is None:
                fields, header, lines, line_no = _resolve_fields(lines, options, line_no)
            if fields is not None and len(lines):
                batch, numbers = parse_numbered(lines, line_no + 1, fields, source, stats,
                                                skip=header)
            line_no += len(lines)
        if batch is not None and numbers is not None:
            yield Numbered(batch, numbers)  # the reader skips empty batches
        if error is not None:
            stats.reject(line_no + 1, f"truncated or corrupt input: {error}")
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
    keep: frozenset[str] | None = None,
) -> pa.RecordBatch | Projected | None:
    """Parse a block with pyarrow's CSV reader when it is plainly clean; else None.

    Anything unusual (runs of spaces, tabs, a repeated header, a line with the
    wrong field count, a value that is not a non-negative integer, a bad action) sends the whole
    block to the general path, which reports each bad line by number.
    """
    if not data or any(m in data for m in SLOW_MARKERS):
        return None
    if header is not None and header.encode() in data:
        return None
    names = [f"c{i}" for i in range(len(fields))]
    types = {
        n: F.INT if f.type in (F.INT, F.TIME) else pa.string()
        for n, f in zip(names, fields, strict=True)
    }
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
                column_types=types, null_values=["-"], strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if invalid or table.num_rows != data.count(b"\n"):  # blank lines: numbered by the general path
        return None
    columns = {
        f.panther: table.column(n).combine_chunks() for n, f in zip(names, fields, strict=True)
    }
    if not _clean(columns, fields):
        return None
    rows = table.num_rows
    typed = {
        f.panther: seconds(columns[f.panther]) if f.type == F.TIME else columns[f.panther]
        for f in fields
    }
    stats.accept(rows)
    if keep is None:
        return to_batch(typed, rows, fields, source)
    batch = to_batch(typed, rows, fields, source, keep)
    return Projected(batch, partial(_complete, typed, fields, source))


def _complete(typed: dict[str, pa.Array], fields: tuple[F.Field, ...], source: str,
              positions: pa.Array) -> pa.RecordBatch:
    """The complete records at ``positions`` of a block parsed for a projected read."""
    return to_batch({k: v.take(positions) for k, v in typed.items()}, len(positions), fields,
                    source)


def _clean(columns: dict[str, pa.Array], fields: tuple[F.Field, ...]) -> bool:
    for f in fields:
        col = columns[f.panther]
        if f.type in (F.INT, F.TIME):
            low = pc.min(col).as_py()
            if low is not None and low < 0:
                return False
        elif f.panther == "action":
            fine = pc.or_kleene(col.is_null(), pc.is_in(col, pa.array(sorted(F.ACTIONS))))
            if not pc.all(fine).as_py():
                return False
    return True


def block_size(batch_size: int) -> int:
    """Bytes of text parsed at once: about ``batch_size`` lines, at most ``MAX_BLOCK`` (larger
    blocks parse slower and hold more memory; the reader then yields smaller batches)."""
    return min(max(batch_size * 128, 1 << 16), MAX_BLOCK)


def line_chunks(opened: Opened, size: int) -> Iterator[tuple[bytes, str | None]]:
    """Runs of complete lines; after a read error, the partial last line is dropped."""
    carry = b""
    for block, error in prefetch(blocks(opened, size)):
        data = carry + block
        cut = data.rfind(b"\n") + 1
        yield data[:cut], error
        if error is not None:
            return
        carry = data[cut:]
    if carry.strip():
        yield carry + b"\n", None


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
    positions = pc.indices_nonzero(good)
    kept = tokens.filter(good)
    raw = {f.panther: pc.list_element(kept, i) for i, f in enumerate(fields)}
    ok, reasons = _validate(raw, fields, pa.repeat(pa.scalar(True), len(kept)))
    for index, reason in reasons.items():
        stats.reject(first_line + positions[index].as_py(), reason)
    rows = pc.sum(pc.cast(ok, pa.int64())).as_py() or 0
    if rows == 0:
        return None, None
    typed = {f.panther: _typed(raw[f.panther].filter(ok), f) for f in fields}
    stats.accept(rows)
    numbers = pc.add(positions.filter(ok).cast(pa.int64()), first_line)
    return to_batch(typed, rows, fields, source), numbers


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
    event = ips = None
    if keep is None or "p_event_time" in keep:
        nulls = pa.nulls(rows, F.TIME)
        event = pc.coalesce(columns.get("start", nulls), columns.get("end", nulls))
    if keep is None or "p_any_ip_addresses" in keep:
        present = [columns[c] for c in F.IP_COLUMNS if c in columns]
        ips = any_ips(present or [pa.nulls(rows, pa.string())])
    return with_standard(batch, LOG_TYPE, source, event, ips, keep, rows)


def _validate(
    raw: dict[str, pa.Array], fields: tuple[F.Field, ...], ok: pa.Array
) -> tuple[pa.Array, dict[int, str]]:
    """Narrow ``ok`` to rows whose typed fields are valid; the first reason for each bad row."""
    reasons: dict[int, str] = {}
    for f in fields:
        col = raw[f.panther]
        if f.type in (F.INT, F.TIME):
            fine = pc.and_(pc.utf8_is_digit(col), pc.less_equal(pc.utf8_length(col), MAX_DIGITS))
            what = "not an integer:"
        elif f.panther == "action":
            fine = pc.is_in(col, pa.array(sorted(F.ACTIONS)))
            what = "expected ACCEPT, REJECT or -, found"
        else:
            continue
        bad = pc.and_(ok, pc.invert(pc.or_(pc.equal(col, "-"), fine)))
        for index in indices(bad):
            reasons[index] = f"{f.panther} ({f.aws}): {what} {printable(col[index].as_py())}"
        ok = pc.and_(ok, pc.invert(bad))
    return ok, reasons


def _typed(col: pa.Array, f: F.Field) -> pa.Array:
    col = pc.if_else(pc.equal(col, "-"), NULL_STR, col)
    if f.type == F.INT:
        return col.cast(F.INT)
    if f.type == F.TIME:
        return seconds(col.cast(F.INT))
    return col


def seconds(values: pa.Array) -> pa.Array:
    """Unix seconds (or milliseconds, when implausibly large) as ``timestamp[s, UTC]``."""
    values = values.cast(F.INT)
    is_ms = pc.fill_null(pc.greater(values, F.MS_THRESHOLD), False)
    values = pc.if_else(is_ms, pc.divide(values, 1000), values)
    return values.cast(F.TIME)


def _split(data: bytes) -> pa.Array:
    if not data:
        return pa.array([], pa.string())
    try:
        text = pa.array([data], pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        text = pa.array([data.decode("utf-8", errors="replace")], pa.string())
    parts = pc.list_flatten(pc.split_pattern(text, "\n"))
    return parts.slice(0, len(parts) - 1) if data.endswith(b"\n") else parts


def _resolve_fields(
    lines: pa.Array, options: ReadOptions, line_no: int
) -> tuple[tuple[F.Field, ...] | None, str | None, pa.Array, int]:
    """Find the header among the leading lines: (fields, header, remaining lines, line number).

    Fields stay None while only blank lines have been seen.
    """
    for index, value in enumerate(lines.slice(0, 1000).to_pylist()):
        text = (value or "").strip()
        if not text:
            continue
        found = header_fields(text)
        if found is None:
            return format_fields(options), None, lines.slice(index), line_no + index
        return found, " ".join(text.split()), lines.slice(index + 1), line_no + index + 1
    return None, None, lines.slice(len(lines)), line_no + len(lines)


def _first_line(head: bytes) -> str | None:
    for raw in head.split(b"\n")[:50]:
        line = raw.decode("utf-8", errors="replace").strip()
        if line:
            return line
    return None
