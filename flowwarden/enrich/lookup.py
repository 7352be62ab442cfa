"""What every lookup table offers the enricher: its rows for a set of distinct keys."""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa


class Lookup(Protocol):
    """One lookup table, by its ``LookupName``.

    ``match`` is asked only distinct keys (the enricher deduplicates and caches across batches),
    so its cost grows with distinct addresses, not with records.
    """

    @property
    def name(self) -> str: ...

    @property
    def row_type(self) -> pa.StructType:
        """The type of one matched row, as Panther shows it under ``p_enrichment``."""
        ...

    def match(self, keys: pa.Array) -> pa.Array:
        """One row per key (a ``StructArray`` of ``row_type``, as long as ``keys``), null where
        the table holds no match; ``keys`` are strings (addresses for CIDR tables)."""
        ...
