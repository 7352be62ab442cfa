"""Arrow columns from parsed JSON objects: known columns cast to a declared type, the rest
inferred so that ``to_pylist()`` gives back the values as given (conflicting types become a
dense union of one child per JSON kind).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from flowwarden.logs.limits import MAX_NESTING, too_deep

CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)
DECIMAL = pa.decimal128(38, 0)


def loads(line: str) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON object from one line, or None and a reason (nesting is bounded: the decoder and
    every later step recurse).

    >>> loads('{"a": ' + "[" * 200 + "]" * 200 + "}")[1]
    'nested deeper than 100 levels'
    """
    if too_deep(line):
        return None, f"nested deeper than {MAX_NESTING} levels"
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"not a JSON object: {type(value).__name__}"
    return value, None


def infer_array(values: list[Any]) -> pa.Array:
    """An Arrow array holding ``values`` exactly, whatever mix of JSON types they are."""
    try:
        return pa.array(values)
    except CONVERSION_ERRORS:
        pass
    kinds = {_kind(v) for v in values if v is not None}
    mask = pa.array([v is None for v in values])
    if kinds == {"dict"}:
        names = _keys(v for v in values if v is not None)
        children = [infer_array([v.get(k) if v else None for v in values]) for k in names]
        return pa.StructArray.from_arrays(children, names=names, mask=mask)
    if kinds == {"list"}:
        lengths = [len(v) if v is not None else 0 for v in values]
        offsets = [0]
        for length in lengths:
            offsets.append(offsets[-1] + length)
        flat = [x for v in values if v is not None for x in v]
        child = infer_array(flat)
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), child, mask=mask)
    if kinds == {"bigint"}:
        return pa.array(values, DECIMAL)
    return _union(values, sorted(kinds))


def _union(values: list[Any], kinds: list[str]) -> pa.Array:
    groups: dict[str, list[Any]] = {k: [] for k in kinds or ["null"]}
    codes, offsets = [], []
    for value in values:
        kind = _kind(value) if value is not None else next(iter(groups))
        codes.append(list(groups).index(kind))
        offsets.append(len(groups[kind]))
        groups[kind].append(value)
    children = [infer_array(items) for items in groups.values()]
    return pa.UnionArray.from_dense(
        pa.array(codes, pa.int8()), pa.array(offsets, pa.int32()), children, list(groups)
    )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "bigint"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, list):
        return "list"
    return "str"


def _keys(objects: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for obj in objects:
        for key in obj:
            seen[key] = None
    return list(seen)


def merge_type(known: pa.DataType, inferred: pa.DataType | None) -> pa.DataType:
    """``known``, widened with any struct fields that only ``inferred`` has."""
    if inferred is None:
        return known
    if pa.types.is_struct(known) and pa.types.is_struct(inferred):
        theirs = {
            inferred.field(i).name: inferred.field(i).type for i in range(inferred.num_fields)
        }
        fields = [
            pa.field(f.name, merge_type(f.type, theirs.get(f.name)))
            for f in (known.field(i) for i in range(known.num_fields))
        ]
        names = {f.name for f in fields}
        fields += [pa.field(n, t) for n, t in theirs.items() if n not in names]
        return pa.struct(fields)
    if pa.types.is_list(known) and pa.types.is_list(inferred):
        return pa.list_(merge_type(known.value_type, inferred.value_type))
    return known


def known_column(values: list[Any], type_: pa.DataType) -> tuple[pa.Array, dict[int, str]]:
    """``values`` as ``type_`` (widened by inference); the reason for each value that won't cast."""
    try:
        inferred: pa.DataType | None = pa.array(values).type
    except CONVERSION_ERRORS:
        inferred = None
    merged = merge_type(type_, inferred)
    try:
        return pa.array(values, merged), {}
    except CONVERSION_ERRORS:
        pass
    bad: dict[int, str] = {}
    pieces: list[pa.Array] = []
    for index, value in enumerate(values):
        try:
            pieces.append(pa.array([value], type_))
        except CONVERSION_ERRORS as exc:
            bad[index] = f"cannot read {json.dumps(value, default=str)[:80]} as {type_}: {exc}"
            pieces.append(pa.nulls(1, type_))
    try:
        return pa.array([None if i in bad else v for i, v in enumerate(values)], type_), bad
    except CONVERSION_ERRORS:  # values that convert alone but not together (``[]`` as a struct)
        return pa.concat_arrays(pieces), bad


def build_columns(
    rows: list[dict[str, Any]], known: dict[str, pa.DataType], skip: frozenset[str] = frozenset()
) -> tuple[dict[str, pa.Array], dict[int, str]]:
    """Columns for ``rows``: known keys cast to their type, others inferred; bad rows' reasons.

    Rows named in the returned reasons are still present in the columns (as nulls where they
    failed); the caller filters them out.
    """
    columns: dict[str, pa.Array] = {}
    reasons: dict[int, str] = {}
    for key in _keys([dict.fromkeys(known), *rows]):
        if key in skip:
            continue
        values = [row.get(key) for row in rows]
        if key in known:
            columns[key], bad = known_column(values, known[key])
            for index, reason in bad.items():
                reasons.setdefault(index, f"{key}: {reason}")
        else:
            columns[key], bad = _inferred(key, values)
            for index, reason in bad.items():
                reasons.setdefault(index, reason)
    return columns, reasons


def _inferred(key: str, values: list[Any]) -> tuple[pa.Array, dict[int, str]]:
    """``infer_array(values)``, with the values Arrow cannot hold (an integer of more than 38
    digits) as reasons for their rows, and nulls in their place.

    >>> column, bad = _inferred("n", [1, 10**40])
    >>> column.to_pylist(), sorted(bad)
    ([1, None], [1])
    """
    try:
        return infer_array(values), {}
    except CONVERSION_ERRORS:
        pass
    bad: dict[int, str] = {}
    for index, value in enumerate(values):
        try:
            infer_array([value])
        except CONVERSION_ERRORS as exc:
            shown = json.dumps(value, default=str)[:80]
            bad[index] = f"{key}: cannot hold {shown}: {exc}"
    kept = [None if i in bad else v for i, v in enumerate(values)]
    try:
        return infer_array(kept), bad
    except CONVERSION_ERRORS as exc:  # values that fit alone but not together: none kept
        for index, value in enumerate(kept):
            if value is not None:
                bad[index] = f"{key}: cannot hold its values together: {exc}"
        return pa.nulls(len(values)), bad
