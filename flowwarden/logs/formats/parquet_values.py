"""Flow log values from Parquet columns of whatever type a producer wrote: numbers as text,
floats, unsigned or out-of-range numbers, timestamps of any unit, bytes that are not UTF-8,
nested values. A value is converted, or its row rejected naming the field; nothing here fails
a whole batch (the limits are ``flowwarden.logs.limits``)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.logs import fields as F
from flowwarden.logs.common import printable
from flowwarden.logs.formats.vpcflow_text import epoch_seconds
from flowwarden.logs.limits import (
    MAX_DIGITS,
    TIME_MAX,
    TIME_MAX_MS,
    TIME_MIN,
    int_range,
    outside,
    python_unsafe,
    range_reason,
    time_reason,
)

NULL_STRINGS = pa.array(["-", "None", ""])
UNITS = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}


def unreadable_reason(f: F.Field, name: str, value: object) -> str:
    if not f.version:  # only a time Python cannot hold makes an unknown column unreadable
        return f"{name}: holds a time outside 0001..9999"
    return f"{f.panther} ({name}): cannot read {printable(value)}"


def out_of_range_reason(f: F.Field, name: str, value: object) -> str:
    where = f"{f.panther} ({name})"
    value_shown = value if isinstance(value, int | float) else printable(value)
    if f.type == F.TIME:
        return time_reason(where, value_shown)
    return range_reason(where, value_shown, *int_range(f.panther))


def shown_values(col: pa.Array) -> pa.Array:
    """``col`` as values a message can show: times as their raw numbers (a time out of range
    cannot become a Python value)."""
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        return col.view(pa.int64() if col.type.bit_width == 64 else pa.int32())
    return col


def coerce(col: pa.Array, f: F.Field) -> tuple[pa.Array, pa.Array | None, pa.Array | None]:
    """(values cast to the field's type, mask of values that cannot be read as it, mask of
    values out of its range); a mask is None when no value is bad that way."""
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if f.version == 0:  # a column this reader does not know: kept as written, but "-" text
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            return null_strings(col), None, None
        return col, python_unsafe(col), None
    if f.type == F.STR:
        text, unreadable = strings(col)
        return null_strings(text), unreadable, None
    ints, unreadable, beyond = integers(col, f)
    if f.type == F.TIME:
        ints = ints if pa.types.is_timestamp(col.type) else epoch_seconds(ints)
        return ints.cast(F.TIME), unreadable, beyond
    return ints, unreadable, beyond


def integers(col: pa.Array, f: F.Field) -> tuple[pa.Array, pa.Array | None, pa.Array | None]:
    """A number column as int64 (timestamps in seconds), null where bad; the masks of values
    that cannot be read and that are out of range (None when there are none)."""
    low, high = raw_range(col.type, f)
    unreadable: pa.Array | None = None
    if pa.types.is_timestamp(col.type):
        values = col.cast(pa.int64())
    elif pa.types.is_integer(col.type):
        values = col
    elif pa.types.is_floating(col.type):
        integral = pc.and_(pc.is_finite(col), pc.equal(pc.floor(col), col))
        unreadable = pc.invert(pc.fill_null(integral, True))
        values = col
    else:
        text, nested = strings(col)
        text = null_strings(text)
        digits = pc.and_(pc.string_is_ascii(text), pc.utf8_is_digit(text))  # not "²" or "٣"
        fine = pc.and_(digits, pc.less_equal(pc.utf8_length(text), MAX_DIGITS))
        unreadable = pc.and_(text.is_valid(), pc.invert(pc.fill_null(fine, False)))
        if nested is not None:
            unreadable = pc.or_(unreadable, nested)
        values = pc.if_else(unreadable, pa.scalar(None, pa.string()), text).cast(F.INT)
    beyond = outside(values, low, high)
    if unreadable is not None:
        beyond = pc.and_(beyond, pc.invert(unreadable))
    bad = beyond if unreadable is None else pc.or_(beyond, unreadable)
    if pc.any(bad).as_py():
        values = pc.if_else(bad, pa.scalar(None, values.type), values)
    else:
        unreadable = beyond = None
    ints = values.cast(F.INT, safe=False)  # what is left fits: checked above
    if pa.types.is_timestamp(col.type):
        ints = pc.divide(ints, UNITS[col.type.unit])
    if unreadable is not None and not pc.any(unreadable).as_py():
        unreadable = None
    if beyond is not None and not pc.any(beyond).as_py():
        beyond = None
    return ints, unreadable, beyond


def raw_range(dtype: pa.DataType, f: F.Field) -> tuple[int, int]:
    """The values a column of ``dtype`` may hold for field ``f``, in its own unit (times:
    seconds, or milliseconds when implausibly large; timestamps: their unit)."""
    if f.type != F.TIME:
        return int_range(f.panther)
    if pa.types.is_timestamp(dtype):
        per = UNITS[dtype.unit]
        return TIME_MIN * per, TIME_MAX * per + per - 1
    return TIME_MIN, TIME_MAX_MS


def strings(col: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """``col`` as text, and the mask of values that have none (nested values); bytes that are
    not UTF-8 are replaced, as in text input."""
    try:
        return col.cast(pa.string()), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type) or \
            pa.types.is_fixed_size_binary(col.type):
        values = [None if v is None else v.decode("utf-8", "replace") for v in col.to_pylist()]
        return pa.array(values, pa.string()), None
    return pa.nulls(len(col), pa.string()), col.is_valid()


def null_strings(col: pa.Array) -> pa.Array:
    nulls = pc.fill_null(pc.is_in(col, NULL_STRINGS), False)
    return pc.if_else(nulls, pa.scalar(None, pa.string()), col)


def null_dictionary(col: pa.DictionaryArray) -> pa.DictionaryArray:
    """``null_strings`` on a dictionary-encoded column, deciding each distinct value once."""
    dictionary = col.dictionary
    if not pa.types.is_string(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    nulls = pc.fill_null(pc.is_in(dictionary, NULL_STRINGS), False)
    if not pc.any(nulls).as_py():
        return col if dictionary is col.dictionary else \
            pa.DictionaryArray.from_arrays(col.indices, dictionary, safe=False)
    hit = pc.fill_null(pc.take(nulls, col.indices), False)
    codes = pc.if_else(hit, pa.scalar(None, col.indices.type), col.indices)
    return pa.DictionaryArray.from_arrays(codes, dictionary, safe=False)
