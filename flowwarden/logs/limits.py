"""The bounds every reader enforces alike, so that a value a rule, DuckDB or Python cannot hold
is a rejection naming its field instead of a crash further on.

- Flow log numbers are non-negative and at most ``MAX_DIGITS`` digits (what the text format
  can spell); ports are 0..65535 and the protocol 0..255.
- Times lie in 1970-01-01 .. 9999-12-31 (Python's ``datetime`` ends there, and rules read
  times as ``datetime``; no flow log predates 1970).
- JSON nests at most ``MAX_NESTING`` levels: the decoder and every later step recurse.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_DIGITS = 18
MAX_INT = 10**MAX_DIGITS - 1
# Flow log fields with a narrower range than any non-negative number.
RANGES: dict[str, tuple[int, int]] = {
    "srcPort": (0, 65535),
    "dstPort": (0, 65535),
    "protocol": (0, 255),
}
TIME_MIN = 0
TIME_MAX = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - datetime(1970, 1, 1,
                                                                           tzinfo=UTC)).total_seconds())
TIME_MAX_MS = TIME_MAX * 1000 + 999
MAX_NESTING = 100
DEFAULT_MAX_LINE = 8 << 20
_BRACKETS = re.compile(rb"[\[\]{}]")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def int_range(name: str) -> tuple[int, int]:
    """The allowed values of the flow log integer field ``name`` (Panther name).

    >>> int_range("dstPort"), int_range("bytes")[1] == 10**18 - 1
    ((0, 65535), True)
    """
    return RANGES.get(name, (0, MAX_INT))


def outside(values: pa.Array, low: int, high: int) -> pa.Array:
    """Per row, whether a (non-null) number is outside ``low..high``; null rows are False.

    Bounds are compared in the column's own integer type (a ``uint64`` column would not cast
    to the bounds' ``int64``).

    >>> outside(pa.array([0, 2**64 - 1], pa.uint64()), 0, 10).to_pylist()
    [False, True]
    """
    checks = []
    kind = values.type
    if pa.types.is_integer(kind):
        info = np.iinfo(kind.to_pandas_dtype())
        if low > info.min:
            checks.append(pc.less(values, pa.scalar(min(low, int(info.max)), kind)))
        if high < info.max:
            checks.append(pc.greater(values, pa.scalar(max(high, int(info.min)), kind)))
    else:
        checks = [pc.less(values, low), pc.greater(values, high)]
    if not checks:
        return pa.repeat(pa.scalar(False), len(values))
    beyond = checks[0] if len(checks) == 1 else pc.or_(checks[0], checks[1])
    return pc.fill_null(beyond, False)


def range_reason(name: str, value: object, low: int, high: int) -> str:
    """The rejection reason for ``value`` of field ``name`` outside ``low..high``."""
    return f"{name}: {value} is out of range ({low}..{high})"


def time_reason(name: str, value: object) -> str:
    """The rejection reason for a time of field ``name`` outside 1970..9999."""
    return f"{name}: {value} is out of range (a time in 1970-01-01..9999-12-31)"


def python_number(value: Any, low: int, high: int) -> bool:
    """Whether a JSON number ``value`` is an integer in ``low..high`` (bools are not numbers).

    >>> python_number(22, 0, 65535), python_number(1e30, 0, 65535), python_number(True, 0, 9)
    (True, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        return False
    return low <= value <= high


def too_deep(line: bytes | str, limit: int = MAX_NESTING) -> bool:
    """Whether the JSON text ``line`` nests arrays and objects more than ``limit`` deep.

    Cheap for ordinary lines (bracket count first); strings are skipped, so brackets inside
    them do not count.

    >>> too_deep('{"a": [[1]]}', 2), too_deep('{"a": "[[[["}', 2), too_deep("[" * 5, 4)
    (True, False, True)
    """
    data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b"", data)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False


def python_unsafe(values: pa.Array) -> pa.Array | None:
    """Per row, whether converting ``values`` to Python would fail (a time or date outside
    ``datetime``'s range, at any depth of structs and lists); None when no row can.

    >>> bad = python_unsafe(pa.array([0, 253402300800], pa.timestamp("s")))
    >>> bad.to_pylist(), python_unsafe(pa.array([1, 2]))
    ([False, True], None)
    """
    kind = values.type
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(kind):
        inner = python_unsafe(values.dictionary)
        return None if inner is None else pc.fill_null(inner.take(values.indices), False)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        seconds = _as_seconds(values)
        low = -62135596800  # 0001-01-01
        return outside(seconds, low, TIME_MAX) if seconds is not None else None
    if pa.types.is_struct(kind):
        found = [python_unsafe(values.field(i)) for i in range(kind.num_fields)]
        return _any_of([f for f in found if f is not None], values.is_valid())
    if pa.types.is_map(kind):
        return _by_parent(values, python_unsafe(
            pa.StructArray.from_arrays([values.keys, values.items], ["key", "value"])))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _by_parent(values, python_unsafe(values.flatten()))
    return None


def _as_seconds(values: pa.Array) -> pa.Array | None:
    kind = values.type
    if pa.types.is_date32(kind):
        return pc.multiply(values.cast(pa.int32()).cast(pa.int64()), 86400)
    if pa.types.is_date64(kind):
        return pc.divide(values.cast(pa.int64()), 1000)
    unit = kind.unit
    if unit == "ns":
        return None  # int64 nanoseconds cannot leave 1677..2262
    raw = values.view(pa.int64())
    per = {"s": 1, "ms": 1000, "us": 1_000_000}[unit]
    return pc.divide(raw, per) if per > 1 else raw


def _by_parent(lists: pa.Array, children: pa.Array | None) -> pa.Array | None:
    """Per list, whether any of its elements is flagged in ``children``."""
    if children is None:
        return None
    hit = np.zeros(len(lists), dtype=bool)
    parents = pc.list_parent_indices(lists).filter(children).to_numpy(zero_copy_only=False)
    hit[parents] = True
    return pa.array(hit)


def _any_of(masks: list[pa.Array], valid: pa.Array) -> pa.Array | None:
    if not masks:
        return None
    out = masks[0]
    for mask in masks[1:]:
        out = pc.or_(out, mask)
    return pc.and_(pc.fill_null(out, False), valid)


def valid_text(values: pa.Array) -> pa.Array:
    """``values`` with every string (also in structs and lists) valid UTF-8: bytes that are not
    (corrupt Parquet pages can hold them) are replaced, as in text input. Python could not
    read them back.

    >>> bad = pa.array([b"ok", b"\\xff"]).cast(pa.string(), safe=False)
    >>> valid_text(bad).to_pylist()
    ['ok', '\ufffd']
    """
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            values.validate(full=True)
            return values
        except pa.ArrowInvalid:
            raw = values.cast(pa.large_binary() if pa.types.is_large_string(kind) else pa.binary())
            text = [None if v is None else v.decode("utf-8", "replace") for v in raw.to_pylist()]
            return pa.array(text, kind)
    if pa.types.is_dictionary(kind):
        dictionary = valid_text(values.dictionary)
        if dictionary is values.dictionary:
            return values
        return pa.DictionaryArray.from_arrays(values.indices, dictionary)
    if pa.types.is_struct(kind):
        children = [values.field(i) for i in range(kind.num_fields)]
        fixed = [valid_text(child) for child in children]
        if all(a is b for a, b in zip(fixed, children, strict=True)):
            return values
        if values.offset:  # Arrow rebuilds no slice with a null mask: from a copy at offset 0
            return valid_text(pa.concat_arrays([values]))
        return pa.StructArray.from_arrays(fixed, fields=list(kind), mask=values.is_null())
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        child = values.values  # a new wrapper on every access: keep one
        inner = valid_text(child)
        if inner is child:
            return values
        if values.offset:
            return valid_text(pa.concat_arrays([values]))
        array_type = pa.LargeListArray if pa.types.is_large_list(kind) else pa.ListArray
        return array_type.from_arrays(values.offsets, inner, mask=values.is_null())
    return values
