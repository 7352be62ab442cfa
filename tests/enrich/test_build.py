from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flowwarden.config import TableSource, parse_config
from flowwarden.enrich.build import build_tables, match_kind
from flowwarden.enrich.enricher import Enricher, enrichment_view
from flowwarden.enrich.table import CIDR, EXACT, TableLookup
from flowwarden.enrich.tablefile import LookupTableError
from flowwarden.errors import ConfigError
from flowwarden.rules.loader import load_pack
from tests.conftest import FIXTURES

PANTHER_TABLES = FIXTURES / "lookup_tables" / "panther_analysis"


def pack_with(tmp: Path, *names: str) -> Path:
    tree = tmp / "tree"
    tree.mkdir()
    for name in names:
        shutil.copy(PANTHER_TABLES / name, tree / name)
    return tree


def config(tmp: Path, text: str) -> Any:
    path = tmp / "flowwarden.yaml"
    path.write_text(text)
    from flowwarden.config import load_config
    return load_config(path)


def vpc(src: list[str], dst: list[str]) -> pa.RecordBatch:
    return pa.record_batch({"srcAddr": src, "dstAddr": dst})


def test_panther_tor_table_runs_on_a_file_named_in_the_config(tmp_path) -> None:
    pack = load_pack([pack_with(tmp_path, "tor_exit_nodes.yml")])
    (tmp_path / "exits.csv").write_text("ip,nickname\n192.0.2.1,relay1\n2001:db8::7,relay2\n")
    cfg = config(tmp_path, "lookup_tables:\n  tor_exit_nodes:\n    path: exits.csv\n")
    built = build_tables(pack.lookup_tables, cfg.lookup_tables, cfg.source)
    assert built.notes == []
    [table] = built.tables
    assert isinstance(table.lookup, TableLookup) and table.lookup.kind == EXACT
    enriched = Enricher(built.tables).enrich(vpc(["192.0.2.1", "10.0.0.1"],
                                                 ["10.0.0.1", "2001:db8::7"]), "AWS.VPCFlow")
    got = [enrichment_view(v) for v in enriched.column("p_enrichment").to_pylist()]
    assert got == [
        {"tor_exit_nodes": {"srcAddr": {"ip": "192.0.2.1", "nickname": "relay1",
                                        "p_match": "192.0.2.1"}}},
        {"tor_exit_nodes": {"dstAddr": {"ip": "2001:db8::7", "nickname": "relay2",
                                        "p_match": "2001:db8::7"}}},
    ]


def test_panther_ipinfo_table_matches_cidrs_because_of_its_schema(tmp_path) -> None:
    pack = load_pack([pack_with(tmp_path, "ipinfo_asn.yml", "tor_exit_nodes.yml")])
    (tmp_path / "asn.jsonl").write_text(
        '{"cidrblock": "198.51.100.0/24", "asn": "AS64500", "name": "Example"}\n'
        '{"cidrblock": "198.51.100.128/25", "asn": "AS64501", "name": "Inner"}\n'
        '{"cidrblock": "203.0.113.9", "asn": "AS64502", "name": "Single"}\n')
    cfg = config(tmp_path, "lookup_tables:\n  ipinfo_asn: {path: asn.jsonl}\n")
    built = build_tables(pack.lookup_tables, cfg.lookup_tables, cfg.source)
    assert built.notes == ["tor_exit_nodes: no data here (Panther refreshes it): give its file "
                           "under lookup_tables: in flowwarden.yaml"]
    [table] = built.tables
    assert isinstance(table.lookup, TableLookup) and table.lookup.kind == CIDR
    got = table.lookup.match(pa.array(["198.51.100.200", "198.51.100.1", "203.0.113.9", "::1"]))
    assert got.field("asn").to_pylist() == ["AS64501", "AS64500", "AS64502", None]


def write_yaml(tmp: Path, text: str) -> Path:
    tree = tmp / "tree"
    tree.mkdir(exist_ok=True)
    (tree / "t.yml").write_text(text)
    return tree


CORP = """AnalysisType: lookup_table
LookupName: corp
Filename: corp.csv
Enabled: {enabled}
LogTypeMap:
  PrimaryKey: cidr
  AssociatedLogTypes:
    - LogType: AWS.VPCFlow
      Selectors: [srcAddr]
"""


def test_a_filename_table_infers_cidr_from_its_keys_and_disabled_tables_are_noted(tmp_path):
    tree = write_yaml(tmp_path, CORP.format(enabled="true"))
    (tree / "corp.csv").write_text("cidr,site\n10.0.0.0/8,hq\n10.1.2.3,host\n")
    built = build_tables(load_pack([tree]).lookup_tables, {})
    assert [t.lookup.kind for t in built.tables if isinstance(t.lookup, TableLookup)] == [CIDR]
    (tree / "t.yml").write_text(CORP.format(enabled="false"))
    built = build_tables(load_pack([tree]).lookup_tables, {})
    assert built.tables == [] and built.notes[0].startswith("corp: disabled in ")


def test_a_cidr_table_with_a_key_that_is_not_a_network_names_the_row(tmp_path) -> None:
    tree = write_yaml(tmp_path, CORP.format(enabled="true"))
    (tree / "corp.csv").write_text("cidr,site\n10.0.0.0/8,hq\nnot-a-net,x\n")
    sources = {"corp": TableSource(str(tree / "corp.csv"), match="cidr")}
    with pytest.raises(LookupTableError) as caught:
        build_tables(load_pack([tree]).lookup_tables, sources)
    assert "primary key 'not-a-net' of row 2 is not a network" in caught.value.message
    assert caught.value.location is not None
    assert caught.value.location.path == str(tree / "corp.csv")


def test_a_missing_primary_key_column_or_file_is_an_error(tmp_path) -> None:
    tree = write_yaml(tmp_path, CORP.format(enabled="true"))
    (tree / "corp.csv").write_text("network,site\n10.0.0.0/8,hq\n")
    specs = load_pack([tree]).lookup_tables
    with pytest.raises(LookupTableError, match="no primary key column 'cidr'; the columns are "
                                               "network, site"):
        build_tables(specs, {})
    (tree / "corp.csv").unlink()
    with pytest.raises(LookupTableError, match="cannot read the table file"):
        build_tables(specs, {})


class FakeLookup:
    """A source kind's lookup: every key matches, with the options it was given."""

    def __init__(self, path: str, options: Mapping[str, Any]) -> None:
        self.path, self.options = path, dict(options)

    @property
    def name(self) -> str:
        return str(self.options["name"])

    @property
    def row_type(self) -> pa.StructType:
        return pa.struct([("path", pa.string())])

    def match(self, keys: pa.Array) -> pa.Array:
        return pa.array([{"path": self.path}] * len(keys), self.row_type)


KINDS = {"fake": FakeLookup}


def test_a_kind_from_the_registry_loads_the_configured_path_with_its_options(tmp_path) -> None:
    pack = load_pack([pack_with(tmp_path, "tor_exit_nodes.yml")])
    cfg = config(tmp_path, "lookup_tables:\n  tor_exit_nodes:\n    path: s3://b/exits.txt\n"
                           "    kind: fake\n    refresh: daily\n")
    built = build_tables(pack.lookup_tables, cfg.lookup_tables, cfg.source, kinds=KINDS)
    [table] = built.tables
    assert isinstance(table.lookup, FakeLookup)
    assert (table.lookup.path, table.lookup.options) == (
        "s3://b/exits.txt", {"name": "tor_exit_nodes", "refresh": "daily"})
    assert table.selectors["AWS.VPCFlow"] == ("dstAddr", "srcAddr")


def test_a_config_only_table_needs_its_log_types(tmp_path) -> None:
    cfg = config(tmp_path, "lookup_tables:\n  threat_intel:\n    path: iocs.csv\n    kind: fake\n"
                           "    log_types: {AWS.VPCFlow: [srcAddr, dstAddr]}\n")
    [table] = build_tables([], cfg.lookup_tables, cfg.source, kinds=KINDS).tables
    assert table.lookup.name == "threat_intel"
    assert table.selectors == {"AWS.VPCFlow": ("srcAddr", "dstAddr")}
    cfg = config(tmp_path, "lookup_tables:\n  threat_intel: {path: iocs.csv, kind: fake}\n")
    with pytest.raises(ConfigError, match="threat_intel: no lookup_table YAML defines it"):
        build_tables([], cfg.lookup_tables, cfg.source, kinds=KINDS)


def test_an_unknown_kind_names_the_known_ones(tmp_path) -> None:
    cfg = config(tmp_path, "lookup_tables:\n  t: {path: x, kind: nope, log_types: {A: [b]}}\n")
    with pytest.raises(ConfigError, match="unknown kind 'nope'; known: fake"):
        build_tables([], cfg.lookup_tables, cfg.source, kinds=KINDS)


@pytest.mark.parametrize(("schema", "keys", "kind"), [
    ("", ["10.0.0.0/8", "192.0.2.1", None], CIDR),
    ("", ["192.0.2.1", "192.0.2.2"], EXACT),
    ("", ["10.0.0.0/8", "corp"], EXACT),
    ("MISP.WarningListsCIDR", ["192.0.2.1"], CIDR),
    ("", [], EXACT),
])
def test_match_kind(schema: str, keys: list[str | None], kind: str) -> None:
    assert match_kind(schema, pa.array(keys, pa.string())) == kind


def test_config_paths_are_relative_to_the_config_file() -> None:
    parsed = parse_config({"lookup_tables": {"t": {"path": "data/t.csv"},
                                             "u": {"path": "s3://b/u.csv"},
                                             "v": {"path": "/abs/v.csv"}}}, "/etc/fw/fw.yaml")
    assert {k: v.path for k, v in parsed.lookup_tables.items()} == {
        "t": "/etc/fw/data/t.csv", "u": "s3://b/u.csv", "v": "/abs/v.csv"}
