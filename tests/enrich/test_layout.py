"""The ``by-value`` layout: ``p_enrichment.<table>.<matched value>`` = the row, as
panther-analysis's GreyNoise V3 and OTX helpers read it, next to the selector-keyed layout."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pytest

from flowwarden.config import BY_SELECTOR, BY_VALUE, parse_config
from flowwarden.enrich.build import build_tables
from flowwarden.enrich.enricher import ENRICHMENT, BoundTable, Enricher, enrichment_view
from flowwarden.enrich.table import CIDR, EXACT, TableLookup
from flowwarden.errors import ConfigError

NOISE = [{"ip": "203.0.113.5", "classification": "malicious"},
         {"ip": "198.51.100.7", "classification": "benign"}]
RECORDS = [  # srcAddr, dstAddr, p_any_ip_addresses
    ("203.0.113.5", "10.0.0.1", ["203.0.113.5", "10.0.0.1"]),
    ("10.0.0.2", "198.51.100.7", ["10.0.0.2", "198.51.100.7"]),
    ("203.0.113.5", "198.51.100.7", ["203.0.113.5", "198.51.100.7"]),
    ("10.0.0.3", "10.0.0.4", ["10.0.0.3", "10.0.0.4"]),
    (None, "203.0.113.5", None),
]
SELECTORS = ("srcAddr", "dstAddr", "p_any_ip_addresses")


def batch(records: list[tuple[Any, Any, Any]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({
        "srcAddr": [r[0] for r in records], "dstAddr": [r[1] for r in records],
        "p_any_ip_addresses": pa.array([r[2] for r in records], pa.list_(pa.string()))})


def noise(layout: str, rows: list[dict[str, Any]] = NOISE, name: str = "gn_noise") -> BoundTable:
    return BoundTable(TableLookup(name, pa.Table.from_pylist(rows), "ip", EXACT),
                      {"AWS.VPCFlow": SELECTORS}, layout)


def views(enricher: Enricher, records: list[tuple[Any, Any, Any]]) -> list[Any]:
    enriched = enricher.enrich(batch(records), "AWS.VPCFlow")
    return [enrichment_view(v) for v in enriched.column(ENRICHMENT).to_pylist()]


def by_value_reference(records: list[tuple[Any, Any, Any]],
                       rows: list[dict[str, Any]]) -> list[Any]:
    """What each record should show, computed the slow way: every value of every selector
    that equals a row's key, once, with its row and ``p_match``."""
    keyed = {row["ip"]: row for row in rows}
    shown = []
    for src, dst, many in records:
        values = [v for v in [src, dst, *(many or [])] if v is not None and v in keyed]
        matched = {v: {**keyed[v], "p_match": v} for v in values}
        shown.append({"gn_noise": matched} if matched else None)
    return shown


def test_by_value_keys_each_matched_value_once_whatever_selector_found_it() -> None:
    found = views(Enricher([noise(BY_VALUE)]), RECORDS)
    assert found == by_value_reference(RECORDS, NOISE)
    assert found[2] == {"gn_noise": {
        "203.0.113.5": {"ip": "203.0.113.5", "classification": "malicious",
                        "p_match": "203.0.113.5"},
        "198.51.100.7": {"ip": "198.51.100.7", "classification": "benign",
                         "p_match": "198.51.100.7"}}}
    assert found[3] is None  # nothing matched: no p_enrichment at all, as in Panther


def test_by_selector_stays_the_default_layout() -> None:
    found = views(Enricher([noise(BY_SELECTOR)]), RECORDS[:1])
    assert found == [{"gn_noise": {
        "srcAddr": {"ip": "203.0.113.5", "classification": "malicious", "p_match": "203.0.113.5"},
        "p_any_ip_addresses": [{"ip": "203.0.113.5", "classification": "malicious",
                                "p_match": "203.0.113.5"}]}}]


def test_both_layouts_side_by_side_and_across_batches() -> None:
    tor = BoundTable(TableLookup("tor", pa.Table.from_pylist([{"ip": "10.0.0.4"}]), "ip"),
                     {"AWS.VPCFlow": ("dstAddr",)})
    enricher = Enricher([noise(BY_VALUE), tor])
    first = views(enricher, RECORDS)
    again = views(enricher, list(reversed(RECORDS)))  # the second batch is served by the cache
    assert again == list(reversed(first))
    assert first[3] == {"tor": {"dstAddr": {"ip": "10.0.0.4", "p_match": "10.0.0.4"}}}
    assert first[0] == by_value_reference(RECORDS, NOISE)[0]


def test_a_cidr_table_by_value_keys_the_address_not_the_network() -> None:
    nets = BoundTable(TableLookup("nets_otx", pa.Table.from_pylist(
        [{"indicator": "203.0.113.0/24", "indicator_type": "IPv4"}]), "indicator", CIDR),
        {"AWS.VPCFlow": ("srcAddr", "dstAddr")}, BY_VALUE)
    found = views(Enricher([nets]), RECORDS[:3])
    assert found[0] == {"nets_otx": {"203.0.113.5": {
        "indicator": "203.0.113.0/24", "indicator_type": "IPv4", "p_match": "203.0.113.5"}}}
    assert found[1] is None


def test_nothing_selectable_gives_a_null_map_column() -> None:
    enricher = Enricher([BoundTable(noise(BY_VALUE).lookup, {"AWS.VPCFlow": ("missing",)},
                                    BY_VALUE)])
    enriched = enricher.enrich(batch(RECORDS), "AWS.VPCFlow")
    column = enriched.column(ENRICHMENT)
    assert pa.types.is_map(column.type.field("gn_noise").type)
    assert column.null_count == len(RECORDS)


def test_sql_sees_a_map_it_can_index() -> None:
    """What compiled SQL gets: the map, whose entries DuckDB reads by key."""
    enriched = pa.Table.from_batches([Enricher([noise(BY_VALUE)]).enrich(batch(RECORDS),
                                                                       "AWS.VPCFlow")])
    connection = duckdb.connect()
    connection.register("enriched", enriched)
    found = connection.sql("select p_enrichment.gn_noise['203.0.113.5'].classification as c "
                           "from enriched").fetchall()
    assert [c for (c,) in found] == ["malicious", None, "malicious", None, "malicious"]


def test_the_layout_comes_from_the_configuration(tmp_path: Any) -> None:
    (tmp_path / "noise.csv").write_text("ip,classification\n203.0.113.5,malicious\n")
    config = parse_config({"lookup_tables": {"gn_noise": {
        "path": "noise.csv", "primary_key": "ip", "layout": "by-value",
        "log_types": {"AWS.VPCFlow": ["srcAddr"]}}}}, str(tmp_path / "flowwarden.yaml"))
    assert config.lookup_tables["gn_noise"].layout == BY_VALUE
    built = build_tables([], config.lookup_tables)
    assert [t.layout for t in built.tables] == [BY_VALUE]
    assert views(Enricher(built.tables), RECORDS[:1]) == [{"gn_noise": {"203.0.113.5": {
        "ip": "203.0.113.5", "classification": "malicious", "p_match": "203.0.113.5"}}}]


def test_an_unknown_layout_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="layout must be one of by-selector, by-value, got "
                                          "'by-ip'") as caught:
        parse_config({"lookup_tables": {"t": {"path": "t.csv", "layout": "by-ip"}}},
                     "a.yaml")
    assert "a.yaml" in str(caught.value)
