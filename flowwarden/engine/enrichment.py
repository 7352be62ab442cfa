"""Lookup tables in a scan: each batch gets its ``p_enrichment`` column before any rule sees it.

The enricher comes from the pack's lookup tables and the ``lookup_tables:`` section of its
configuration (``enrich.build``). A batch of a log type no table is associated with is left as
it is; an enriched batch's complete records (phase 2 of a projected read) are enriched the
same way, from the enricher's cache. Rules reading records as Python see ``p_enrichment`` as
Panther shows it (``enrich.enricher.enrichment_view``: what matched nothing is left out).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from flowwarden.enrich.build import build_tables
from flowwarden.enrich.enricher import ENRICHMENT, Enricher, enrichment_view
from flowwarden.logs.model import LogBatch, RowLoader
from flowwarden.logs.pyrecords import to_records
from flowwarden.rules.loader import Pack


@dataclass(frozen=True)
class PackEnrichment:
    """A pack's enricher (None when it has no table with data), and why tables were left out."""

    enricher: Enricher | None
    notes: tuple[str, ...]

    def columns(self, log_types: Sequence[str]) -> set[str]:
        """The columns the selectors of ``log_types`` read."""
        if self.enricher is None:
            return set()
        return set().union(*(self.enricher.columns(lt) for lt in log_types))

    def batch(self, item: Any) -> Any:
        """``item`` (a ``BatchLike``) with ``p_enrichment``, its complete rows too, or itself
        when no table is associated with its log type."""
        enricher, log_type = self.enricher, item.log_type
        if enricher is None or not enricher.selectors(log_type):
            return item
        complete: RowLoader | None = getattr(item, "complete", None)
        loader = None if complete is None else (
            lambda positions: enricher.enrich(complete(positions), log_type))
        return LogBatch(log_type, item.source, enricher.enrich(item.batch, log_type), loader)


def pack_enrichment(pack: Pack, log_types: Collection[str]) -> PackEnrichment:
    """The enrichment of a scan of ``log_types`` with ``pack``: the tables of the pack associated
    with them, and those the configuration names, loaded (a ``LookupTableError`` or
    ``ConfigError`` when one the configuration names cannot load). The pack's events answer
    ``event.lookup`` from these tables from then on."""
    specs = [spec for spec in pack.lookup_tables if set(spec.selectors) & set(log_types)]
    if not specs and not pack.config.lookup_tables:
        return PackEnrichment(None, ())
    built = build_tables(specs, pack.config.lookup_tables, pack.config.source or "<config>")
    enricher = Enricher(built.tables) if built.tables else None
    if enricher is not None:
        # event.lookup(table, key) in the scan's rules asks the same tables, through the cache
        pack.lookup_function = enricher.lookup
    return PackEnrichment(enricher, tuple(built.notes))


def panther_records(batch: pa.RecordBatch | pa.Table) -> list[dict[str, Any]]:
    """``to_records`` of ``batch``, with ``p_enrichment`` shown as Panther shows it."""
    records = to_records(batch)
    if ENRICHMENT in batch.schema.names:
        for record in records:
            panther_record(record)
    return records


def panther_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (one row as ``to_records`` gives it) with ``p_enrichment`` shown as Panther
    shows it, changed in place.

    >>> panther_record({"a": 1, "p_enrichment": {"t": None}})
    {'a': 1}
    """
    if ENRICHMENT in record:
        shown = enrichment_view(record.pop(ENRICHMENT))
        if shown is not None:  # an event nothing matched has none, as in Panther
            record[ENRICHMENT] = shown
    return record


def without_enrichment(columns: Sequence[str]) -> list[str]:
    """``columns`` to read from an input: ``p_enrichment`` is computed, never read."""
    return [c for c in columns if c != ENRICHMENT and not c.startswith(ENRICHMENT + ".")]
