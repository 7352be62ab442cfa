"""Panther's standard ``p_`` columns and the since/until record filter, shared by every reader."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.logs import indicators
from flowwarden.logs.model import ReadOptions, RowLoader

EVENT_TIME = pa.timestamp("us", tz="UTC")
IP_LIST = indicators.VALUES
# The indicator fields (see ``flowwarden.logs.indicators``) are columns of every log type, as in
# Panther's tables: empty lists where a log type has no field of that kind.
STANDARD_FIELDS: tuple[pa.Field, ...] = (
    pa.field("p_log_type", pa.string()),
    pa.field("p_event_time", EVENT_TIME),
    pa.field("p_parse_time", EVENT_TIME),
    pa.field("p_source_file", pa.string()),
    *(pa.field(name, indicators.VALUES) for name in indicators.NAMES),
)
STANDARD_NAMES = frozenset(f.name for f in STANDARD_FIELDS)


class Projected(NamedTuple):
    """What a format reader yields for a projected read: the batch and its complete rows
    (``complete``, while the batch is the reader's current one; ``late``, where the format can,
    at any time until the scan ends: ``LogBatch.late``)."""

    batch: pa.RecordBatch
    complete: RowLoader
    late: RowLoader | None = None


class Numbered(NamedTuple):
    """What a format reader yields when it knows where each record came from: the batch (or
    projected batch) and each record's 1-based line number in its text input."""

    item: pa.RecordBatch | Projected
    lines: pa.Array


SHOWN_CHARACTERS = 60
ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(value: bytes | str | object, limit: int = SHOWN_CHARACTERS) -> str:
    r"""A piece of input as text in a message: bytes decoded (bad ones as U+FFFD), control and
    format characters escaped (no terminal escape reaches a terminal), at most ``limit``
    characters, in double quotes.

    >>> print(printable(b"a,b,c"))
    "a,b,c"
    >>> print(printable("x\x1b[31m\t" + "y" * 80, 10))
    "x\x1b[31m\tyyy..." (87 characters)
    >>> print(printable(b"caf\xc3\xa9 \xff"))
    "café �"
    """
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    shown = "".join(_escaped(c) for c in text[:limit])
    if len(text) > limit:
        return f'"{shown}..." ({len(text)} characters)'
    return f'"{shown}"'


def _escaped(char: str) -> str:
    if char in ESCAPES:
        return ESCAPES[char]
    if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def arange(count: int) -> pa.Array:
    """``[0, 1, ..., count - 1]`` as an int64 array, built without Python integers (numpy's
    in a tenth of the time of a cumulative sum)."""
    return pa.array(np.arange(max(count, 0), dtype=np.int64))


def kept_rows(keep: pa.Array | None, positions: pa.Array) -> pa.Array:
    """Rows of a batch at ``positions`` of the rows the mask ``keep`` keeps (None: all), as a
    loader of the kept rows (a format's good rows, a since/until window's) asks for them.

    >>> kept_rows(pa.array([True, False, True]), pa.array([1])).to_pylist()
    [2]
    """
    return positions if keep is None else pc.indices_nonzero(keep).take(positions)


def indices(mask: pa.Array) -> list[int]:
    """Positions where a boolean array is true (for the few rows handled one by one)."""
    return pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()


def dictionary_positions(encoded: pa.DictionaryArray) -> np.ndarray:
    """Each row's index into ``encoded.dictionary``; null rows point one past its end, where
    callers put the value for null.

    >>> encoded = pc.dictionary_encode(pa.array(["b", None, "a", "b"]))
    >>> dictionary_positions(encoded).tolist()
    [0, 2, 1, 0]
    """
    indices = encoded.indices
    if indices.null_count:
        if indices.type.bit_width < 32:  # the extra slot may not fit int8/int16
            indices = indices.cast(pa.int32())
        indices = pc.fill_null(indices, len(encoded.dictionary))
    return indices.to_numpy()


def any_ips(columns: list[pa.Array]) -> pa.Array:
    """Per row, the distinct non-null values of the given string (or list of string) columns,
    sorted as Panther sorts an indicator field (``indicators.any_values``)."""
    return indicators.any_values(columns)


def to_event_time(values: pa.Array) -> pa.Array:
    """Cast a timestamp column to ``timestamp[us, UTC]``."""
    if pa.types.is_timestamp(values.type) and values.type.tz is None:
        values = pc.assume_timezone(values, "UTC")
    return values.cast(EVENT_TIME)


class Names(frozenset[str]):
    """Column names that also hold each name in any case: rules find an event's keys as
    Panther's event does (exact, else in any case), so a projected read keeps the column a rule
    names in another case."""

    def __new__(cls, names: Iterable[str] = ()) -> Names:
        found = super().__new__(cls, names)
        found._folded = frozenset(name.lower() for name in found)
        return found

    _folded: frozenset[str]

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or (isinstance(name, str)
                                              and name.lower() in self._folded)



def projection(options: ReadOptions) -> frozenset[str] | None:
    """The columns a projected read builds, or None for a full read.

    That is the asked-for columns, ``p_log_type`` (the reader needs it) and, while a since/until
    window applies, ``p_event_time``.

    >>> sorted(projection(ReadOptions(columns=("dstPort",))))
    ['dstPort', 'p_log_type']
    """
    if options.columns is None:
        return None
    names = {*options.columns, "p_log_type"}
    if options.since is not None or options.until is not None:
        names.add("p_event_time")
    return Names(names)


def with_standard(
    batch: pa.RecordBatch,
    log_type: str,
    source: str,
    event_time: pa.Array | None,
    found: Mapping[str, pa.Array],
    keep: frozenset[str] | None = None,
    rows: int | None = None,
) -> pa.RecordBatch:
    """``batch`` with its own ``p_`` standard columns replaced by freshly computed ones.

    ``found`` holds the indicator columns (``indicators.build``); one it lacks is empty lists.
    The row count comes from ``event_time`` (``batch`` may have no columns at all). With a
    projection ``keep``, only those columns are built: ``event_time`` and the indicators may
    then be left out when not kept, and ``rows`` gives the row count.
    """
    names = [
        n for n in batch.schema.names if n not in STANDARD_NAMES and (keep is None or n in keep)
    ]
    arrays = [batch.column(n) for n in names]
    fields = [batch.schema.field(n) for n in names]
    count = len(event_time) if event_time is not None else rows
    if count is None:
        raise ValueError("with_standard needs event_time or rows")
    build = {
        "p_log_type": lambda: pa.repeat(pa.scalar(log_type, pa.string()), count),
        "p_event_time": lambda: to_event_time(event_time),
        "p_parse_time": lambda: pa.repeat(pa.scalar(datetime.now(UTC), EVENT_TIME), count),
        "p_source_file": lambda: pa.repeat(pa.scalar(source, pa.string()), count),
    }
    for standard in STANDARD_FIELDS:
        if keep is None or standard.name in keep:
            name = standard.name
            indicator = found.get(name)
            if name in build:
                arrays.append(build[name]())
            else:
                arrays.append(indicator if indicator is not None
                              else indicators.empty_lists(count))
            fields.append(standard)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def window_mask(batch: pa.RecordBatch, options: ReadOptions) -> pa.Array | None:
    """The rows inside since/until (nulls are kept), or None when no window applies."""
    if options.since is None and options.until is None:
        return None
    times = batch.column("p_event_time")
    keep = pa.repeat(pa.scalar(True), batch.num_rows)
    if options.since is not None:
        since = pa.scalar(utc(options.since), EVENT_TIME)
        keep = pc.and_(keep, pc.fill_null(pc.greater_equal(times, since), True))
    if options.until is not None:
        until = pa.scalar(utc(options.until), EVENT_TIME)
        keep = pc.and_(keep, pc.fill_null(pc.less_equal(times, until), True))
    return keep


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive values are taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

