"""Lookups from the lookup tables a pack defines (``rules.lookups.LookupTableSpec``, seen here
through ``TableSpec``) and the ``lookup_tables:`` section of ``flowwarden.yaml``.

Where a table's data comes from: the config entry's ``path`` (with its ``kind``, a source of
``flowwarden.enrich.sources``, or a table file), else the YAML's ``Filename``. A ``Refresh`` or
``Query`` table without a config entry is not available here (Panther refreshes it from its own
storage) and is noted, as is a table whose YAML disables it (a config entry turns it on).

Exact or CIDR: Panther decides by the table's schema (a CIDR ``validate`` on the primary key
column). flowwarden has no schemas, so: ``match:`` in the config entry when given; else CIDR
when the schema's name ends in ``CIDR`` (Panther's managed ``IPInfo.ASNCIDR``,
``MISP.WarningListsCIDR``, ...) or when every primary key value is a network or an address and
at least one is written as a network (``a.b.c.d/n``); else exact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from flowwarden.config import BY_SELECTOR, TableSource
from flowwarden.enrich.addresses import network_of
from flowwarden.enrich.enricher import BoundTable
from flowwarden.enrich.lookup import Lookup
from flowwarden.enrich.table import CIDR, EXACT, MatchKind, TableLookup
from flowwarden.enrich.tablefile import LookupTableError, read_table_file
from flowwarden.errors import ConfigError, Location
from flowwarden.util.s3 import S3

SourceKinds = Mapping[str, Callable[[str, Mapping[str, Any]], Lookup]]


class TableSpec(Protocol):
    """What the enricher needs of a lookup table's YAML (``rules.lookups.LookupTableSpec``)."""

    @property
    def name(self) -> str: ...
    @property
    def yaml_path(self) -> str: ...
    @property
    def primary_key(self) -> str: ...
    @property
    def selectors(self) -> Mapping[str, tuple[str, ...]]: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def schema(self) -> str: ...
    @property
    def filename(self) -> str | None: ...


@dataclass
class Built:
    """The tables to enrich with, and why others are not among them."""

    tables: list[BoundTable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_tables(specs: Sequence[TableSpec], sources: Mapping[str, TableSource],
                 config_path: str = "<config>", kinds: SourceKinds | None = None,
                 s3: S3 | None = None) -> Built:
    """Load every available table; a table that is configured but cannot load is an error."""
    built = Built()
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        source = sources.get(spec.name)
        if source is None and not spec.enabled:
            built.notes.append(f"{spec.name}: disabled in {spec.yaml_path}")
            continue
        path = source.path if source is not None else spec.filename
        if path is None:
            built.notes.append(f"{spec.name}: no data here (Panther refreshes it): give its "
                               f"file under lookup_tables: in flowwarden.yaml")
            continue
        selectors = source.log_types if source and source.log_types is not None \
            else spec.selectors
        lookup = _lookup(spec.name, path, source, spec.primary_key, spec.schema, kinds, s3,
                         config_path)
        built.tables.append(BoundTable(lookup, selectors,
                                       source.layout if source is not None else BY_SELECTOR))
    for name, source in sources.items():
        if name in by_name:
            continue
        if source.log_types is None or (source.kind is None and source.primary_key is None):
            raise ConfigError(f"lookup_tables: {name}: no lookup_table YAML defines it; give "
                              "its log_types (and primary_key, for a table file)",
                              Location(config_path))
        lookup = _lookup(name, source.path, source, source.primary_key or "", "", kinds, s3,
                         config_path)
        built.tables.append(BoundTable(lookup, source.log_types, source.layout))
    return built


def _lookup(name: str, path: str, source: TableSource | None, primary_key: str, schema: str,
            kinds: SourceKinds | None, s3: S3 | None, config_path: str) -> Lookup:
    if source is not None and source.kind is not None:
        known = kinds if kinds is not None else _source_kinds()
        loader = known.get(source.kind)
        if loader is None:
            raise ConfigError(f"lookup_tables: {name}: unknown kind {source.kind!r}; known: "
                              f"{', '.join(sorted(known)) or 'none'}", Location(config_path))
        return loader(path, {"name": name, **source.options})
    rows = read_table_file(path, s3)
    key = (source.primary_key if source else None) or primary_key
    if key not in rows.column_names:
        raise LookupTableError(f"{name}: no primary key column {key!r}; the columns are "
                               f"{', '.join(rows.column_names)}", Location(path))
    forced = source.match if source is not None else None
    match = match_kind(schema, rows.column(key)) if forced is None else \
        CIDR if forced == CIDR else EXACT
    table = TableLookup(name, rows, key, match)
    if table.kind == CIDR and table.unparsed_rows:
        row = table.unparsed_rows[0]
        raise LookupTableError(
            f"{name}: primary key {rows.column(key)[row].as_py()!r} of row {row + 1} is not a "
            f"network (the table matches CIDRs)", Location(path))
    return table


def match_kind(schema: str, keys: pa.ChunkedArray | pa.Array) -> MatchKind:
    """How to match a table file's keys when nothing says (see the module's docstring).

    >>> match_kind("", pa.array(["10.0.0.0/8", "1.2.3.4"])), match_kind("", pa.array(["1.2.3.4"]))
    ('cidr', 'exact')
    >>> match_kind("IPInfo.ASNCIDR", pa.array(["1.2.3.4"])), match_kind("", pa.array(["a/b"]))
    ('cidr', 'exact')
    """
    if schema.upper().endswith("CIDR"):
        return CIDR
    texts = [t for t in keys.cast(pa.string()).to_pylist() if t is not None]
    if texts and any("/" in t for t in texts) and all(network_of(t) is not None for t in texts):
        return CIDR
    return EXACT


def _source_kinds() -> SourceKinds:
    """The registry of source kinds, imported only when a config entry names a kind."""
    try:
        from flowwarden.enrich.sources import SOURCE_KINDS
    except ModuleNotFoundError as exc:
        if exc.name != "flowwarden.enrich.sources":
            raise  # a source's own dependency is missing: its message names it
        return {}
    return SOURCE_KINDS
