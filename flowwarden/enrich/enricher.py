"""The ``p_enrichment`` column: each batch's selector values matched against the lookup tables
once per distinct value, and laid out as Panther lays it out.

For a row, ``p_enrichment.<LookupName>.<selector>`` is the matched table row plus ``p_match``
(the selector's value that matched) for a scalar selector, or the list of those rows for a list
selector such as ``p_any_ip_addresses`` (only the values that matched, in the list's order).
In Arrow the column is a struct of tables, each a struct of selectors: a selector that matched
nothing in a row is null there, a table with no matching selector is null, and ``p_enrichment``
is null where no table matched. ``enrichment_view`` gives a rule Panther's shape, where absent
entries are missing keys rather than None: ``event.get("p_enrichment")`` is None when nothing
matched, and ``deep_get(event, "p_enrichment", table)`` is None when that table did not.

A table laid out ``by-value`` (``layout:`` in ``flowwarden.yaml``, for panther-analysis's
GreyNoise V3 and OTX helpers) keys its matches by the matched value instead:
``p_enrichment.<LookupName>.<value>`` is the row (with ``p_match``), once per value whatever
the selectors that found it. A struct cannot have data-dependent field names, so in Arrow the
table is a ``map<string, row>`` (null where nothing matched) that ``enrichment_view`` turns
into the dict; compiled SQL sees a map it can index but never names statically, which is why
rules reading this layout (by a value they loop over) run in Python.

Cost: the distinct values of each selector (a Parquet dictionary column gives them for free)
are asked of each table only when not asked before (a cache across batches, bounded by
``max_cache`` distinct values per table), and the rows are placed with ``take``: nothing runs
per record in Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.config import BY_SELECTOR, BY_VALUE
from flowwarden.enrich.lookup import Lookup
from flowwarden.enrich.selectors import Selected, path_of, select
from flowwarden.logs.common import dictionary_positions

ENRICHMENT = "p_enrichment"
MATCH_FIELD = "p_match"
MAX_CACHE = 1_000_000


# What a scan's compiled queries read of p_enrichment: per table name, per selector key, the
# fields of its rows (None: whole rows); None for a whole table. What is not named is not read.
Reads = Mapping[str, Mapping[str, frozenset[str] | None] | None]


@dataclass(frozen=True)
class BoundTable:
    """A lookup table with the selectors of each log type that read into it."""

    lookup: Lookup
    selectors: Mapping[str, tuple[str, ...]]  # log type -> selectors
    layout: str = BY_SELECTOR  # or BY_VALUE: matches keyed by the matched value


# A cache of up to this many keys (or HASHED_PROBE_RATIO per distinct value asked) is probed
# column-wise, by hashing its keys anew (Arrow keeps no hash table between calls); a bigger one
# through a dict, one probe per distinct value.
HASHED_PROBE_KEYS = 65_536
HASHED_PROBE_RATIO = 16


@dataclass
class _Cache:
    """Which row each value asked before matched (-1: none), and those rows.

    ``keys`` are the values asked, ``slots`` their rows in ``rows``. A batch's distinct values
    are found among the keys column-wise while the cache is small next to them (the common case:
    a few thousand addresses, asked again every batch), else one dict probe each.
    """

    keys: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    slots: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rows: pa.Array | None = None
    _positions: dict[str, int] | None = None  # key -> index in keys, built when first needed

    def find(self, lookup: Lookup, distinct: pa.Array, limit: int) -> np.ndarray:
        distinct = distinct.cast(pa.string())
        valid = distinct.is_valid().to_numpy(zero_copy_only=False)
        known = self._known(distinct)
        new = np.flatnonzero((known < 0) & valid)
        if len(self.keys) + len(new) > limit:  # start afresh rather than grow past the limit
            self._clear()
            known = np.full(len(distinct), -1, dtype=np.int64)
            new = np.flatnonzero(valid)
        if len(new):
            known[new] = len(self.keys) + np.arange(len(new))
            self._ask(lookup, distinct.take(pa.array(new, pa.int64())))
        return np.where(known >= 0, self.slots[np.maximum(known, 0)], -1) if len(self.slots) \
            else np.full(len(distinct), -1, dtype=np.int64)

    def _clear(self) -> None:
        fresh = _Cache()
        self.keys, self.slots, self.rows, self._positions = fresh.keys, fresh.slots, None, None

    def _known(self, distinct: pa.Array) -> np.ndarray:
        """Per distinct value, its index among the keys, or -1."""
        if not len(self.keys) or not len(distinct):
            return np.full(len(distinct), -1, dtype=np.int64)
        if len(self.keys) <= max(HASHED_PROBE_KEYS, HASHED_PROBE_RATIO * len(distinct)):
            found = pc.index_in(distinct, value_set=self.keys)  # the keys hold no null
            return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False),
                              dtype=np.int64)
        if self._positions is None:
            self._positions = {k: i for i, k in enumerate(self.keys.to_pylist())}
        positions = self._positions
        return np.fromiter((positions.get(t, -1) if t is not None else -1
                            for t in distinct.to_pylist()), dtype=np.int64, count=len(distinct))

    def _ask(self, lookup: Lookup, keys: pa.Array) -> None:
        found = lookup.match(keys)
        if len(found) != len(keys):
            raise ValueError(f"lookup {lookup.name} answered {len(found)} rows for {len(keys)} keys")
        matched = found.is_valid().to_numpy(zero_copy_only=False)
        start = len(self.rows) if self.rows is not None else 0
        kept = found.filter(pa.array(matched))
        # matched rows are few next to records; growing the store costs O(matched) per batch
        self.rows = kept if self.rows is None else pa.concat_arrays([self.rows, kept])
        slots = np.full(len(keys), -1, dtype=np.int64)
        slots[matched] = start + np.arange(int(matched.sum()))
        if self._positions is not None:
            first = len(self.keys)
            self._positions.update((k, first + i) for i, k in enumerate(keys.to_pylist()))
        self.keys = pa.concat_arrays([self.keys, keys])
        self.slots = np.concatenate([self.slots, slots])


class Enricher:
    """Adds ``p_enrichment`` to batches of the log types its tables are associated with."""

    def __init__(self, tables: Sequence[BoundTable], max_cache: int = MAX_CACHE) -> None:
        self.tables = list(tables)
        self.max_cache = max_cache
        self._caches = [_Cache() for _ in self.tables]

    def log_types(self) -> frozenset[str]:
        return frozenset(t for table in self.tables for t in table.selectors)

    def selectors(self, log_type: str) -> list[tuple[int, tuple[str, ...]]]:
        return [(i, t.selectors[log_type]) for i, t in enumerate(self.tables)
                if t.selectors.get(log_type)]

    def columns(self, log_type: str) -> frozenset[str]:
        """The columns the selectors of ``log_type`` read (for a projected read): a selector's
        own name and the first field of its path, since which one the batch has decides.

        >>> from flowwarden.enrich.table import TableLookup
        >>> lookup = TableLookup("t", pa.table({"ip": ["192.0.2.1"]}), "ip")
        >>> sorted(Enricher([BoundTable(lookup, {"X": ("srcAddr", "$.dst.ip")})]).columns("X"))
        ['$.dst.ip', 'dst', 'srcAddr']
        """
        found: set[str] = set()
        for _, selectors in self.selectors(log_type):
            for selector in selectors:
                found.add(selector)
                found.update(path_of(selector)[:1])
        return frozenset(found)

    def lookup(self, table: str, key: Any) -> dict[str, Any] | None:
        """The row of ``table`` that ``key`` matches, or None (also for a table not loaded): the
        data behind Panther's ``event.lookup(table, key)``, through the same cache."""
        for index, bound in enumerate(self.tables):
            if bound.lookup.name == table and key is not None:
                cache = self._caches[index]
                [slot] = cache.find(bound.lookup, pa.array([str(key)]), self.max_cache).tolist()
                if slot < 0 or cache.rows is None:
                    return None
                row: dict[str, Any] = cache.rows[slot].as_py()
                return row
        return None

    def enrich(self, batch: pa.RecordBatch, log_type: str, reads: Reads | None = None
               ) -> pa.RecordBatch:
        """``batch`` with a ``p_enrichment`` column (replacing one it had); unchanged when no
        table is associated with ``log_type``.

        ``reads`` narrows it to what is read of it (``Reads``); None: every table's whole rows.
        """
        chosen = [(i, selectors, self._read(i, selectors, reads))
                  for i, selectors in self.selectors(log_type)]
        chosen = [(i, selectors, read) for i, selectors, read in chosen if read]
        if not chosen:
            return batch
        shared: dict[tuple[str, ...], Any] = {}  # tables selecting the same fields share
        tables = [self._table(batch, i, tuple(read), None if reads is None else read, shared)
                  for i, _, read in chosen]
        names = [self.tables[i].lookup.name for i, _, _ in chosen]
        column = _struct(tables, names, batch.num_rows)
        keep = [n for n in batch.schema.names if n != ENRICHMENT]
        return pa.RecordBatch.from_arrays([*(batch.column(n) for n in keep), column],
                                          [*keep, ENRICHMENT])

    def _read(self, index: int, selectors: tuple[str, ...], reads: Reads | None
              ) -> dict[str, frozenset[str] | None]:
        """The selectors of table ``index`` that ``reads`` names, each with the fields read of
        its rows (all of them, whole, when ``reads`` is None or names the whole table)."""
        bound = self.tables[index]
        if reads is None or (bound.lookup.name in reads and reads[bound.lookup.name] is None) \
                or bound.layout == BY_VALUE and bound.lookup.name in reads:
            return dict.fromkeys(selectors)
        named = reads.get(bound.lookup.name) or {}
        return {s: named[selector_key(s)] for s in selectors if selector_key(s) in named}

    def _table(self, batch: pa.RecordBatch, index: int, selectors: tuple[str, ...],
               fields: Mapping[str, frozenset[str] | None] | None = None,
               shared: dict[tuple[str, ...], Any] | None = None) -> pa.Array:
        """The column of table ``index``: its matches of ``selectors``, with the ``fields`` of
        each selector's rows (by selector; None: whole rows). ``shared`` keeps the selectors'
        values and distinct values for the batch's other tables."""
        lookup = self.tables[index].lookup
        by_value = self.tables[index].layout == BY_VALUE
        row_type = matched_type(lookup.row_type)
        # a narrowed column is for the compiled queries alone: its texts dictionary-encoded
        types = [row_type if by_value or fields is None else
                 matched_type(lookup.row_type, fields[s], encoded=True) for s in selectors]
        shared = {} if shared is None else shared
        if selectors not in shared:
            found = [_as_text(select(batch, selector)) for selector in selectors]
            present = [f for f in found if f is not None]
            # one question per distinct value of all the selectors together (srcAddr, dstAddr
            # and p_any_ip_addresses mostly repeat each other)
            shared[selectors] = found, present, present and _distinct_entries(
                [f.values for f in present])
        found, present, combined = shared[selectors]
        if not present:
            return pa.nulls(batch.num_rows, pa.map_(pa.string(), row_type) if by_value else
                            pa.struct(list(zip(map(selector_key, selectors), types, strict=True))))
        distinct, entries = combined
        cache = self._caches[index]
        slots = np.append(cache.find(lookup, distinct, self.max_cache), -1)
        store = cache.rows if cache.rows is not None else pa.nulls(0, lookup.row_type)
        if by_value:
            where = np.concatenate([_per_record(one, local) for one, local in entries])
            return _by_value(found, where, slots, distinct, store, row_type, batch.num_rows)
        parts, next_entries = [], iter(entries)
        for selected, wanted in zip(found, types, strict=True):
            if selected is None:
                parts.append(pa.nulls(batch.num_rows, wanted))
                continue
            one, local = next(next_entries)
            if fields is not None and not selected.is_list:
                # for the compiled queries: per record, only whether its value matched
                parts.append(_selector_entries(one, slots[local], store, wanted))
                continue
            mine = _per_record(one, local)
            parts.append(_selector(selected, mine, slots[mine], distinct, store, wanted,
                                   batch.num_rows))
        return _struct(parts, [selector_key(s) for s in selectors], batch.num_rows)


def selector_key(selector: str) -> str:
    """The key a selector's matches have under their table: the selector as written, without
    the JSONPath root (``$.client.ipAddress`` is ``client.ipAddress``, as Panther keys it).

    >>> selector_key("$.src_endpoint.ip"), selector_key("srcAddr")
    ('src_endpoint.ip', 'srcAddr')
    """
    return selector.removeprefix("$.")


def _as_text(found: Selected | None) -> Selected | None:
    """The selector's values as text (keys are compared as text), or None for values that have
    no text form (binary that is not UTF-8, ...): those match nothing rather than stop a scan."""
    if found is None:
        return None
    values = found.values
    try:
        if isinstance(values, pa.DictionaryArray):  # cast the few distinct values only
            return Selected(pa.DictionaryArray.from_arrays(
                values.indices, values.dictionary.cast(pa.string())), found.rows)
        return Selected(values.cast(pa.string()), found.rows)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


Entries = list[tuple[pa.DictionaryArray, np.ndarray]]


def _distinct_entries(values: list[pa.Array]) -> tuple[pa.Array, Entries]:
    """The distinct non-null strings of ``values`` together, and each array dictionary-encoded
    with its entries' positions among them (then its null slot: one past the end).

    Dictionary-encoded columns (what Parquet gives) are combined through their dictionaries:
    the work grows with the distinct values, not with the records.

    >>> text = pa.array(["b", None, "a"])
    >>> found, entries = _distinct_entries([pc.dictionary_encode(text), text])
    >>> found.to_pylist(), [local.tolist() for _, local in entries]
    (['b', 'a'], [[0, 1, 2], [0, 1, 2]])
    >>> np.concatenate([_per_record(one, local) for one, local in entries]).tolist()
    [0, 2, 1, 0, 2, 1]
    """
    encoded = [v if isinstance(v, pa.DictionaryArray) else pc.dictionary_encode(v)
               for v in values]
    merged = pc.dictionary_encode(pa.concat_arrays([e.dictionary for e in encoded]))
    distinct: pa.Array = merged.dictionary
    slot = dictionary_positions(merged)
    entries, start = [], 0
    for one in encoded:
        size = len(one.dictionary)
        entries.append((one, np.append(slot[start:start + size], len(distinct)).astype(np.int64)))
        start += size
    return distinct, entries


def _per_record(one: pa.DictionaryArray, local: np.ndarray) -> np.ndarray:
    """Each record's position among the distinct values (``_distinct_entries``)."""
    return np.take(local, dictionary_positions(one))


def _selector_entries(one: pa.DictionaryArray, taken: np.ndarray, store: pa.Array,
                      row_type: pa.StructType) -> pa.Array:
    """A scalar selector's column from its dictionary-encoded values, worked out per entry:
    ``taken`` is each entry's row in the store (-1: none; its last item, the null slot's).
    Per record it costs one look-up of whether its entry matched: every encoded field
    (``matched_type``) keeps the column's own indices, with the entries' values as its
    dictionary (null for an entry that matched nothing); other fields are taken per record.
    """
    rows = len(one)
    matched = taken >= 0
    if not matched.any():  # the common case for an IOC table: nothing to place
        return pa.nulls(rows, row_type)
    positions = dictionary_positions(one)
    missing = np.take(~matched, positions)
    unmatched = ~matched[:-1]
    rows_of_entries = pa.array(taken[:-1], mask=unmatched)
    indices = one.indices.cast(pa.int32())
    children = []
    for f in row_type:
        values = (one.dictionary.take(pa.array(np.arange(len(unmatched)), mask=unmatched))
                  if f.name == MATCH_FIELD else
                  _column(store, store.type.get_field_index(f.name)).take(rows_of_entries))
        children.append(
            pa.DictionaryArray.from_arrays(indices, values.cast(f.type.value_type))
            if pa.types.is_dictionary(f.type) else _placed(values, positions, missing, f.type))
    return pa.StructArray.from_arrays(children, fields=list(row_type), mask=pa.array(missing))


def _selector(found: Selected, where: np.ndarray, taken: np.ndarray, distinct: pa.Array,
              store: pa.Array, row_type: pa.StructType, rows: int) -> pa.Array:
    """One selector's column: per value, its distinct value's position (``where``) and its
    row in the cache's store (``taken``, -1 where none)."""
    if not (taken >= 0).any():  # the common case for an IOC table: nothing to place
        return pa.nulls(rows, pa.list_(row_type) if found.is_list else row_type)
    if not found.is_list:
        return _matched_rows(where, taken, distinct, store, row_type)
    assert found.rows is not None
    keep = np.flatnonzero(taken >= 0)
    counts = np.bincount(found.rows[keep], minlength=rows).astype(np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    items = _matched_rows(where[keep], taken[keep], distinct, store, row_type)
    return pa.ListArray.from_arrays(offsets, items, mask=pa.array(counts == 0))


def _by_value(found: list[Selected | None], where: np.ndarray, slots: np.ndarray,
              distinct: pa.Array, store: pa.Array, row_type: pa.StructType,
              rows: int) -> pa.Array:
    """A ``by-value`` table's column: per record, a map from each matched value (of any
    selector) to its row; ``where`` holds the selectors' values' distinct positions, in
    order, and ``slots`` each distinct value's row in the store (-1: none)."""
    records, positions, start = [], [], 0
    for selected in found:
        if selected is None:
            continue
        mine = where[start:start + len(selected.values)]
        start += len(selected.values)
        owner = selected.rows if selected.rows is not None else np.arange(len(mine))
        matched = slots[mine] >= 0
        records.append(np.asarray(owner, dtype=np.int64)[matched])
        positions.append(mine[matched].astype(np.int64))
    map_type = pa.map_(pa.string(), row_type)
    if not any(len(r) for r in records):
        return pa.nulls(rows, map_type)
    # one entry per (record, value): srcAddr and p_any_ip_addresses mostly repeat each other
    width = len(distinct) + 1
    pairs = np.unique(np.concatenate(records) * width + np.concatenate(positions))
    owner, position = pairs // width, pairs % width
    counts = np.bincount(owner, minlength=rows)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    items = _matched_rows(position, slots[position], distinct, store, row_type)
    return pa.MapArray.from_arrays(offsets, distinct.take(pa.array(position)), items,
                                   type=map_type, mask=pa.array(counts == 0))


def _matched_rows(where: np.ndarray, taken: np.ndarray, distinct: pa.Array, store: pa.Array,
                  row_type: pa.StructType) -> pa.StructArray:
    """The stored rows at ``taken`` with ``p_match`` (the fields of ``row_type``), null where
    ``taken`` is -1."""
    missing = taken < 0
    # each column placed on its own: half the cost of taking the struct, then splitting it
    children = [_placed(distinct, where, missing, f.type) if f.name == MATCH_FIELD else
                _placed(_column(store, store.type.get_field_index(f.name)), taken, missing, f.type)
                for f in row_type]
    return pa.StructArray.from_arrays(children, fields=list(row_type), mask=pa.array(missing))


def _placed(values: pa.Array, positions: np.ndarray, missing: np.ndarray, kind: pa.DataType
            ) -> pa.Array:
    """``values`` at ``positions`` (null where ``missing``) as a column of ``kind``; a
    dictionary-encoded kind keeps ``values`` as its dictionary, so no text is copied per
    record."""
    indices = pa.array(positions.astype(np.int32, copy=False), mask=missing)
    if pa.types.is_dictionary(kind):
        return pa.DictionaryArray.from_arrays(indices, values.cast(kind.value_type))
    return values.cast(kind).take(indices)


def _column(rows: pa.StructArray, index: int) -> pa.Array:
    """Column ``index`` of ``rows``, null where a row is."""
    return rows.field(index) if rows.null_count == 0 else pc.struct_field(rows, [index])


def matched_type(row_type: pa.StructType, fields: frozenset[str] | None = None,
                 encoded: bool = False) -> pa.StructType:
    """A table's row type with ``p_match`` (replacing a column of that name); with ``fields``,
    only those of its fields (``p_match`` alone when none is the table's: a row must have one);
    ``encoded``, its text fields dictionary-encoded (a row's text is then a position among the
    table's, which costs nothing to place per record).

    >>> matched_type(pa.struct([("ip", pa.string()), ("asn", pa.int64())]), frozenset({"asn"}))
    StructType(struct<asn: int64>)
    >>> matched_type(pa.struct([("ip", pa.string())]), encoded=True).field("p_match").type
    DictionaryType(dictionary<values=string, indices=int32, ordered=0>)
    """
    kept = [row_type.field(i) for i in range(row_type.num_fields)
            if row_type.field(i).name != MATCH_FIELD]
    kept.append(pa.field(MATCH_FIELD, pa.string()))
    if fields is not None:
        kept = [f for f in kept if f.name in fields] or kept[-1:]
    if encoded:
        kept = [f.with_type(pa.dictionary(pa.int32(), f.type)) if _encodable(f.type) else f
                for f in kept]
    return pa.struct(kept)


def _encodable(kind: pa.DataType) -> bool:
    """Whether a field of ``kind`` is dictionary-encoded in a narrowed column: the scalars the
    queries compare (nested values are placed per record)."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or \
        pa.types.is_string_view(kind) or pa.types.is_integer(kind) or \
        pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _struct(children: list[pa.Array], names: list[str], rows: int) -> pa.StructArray:
    """A struct of ``children``, null in the rows where every child is null."""
    if not children:
        return pa.nulls(rows, pa.struct([]))
    present = pc.is_valid(children[0])
    for child in children[1:]:
        present = pc.or_(present, pc.is_valid(child))
    return pa.StructArray.from_arrays(children, names=names, mask=pc.invert(present))


def enrichment_view(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``p_enrichment`` of one row as Panther shows it: tables and selectors that matched nothing
    left out (``None`` when nothing matched at all); matched rows as they are.

    >>> enrichment_view({"tor": {"srcAddr": {"ip": "1.2.3.4", "p_match": "1.2.3.4"},
    ...                          "dstAddr": None}, "asn": None})
    {'tor': {'srcAddr': {'ip': '1.2.3.4', 'p_match': '1.2.3.4'}}}
    >>> enrichment_view({"tor": None}) is None
    True

    A ``by-value`` table arrives as a map's entries, ``(value, row)`` pairs:

    >>> enrichment_view({"gn_noise": [("1.2.3.4", {"ip": "1.2.3.4", "p_match": "1.2.3.4"})]})
    {'gn_noise': {'1.2.3.4': {'ip': '1.2.3.4', 'p_match': '1.2.3.4'}}}
    """
    if not value:
        return None
    shown = {table: {sel: row for sel, row in _entries(selectors) if row is not None}
             for table, selectors in value.items() if selectors}
    shown = {table: selectors for table, selectors in shown.items() if selectors}
    return shown or None


def _entries(selectors: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """A table's (key, row) pairs: a struct's fields (by selector) or a map's entries (by
    value)."""
    return list(selectors.items()) if isinstance(selectors, Mapping) else list(selectors)
