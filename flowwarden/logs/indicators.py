"""Panther's indicator fields (``p_any_*``): per record, the distinct values of the fields its
schema marks as an indicator kind (an IP address, an AWS account id, an AWS instance id).

What Panther does, and so what these columns hold (from the log processor Panther published,
``parsers/awslogs/vpc_flow.go`` and ``pantherlog``, and its parser tests):

- AWS.VPCFlow marks ``account`` as ``aws_account_id``, ``instanceId`` as ``aws_instance_id``
  and ``srcAddr``, ``dstAddr``, ``pktSrcAddr``, ``pktDstAddr`` as ``ip``; an ``account-id`` of
  ``unknown`` (AWS writes it for interfaces of AWS services) is no account, so no indicator.
- Each field is a set: distinct values, serialized sorted (Go's ``sort.Strings``: byte order,
  which is Arrow's string order too).
- A record with no value of a kind has no such field (``omitempty``), so ``event.get(k)`` is
  None there and ``event.get(k, [])`` is ``[]``. A column cannot be absent for some rows only,
  and flowwarden keeps null columns as keys (``event.get(k, [])`` would give None): the column
  holds ``[]`` instead, which every ``for x in event.get(k, [])`` in panther-analysis needs
  (``greynoise_malicious_ip``, ``admin_assigned``, the Okta helpers). ``if event.get(k)`` is
  false either way.

OCSF.NetworkActivity, by the same kinds: ``src_endpoint``/``dst_endpoint`` ``ip`` and
``intermediate_ips``, ``cloud.account.uid`` (1.1.0; ``cloud.account_uid`` in 1.0.0-rc.2, the
reader fills both), the endpoints' ``instance_uid``.

Building is vectorized: scalar columns are compared pairwise (element-wise, once per pair of
columns), which places each distinct value in its row's sorted list, and the strings move once;
list columns (OCSF ``intermediate_ips``) go through a sort of (row, value rank) integer keys,
the ranks coming from sorting the distinct values once. No Python runs per record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VALUES = pa.list_(pa.string())
IP_ADDRESSES = "p_any_ip_addresses"
AWS_ACCOUNT_IDS = "p_any_aws_account_ids"
AWS_INSTANCE_IDS = "p_any_aws_instance_ids"
NAMES: tuple[str, ...] = (IP_ADDRESSES, AWS_ACCOUNT_IDS, AWS_INSTANCE_IDS)
# Values that mean "none" in a field of that kind: a flow log's "-" (the readers null it in the
# fields they know; OCSF producers write it in others) and AWS's "unknown" account, both of which
# Panther's parser drops before the indicator.
NOT_A_VALUE: dict[str, tuple[str, ...]] = {IP_ADDRESSES: ("-",), AWS_ACCOUNT_IDS: ("unknown", "-"),
                                           AWS_INSTANCE_IDS: ("-",)}
NULL = pa.scalar(None, pa.string())


def any_values(columns: Sequence[pa.Array], drop: Sequence[str] = ()) -> pa.ListArray:
    """Per row, the distinct non-null values of the given string (or list of string) columns,
    sorted; ``drop`` lists values that count as none.

    >>> any_values([pa.array(["b", None, "c"]), pa.array(["a", "x", "c"])]).to_pylist()
    [['a', 'b'], ['x'], ['c']]
    >>> any_values([pa.array(["unknown", "1"])], drop=("unknown",)).to_pylist()
    [[], ['1']]
    """
    if not columns:
        raise ValueError("any_values needs at least one column")
    if any(pa.types.is_list(_value_type(c)) for c in columns):
        return _ranked(columns, drop)
    return _network([_text(c) for c in columns], drop)


def build(sources: Mapping[str, Sequence[pa.Array]], rows: int,
          keep: frozenset[str] | None = None) -> dict[str, pa.Array]:
    """Every indicator column (only those in ``keep``, when given) from its source columns;
    a kind without sources is all empty lists.

    >>> built = build({IP_ADDRESSES: [pa.array(["10.0.0.2"]), pa.array(["10.0.0.1"])]}, 1)
    >>> built[IP_ADDRESSES].to_pylist(), built[AWS_ACCOUNT_IDS].to_pylist()
    ([['10.0.0.1', '10.0.0.2']], [[]])
    """
    built: dict[str, pa.Array] = {}
    for name in NAMES:
        if keep is not None and name not in keep:
            continue
        columns = sources.get(name)
        built[name] = (any_values(columns, NOT_A_VALUE.get(name, ())) if columns
                       else empty_lists(rows))
    return built


def empty_lists(rows: int) -> pa.ListArray:
    """``rows`` empty lists: a kind the log type has no field of."""
    offsets = pa.array(np.zeros(rows + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array([], pa.string()))


def _value_type(col: pa.Array) -> pa.DataType:
    return col.type.value_type if pa.types.is_dictionary(col.type) else col.type


def _text(col: pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.cast(pa.string())


def _nulled(col: pa.Array, drop: Sequence[str]) -> pa.Array:
    if not drop:
        return col
    dropped = pc.fill_null(pc.is_in(col, pa.array(list(drop), pa.string())), False)
    return pc.if_else(dropped, NULL, col)


def _network(cols: list[pa.Array], drop: Sequence[str]) -> pa.ListArray:
    """Each row's distinct values across scalar columns, sorted, without moving a string until
    the one ``take`` at the end: each pair of columns is compared once (less, equal); a value
    equal to one in an earlier column is dropped, and a kept value's place in its row is the
    number of kept values of the row below it."""
    width, rows = len(cols), len(cols[0])
    valid = [_present(c, drop) for c in cols]
    if width == 1:
        return _single(cols[0], valid[0])
    less: dict[tuple[int, int], np.ndarray] = {}
    same: dict[tuple[int, int], np.ndarray] = {}
    for i in range(width):
        for j in range(i + 1, width):
            less[i, j] = _mask(pc.fill_null(pc.less(cols[i], cols[j]), False))
            same[i, j] = _mask(pc.fill_null(pc.equal(cols[i], cols[j]), False))
    keep = list(valid)
    for i in range(width):
        for j in range(i):
            keep[i] = keep[i] & ~same[j, i]
    place = [np.zeros(rows, dtype=np.int32) for _ in range(width)]
    for i in range(width):
        for j in range(i + 1, width):
            both = keep[i] & keep[j]
            below = both & less[i, j]  # cell i lies below cell j
            place[j] += below
            place[i] += both & ~below
    counts = np.sum(keep, axis=0, dtype=np.int32)
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    source = np.empty(int(offsets[-1]), dtype=np.int64)
    for i in range(width):
        where = np.flatnonzero(keep[i])
        source[offsets[where] + place[i][where]] = where + i * rows
    values = pa.concat_arrays(cols).take(pa.array(source))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _single(col: pa.Array, present: np.ndarray) -> pa.ListArray:
    """One column: each row's value, or nothing; with every value present they are used as
    they are."""
    if present.all():
        offsets = np.arange(len(col) + 1, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), col)
    offsets = np.zeros(len(col) + 1, dtype=np.int32)
    np.cumsum(present, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), col.filter(pa.array(present)))


def _present(col: pa.Array, drop: Sequence[str]) -> np.ndarray:
    """Where a column holds a value: not null, and not one of ``drop``."""
    present = _mask(col.is_valid()) if col.null_count else np.ones(len(col), dtype=bool)
    for value in drop:  # one comparison with a scalar each: cheaper than is_in and if_else
        present &= ~_mask(pc.fill_null(pc.equal(col, value), False))
    return present


def _mask(values: pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _ranked(columns: Sequence[pa.Array], drop: Sequence[str]) -> pa.ListArray:
    """``any_values`` for columns that include lists: every (row, value) pair, the values
    ranked once among the distinct ones, sorted and deduplicated as integer keys."""
    rows = len(columns[0])
    owners: list[np.ndarray] = []
    values: list[pa.Array] = []
    for col in columns:
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if pa.types.is_list(_value_type(col)):
            owners.append(np.asarray(pc.list_parent_indices(col), dtype=np.int64))
            values.append(_text(pc.list_flatten(col)))
        else:
            owners.append(np.arange(rows, dtype=np.int64))
            values.append(_text(col))
    flat = _nulled(pa.concat_arrays(values), drop)
    owner = np.concatenate(owners)
    valid = np.asarray(flat.is_valid(), dtype=bool)
    flat, owner = flat.filter(pa.array(valid)), owner[valid]
    encoded = pc.dictionary_encode(flat)
    distinct = encoded.dictionary
    order = np.asarray(pc.sort_indices(distinct), dtype=np.int64)
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[order] = np.arange(len(distinct), dtype=np.int64)
    width = max(len(distinct), 1)
    keys = np.sort(owner * width + rank[np.asarray(encoded.indices, dtype=np.int64)])
    if len(keys):  # sorted keys: a repeat is next to its first occurrence
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    owner_of, rank_of = np.divmod(keys, width)
    offsets = np.searchsorted(owner_of, np.arange(rows + 1, dtype=np.int64)).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), distinct.take(pa.array(order[rank_of])))

