"""Lookup tables in a scan: each batch gets its ``p_enrichment`` column before any rule sees it.

The enricher comes from the pack's lookup tables and the ``lookup_tables:`` section of its
configuration (``enrich.build``). A batch of a log type no table is associated with is left as
it is; an enriched batch's complete records (phase 2 of a projected read) are enriched the
same way, from the enricher's cache. Rules reading records as Python see ``p_enrichment`` as
Panther shows it (``enrich.enricher.enrichment_view``: what matched nothing is left out).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from flowwarden.enrich.build import build_tables
from flowwarden.enrich.enricher import ENRICHMENT, Enricher, Reads, enrichment_view
from flowwarden.logic import ir
from flowwarden.logic.extract import extract_rule
from flowwarden.logs.model import LogBatch, RowLoader
from flowwarden.logs.pyrecords import to_records
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule


@dataclass(frozen=True)
class PackEnrichment:
    """A pack's enricher (None when it has no table with data), and why tables were left out.

    ``reads`` (by log type) is what the compiled queries read of ``p_enrichment`` (see
    ``reads_of``): a projected read's phase-1 batches get only that, and its complete rows,
    which the rules' Python and the alerts see, get everything.
    """

    enricher: Enricher | None
    notes: tuple[str, ...]
    reads: Mapping[str, Reads | None] = field(default_factory=dict)

    def reading(self, paths: Mapping[str, Iterable[tuple[str, ...]]]) -> PackEnrichment:
        """This enrichment narrowed to ``paths`` (by log type: the field paths the compiled
        queries read)."""
        return replace(self, reads={lt: reads_of(found) for lt, found in paths.items()})

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
        if complete is None:  # these rows are the complete ones
            return LogBatch(log_type, item.source, enricher.enrich(item.batch, log_type), None)

        def enriched(loader: RowLoader | None) -> RowLoader | None:
            if loader is None:
                return None
            return lambda positions: enricher.enrich(loader(positions), log_type)

        return LogBatch(log_type, item.source,
                        enricher.enrich(item.batch, log_type, self.reads.get(log_type)),
                        enriched(complete), enriched(getattr(item, "late", None)))


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


def unknown_tables(pack: Pack, rules: Sequence[Rule], compiled: Any = None) -> list[str]:
    """Notes on the tables the ``rules``' conditions read (as ``compiled``, a ``CompiledPack``,
    has them, else as extracted) that neither the pack nor its configuration defines: the
    rules match nothing through them. (A table defined without data has its own note,
    ``enrich.build``'s.)"""
    known = {*(spec.name for spec in pack.lookup_tables), *pack.config.lookup_tables}
    readers: dict[str, list[str]] = {}
    for rule in rules:
        if compiled is not None:
            paths: set[tuple[str, ...]] = set().union(
                *(compiled.paths(lt, rule.id) for lt in rule.log_types))
        else:
            paths = {n.keys for n in ir.walk(extract_rule(rule).condition)
                     if isinstance(n, ir.Field)}
        for table in sorted({p[1] for p in paths if len(p) > 1 and p[0] == ENRICHMENT}):
            if table not in known:
                readers.setdefault(table, []).append(rule.id)
    return [f"{table} is not defined, so {', '.join(rules)} cannot match through it: give it "
            "under lookup_tables: in flowwarden.yaml (README: Enrichment) or disable "
            f"{'the rule' if len(rules) == 1 else 'the rules'}"
            for table, rules in sorted(readers.items())]


def reads_of(paths: Iterable[tuple[str, ...]]) -> Reads | None:
    """What ``paths`` read of ``p_enrichment``: per table, per selector, its rows' fields (None:
    whole rows, for a path that ends at the selector or the table); None when one reads all
    of it.

    >>> reads = reads_of([("p_enrichment", "asn", "srcAddr", "number"), ("p_enrichment", "tor"),
    ...                   ("p_enrichment", "asn", "srcAddr", "p_match"), ("srcAddr",),
    ...                   ("p_enrichment", "asn", "p_any_ip_addresses")])
    >>> reads == {"asn": {"srcAddr": frozenset({"number", "p_match"}), "p_any_ip_addresses": None},
    ...           "tor": None}
    True
    >>> reads_of([("p_enrichment",)]) is None
    True
    """
    tables: dict[str, dict[str, set[str] | None] | None] = {}
    for path in paths:
        if path[0] != ENRICHMENT:
            continue
        if len(path) < 2:
            return None
        if len(path) == 2:
            tables[path[1]] = None
            continue
        selectors = tables.setdefault(path[1], {})
        if selectors is None:
            continue
        fields = selectors.setdefault(path[2], set()) if len(path) > 3 else None
        if fields is None:
            selectors[path[2]] = None
        else:
            fields.add(path[3])
    return {table: None if selectors is None else
            {key: None if fields is None else frozenset(fields) for key, fields in selectors.items()}
            for table, selectors in tables.items()}


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
