"""A selector's values in a batch: a column name (``dstAddr``), a ``$.``-path or a dotted path
into struct columns (``$.src_endpoint.ip``, ``src_endpoint.ip``), or an indicator field
(``p_any_ip_addresses``). Names are found as Panther's events find keys: exactly, else in any
case. A path that crosses a list gives several values per row: a list selector.

>>> import pyarrow as pa
>>> batch = pa.record_batch({"a": pa.array([{"b": "x"}, None]), "l": [["1", "2"], []]})
>>> found = select(batch, "$.a.b")
>>> found.values.to_pylist(), found.rows is None
(['x', None], True)
>>> found = select(batch, "l")
>>> found.values.to_pylist(), found.rows.tolist()
(['1', '2'], [0, 0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Selected:
    """A selector's values: one per row (``rows`` None), or many, each with its row."""

    values: pa.Array
    rows: np.ndarray | None

    @property
    def is_list(self) -> bool:
        return self.rows is not None


def path_of(selector: str) -> tuple[str, ...]:
    """The field names a selector walks.

    >>> path_of("$.httpRequest.clientIp"), path_of("$['a'].b[*]"), path_of("srcAddr")
    (('httpRequest', 'clientIp'), ('a', 'b'), ('srcAddr',))
    """
    text = selector.removeprefix("$").removeprefix(".")
    text = text.replace("[*]", "").replace("['", ".").replace("']", "")
    return tuple(part for part in text.split(".") if part)


def select(batch: pa.RecordBatch, selector: str) -> Selected | None:
    """The selector's values in ``batch``, or None where the batch does not hold them (or they
    are not scalars: a selector naming an object matches nothing)."""
    names = batch.schema.names
    column = _find(names, selector)
    path = (selector,) if column is not None else path_of(selector)
    first = column if column is not None else _find(names, path[0]) if path else None
    if first is None:
        return None
    current: pa.Array = batch.column(first)
    rows: np.ndarray | None = None
    for name in path[1:]:
        current, rows = _unlist(current, rows)
        if not pa.types.is_struct(current.type):
            return None
        fields = [current.type.field(i).name for i in range(current.type.num_fields)]
        found = _find(fields, name)
        if found is None:
            return None
        current = pc.struct_field(current, [fields.index(found)])
    current, rows = _unlist(current, rows)
    if pa.types.is_nested(current.type):
        return None
    return Selected(current, rows)


def _unlist(values: pa.Array, rows: np.ndarray | None) -> tuple[pa.Array, np.ndarray | None]:
    while pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        parents = pc.list_parent_indices(values).to_numpy()
        rows = parents if rows is None else rows[parents]
        values = pc.list_flatten(values)
    return values, rows


def _find(names: list[str], wanted: str) -> str | None:
    if wanted in names:
        return wanted
    folded = [n for n in names if n.lower() == wanted.lower()]
    return folded[0] if len(folded) == 1 else None
