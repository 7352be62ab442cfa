"""`explain` and the catalog show which lookup tables a rule reads: by name in its code, through
the panther-analysis helpers it imports, or by a name pattern those helpers pick a table by."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowwarden.config import parse_config
from flowwarden.pages import build_catalog
from flowwarden.pages.catalog import rule_file
from flowwarden.pages.lookup_reads import RULE, TableRead, tables_read
from flowwarden.pages.render import render_explanation
from flowwarden.rules.loader import Pack, load_pack
from tests.conftest import FIXTURES

FIXTURE = FIXTURES / "panther_enrichment"
CONFIG = {"lookup_tables": {
    "greynoise_noise": {"path": "g.jsonl", "primary_key": "ip", "layout": "by-value",
                        "log_types": {"AWS.VPCFlow": ["p_any_ip_addresses"]}},
    "tor_exit_nodes": {"path": "tor.csv"}}}


@pytest.fixture
def pack(tmp_path: Path) -> Pack:
    return load_pack([FIXTURE], parse_config(CONFIG, str(tmp_path / "flowwarden.yaml")))


@pytest.mark.parametrize(("source", "expected"), [
    ('def rule(e):\n    return deep_get(e, "p_enrichment", "asset_db", "owner")', ["asset_db"]),
    ('KEY = "p_enrichment"\nT = "vpn"\ndef rule(e):\n    return e.deep_get(KEY, T)', ["vpn"]),
    ('def rule(e):\n    return e["p_enrichment"]["cmdb"]', ["cmdb"]),
    ('def rule(e):\n    return e.lookup("owners", e.get("ip"))', ["owners"]),
    ('class T(LookupTableMatches):\n    def __init__(self, e):\n'
     '        self._register(e, "ipinfo_asn")', ["ipinfo_asn"]),
    # names only known at run time, and other strings, are not tables
    ('def rule(e):\n    t = e.get("x")\n    return e.deep_get("p_enrichment", t)', []),
    ('import json\ndef rule(e):\n    return e.get("p_enrichment") and json.loads("{}")', []),
    ('def rule(e):\n    return e.get("name", "").endswith("_noise")', []),  # no p_enrichment
    ("def rule(e) return", []),  # a syntax error reads nothing (the loader reports it)
])
def test_tables_named_in_a_rule(source: str, expected: list[str]) -> None:
    assert [t.table for t in tables_read(source)] == expected


def test_helpers_are_followed_and_patterns_matched_to_loaded_tables(pack: Pack) -> None:
    reads = {rule.id: tables_read(rule.source, ["greynoise_noise", "tor_exit_nodes"])
             for rule in pack.rules}
    assert reads["Standard.GreyNoiseV3.MaliciousIP"] == (
        TableRead("*_noise", "panther_greynoise_helpers", ("greynoise_noise",)),)
    assert reads["Standard.OTX.MaliciousIndicator"] == (
        TableRead("*_otx", "panther_otx_helpers", ()),)
    assert reads["Fixture.VPC.TorExitNode"] == (
        TableRead("tor_exit_nodes", "panther_tor_helpers", ("tor_exit_nodes",)),)
    assert all(r.via != RULE for found in reads.values() for r in found)


def test_explain_text_and_markdown_show_the_tables(pack: Pack) -> None:
    text = render_explanation(pack, "Standard.GreyNoiseV3.MaliciousIP", "text")
    section = text.split("Lookup tables", 1)[1].split("\n\n", 1)[0]
    assert "*_noise" in section and "helper panther_greynoise_helpers" in section
    assert "greynoise_noise" in section
    markdown = render_explanation(pack, "Standard.OTX.MaliciousIndicator", "markdown")
    assert "## Lookup tables" in markdown
    assert "| \\*\\_otx | helper panther\\_otx\\_helpers | (none loaded) |" in markdown


def test_explain_json_lists_them(pack: Pack) -> None:
    data = json.loads(render_explanation(pack, "Fixture.VPC.TorExitNode", "json"))
    assert data["lookup_tables"] == [{"table": "tor_exit_nodes", "via": "panther_tor_helpers",
                                      "loaded": ["tor_exit_nodes"]}]


def test_a_rule_reading_no_table_has_no_section(default_pack: Pack) -> None:
    default = default_pack
    rule_id = "AWS.VPC.UnapprovedOutboundDNS"
    assert json.loads(render_explanation(default, rule_id, "json"))["lookup_tables"] == []
    assert "Lookup tables" not in render_explanation(default, rule_id, "text")
    assert 'id="lookup-tables"' not in render_explanation(default, rule_id, "html")


def test_html_escapes_table_names(tmp_path: Path) -> None:
    (tmp_path / "r.py").write_text('def rule(e):\n    return e.lookup("<b>x</b>", 1)\n')
    (tmp_path / "r.yml").write_text("AnalysisType: rule\nRuleID: Test.Html\nFilename: r.py\n"
                                    "Enabled: true\nLogTypes: [AWS.VPCFlow]\nSeverity: Low\n")
    html = render_explanation(load_pack([tmp_path]), "Test.Html", "html")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def test_the_catalog_shows_the_tables(pack: Pack, tmp_path: Path) -> None:
    site = build_catalog(pack, tmp_path / "site").parent
    index = (site / "index.html").read_text()
    row = index.split('data-rule-id="Fixture.VPC.TorExitNode"', 1)[1].split("</tr>", 1)[0]
    assert "lookup tables: <code>tor_exit_nodes</code>" in row
    page = (site / "rules" / rule_file("Standard.GreyNoiseV3.MaliciousIP")).read_text()
    assert 'id="lookup-tables"' in page and "panther_greynoise_helpers" in page


def test_tables_named_by_the_configuration_show_from_the_condition(tmp_path: Path) -> None:
    # ThreatIntelMatch loops over threat_intel_tables: its source names no table
    config = parse_config({"threat_intel_tables": ["feed_a", "feed_b"], "lookup_tables": {
        "feed_a": {"path": "a.csv", "log_types": {"AWS.VPCFlow": ["srcAddr"]}}}},
        str(tmp_path / "flowwarden.yaml"))
    default = load_pack([FIXTURES.parents[1] / "flowwarden" / "packs" / "default"], config)
    data = json.loads(render_explanation(default, "AWS.VPC.ThreatIntelMatch", "json"))
    assert data["lookup_tables"] == [
        {"table": "feed_a", "via": RULE, "loaded": ["feed_a"]},
        {"table": "feed_b", "via": RULE, "loaded": []}]
