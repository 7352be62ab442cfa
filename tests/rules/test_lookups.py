from __future__ import annotations

from pathlib import Path

import pytest

from flowwarden.errors import Location, RuleLoadError
from flowwarden.rules.loader import load_pack
from flowwarden.rules.lookups import LookupTableSpec, load_lookup_table
from flowwarden.yamlfile import load_yaml
from tests.conftest import FIXTURES

PANTHER_TABLES = FIXTURES / "lookup_tables" / "panther_analysis"


def spec_of(path: Path) -> LookupTableSpec:
    return load_lookup_table(path, load_yaml(path, RuleLoadError))


def test_panther_analysis_tor_table_reads_as_a_refresh_table_with_flow_selectors() -> None:
    spec = spec_of(PANTHER_TABLES / "tor_exit_nodes.yml")
    assert (spec.name, spec.primary_key, spec.schema, spec.enabled) == (
        "tor_exit_nodes", "ip", "Tor.ExitNode", True)
    assert spec.filename is None
    assert spec.object_path is not None and spec.object_path.startswith("s3://")
    assert spec.selectors["AWS.VPCFlow"] == ("dstAddr", "srcAddr")
    assert spec.selectors["AWS.CloudTrail"] == ("sourceIPAddress", "p_any_ip_addresses")
    assert spec.selectors["Amazon.EKS.Audit"][0] == "$.sourceIPs"
    assert spec.selectors["Zeek.Conn"] == ()


def test_panther_analysis_ipinfo_and_misp_tables_read() -> None:
    asn = spec_of(PANTHER_TABLES / "ipinfo_asn.yml")
    assert (asn.name, asn.primary_key, asn.schema) == ("ipinfo_asn", "cidrblock", "IPInfo.ASNCIDR")
    assert asn.selectors["AWS.VPCFlow"] == ("dstAddr", "srcAddr")
    misp = spec_of(PANTHER_TABLES / "misp_lut.yml")
    assert (misp.primary_key, misp.selectors) == ("cidr", {})


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


TABLE = """AnalysisType: lookup_table
LookupName: corp
Filename: corp.csv
LogTypeMap:
  PrimaryKey: cidr
  AssociatedLogTypes:
    - LogType: AWS.VPCFlow
      Selectors: [srcAddr, "$.dstAddr"]
    - LogType: AWS.VPCFlow
      Selectors: [srcAddr, pktSrcAddr]
"""


def test_a_filename_is_resolved_beside_the_yaml_and_repeated_log_types_merge(tmp_path) -> None:
    spec = spec_of(write(tmp_path, "corp.yml", TABLE))
    assert spec.filename == str(tmp_path / "corp.csv")
    assert spec.selectors == {"AWS.VPCFlow": ("srcAddr", "$.dstAddr", "pktSrcAddr")}


@pytest.mark.parametrize(("text", "message"), [
    (TABLE.replace("Filename", "FileName"), "unknown key(s) in a lookup table: FileName"),
    (TABLE.replace("LookupName: corp", "LookupName: ''"), "LookupName must be a non-empty"),
    (TABLE + "Enabled: yes\n", "corp: Enabled must be true or false"),
    (TABLE.replace("PrimaryKey: cidr", "Primary: cidr"), "unknown key(s) in LogTypeMap: Primary"),
    (TABLE.replace("  PrimaryKey: cidr\n", ""), "LogTypeMap.PrimaryKey must be a column name"),
    (TABLE.replace("Selectors: [srcAddr, pktSrcAddr]", "Selectors: srcAddr"),
     "AssociatedLogTypes item 2 needs a LogType"),
    (TABLE + "Refresh:\n  ObjectPth: s3://x/y\n", "unknown key(s) in Refresh: ObjectPth"),
    ("AnalysisType: lookup_table\nLookupName: x\n", "x: LogTypeMap must be a mapping"),
], ids=["key", "name", "enabled", "map-key", "primary-key", "selectors", "refresh", "no-map"])
def test_bad_tables_are_errors_naming_the_file(tmp_path, text: str, message: str) -> None:
    path = write(tmp_path, "t.yml", text)
    with pytest.raises(RuleLoadError) as caught:
        spec_of(path)
    assert message in caught.value.message
    assert caught.value.location == Location(str(path))


def test_the_loader_returns_lookup_tables_and_reports_broken_or_duplicate_ones(tmp_path) -> None:
    write(tmp_path, "a.yml", TABLE)
    write(tmp_path, "b.yml", TABLE)
    write(tmp_path, "c.yml", TABLE.replace("corp", "other").replace("Filename", "Wrong"))
    pack = load_pack([tmp_path])
    assert [t.name for t in pack.lookup_tables] == ["corp"]
    assert pack.skipped == []
    messages = sorted(p.message for p in pack.problems)
    assert messages[0].startswith("LookupName corp is also defined in")
    assert "unknown key(s) in a lookup table: Wrong" in messages[1]


def test_lookup_tables_load_whatever_a_filter_selects(tmp_path) -> None:
    write(tmp_path, "a.yml", TABLE)
    pack = load_pack([tmp_path], select=lambda doc: doc.get("AnalysisType") == "rule")
    assert [t.name for t in pack.lookup_tables] == ["corp"]
