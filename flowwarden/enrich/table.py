"""A lookup table held as Arrow rows with a primary-key column, matched exactly or as CIDR
networks (longest prefix wins).

Exact matching compares the key's text with the primary key's text, as Panther compares a
selector's value with the table's primary key. A table row whose key is null, or (for a CIDR
table) not a network, never matches; of two rows with the same key, the later one wins (as
loading the rows into a keyed store would leave them). Unparseable keys asked of a CIDR table
never match and never raise.

>>> import pyarrow as pa
>>> rows = pa.table({"cidr": ["10.0.0.0/8", "10.1.0.0/16"], "site": ["corp", "lab"]})
>>> table = TableLookup("sites", rows, "cidr", CIDR)
>>> table.match(pa.array(["10.1.0.9", "10.9.0.1", "8.8.8.8"])).field("site").to_pylist()
['lab', 'corp', None]
>>> TableLookup("sites", rows, "site").match(pa.array(["lab"])).to_pylist()
[{'cidr': '10.1.0.0/16', 'site': 'lab'}]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa

from flowwarden.enrich.networks import NO_ROW, NetworkIndex

MatchKind = Literal["exact", "cidr"]
EXACT: MatchKind = "exact"
CIDR: MatchKind = "cidr"
MATCH_KINDS = (EXACT, CIDR)


class TableLookup:
    """A ``Lookup`` over ``rows`` keyed by column ``key``."""

    def __init__(self, name: str, rows: pa.Table, key: str, match: MatchKind = EXACT) -> None:
        if key not in rows.column_names:
            raise ValueError(f"the table has no primary key column {key!r}")
        if match not in MATCH_KINDS:
            raise ValueError(f"match must be one of {', '.join(MATCH_KINDS)}, not {match!r}")
        self._name = name
        self.key = key
        self.kind: MatchKind = match
        combined = rows.combine_chunks()
        self._rows = pa.StructArray.from_arrays(
            [combined.column(i).combine_chunks() for i in range(combined.num_columns)],
            fields=list(combined.schema))
        keys = combined.column(key).combine_chunks()
        texts = keys if pa.types.is_string(keys.type) else keys.cast(pa.string())
        self._index: NetworkIndex | None = None
        self._exact: dict[str, int] = {}
        if match == CIDR:
            self._index = NetworkIndex.build(texts)  # column-wise: no Python per row
            self.unparsed_rows = self._index.unparsed
        else:
            self._exact = {text: row for row, text in enumerate(texts.to_pylist())
                           if text is not None}
            self.unparsed_rows = ()

    @property
    def name(self) -> str:
        return self._name

    @property
    def row_type(self) -> pa.StructType:
        return self._rows.type

    def __len__(self) -> int:
        return len(self._rows)

    def positions(self, keys: pa.Array) -> np.ndarray:
        """Per key, the matching row's position, or ``NO_ROW``."""
        if self._index is not None:
            return self._index.find(keys)
        texts = keys.cast(pa.string()).to_pylist()
        # one dictionary probe per key: the enricher asks distinct keys only
        return np.fromiter((self._exact.get(t, NO_ROW) if t is not None else NO_ROW
                            for t in texts), dtype=np.int64, count=len(texts))

    def match(self, keys: pa.Array) -> pa.StructArray:
        found = self.positions(keys)
        return self._rows.take(pa.array(found, mask=found == NO_ROW))
