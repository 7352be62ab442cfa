"""A source read into rows: one ``pa.Table`` keyed by a network column, matched by longest
prefix through ``enrich.table``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from flowwarden.enrich.sources.problems import Problems
from flowwarden.enrich.table import TableLookup


@dataclass(frozen=True)
class SourceTable:
    """A lookup table built from a source file.

    ``rows`` holds one row per distinct network; ``key`` names its column of canonical network
    text (a plain address is its /32 or /128); ``problems`` lists what the file held that was
    skipped.
    """

    name: str
    rows: pa.Table
    key: str
    problems: Problems

    def lookup(self) -> SourceLookup:
        return SourceLookup(self)


class SourceLookup(TableLookup):
    """A source's rows matched by longest prefix, with the problems met reading the file."""

    def __init__(self, table: SourceTable) -> None:
        super().__init__(table.name, table.rows, table.key, "cidr")
        self.source = table
        self.problems = table.problems


def rows_table(records: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """The rows as a table of ``schema`` (built in Python once, at load time)."""
    return pa.Table.from_pylist(list(records), schema=schema)
