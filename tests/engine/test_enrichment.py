"""Lookup tables in a scan (``flowwarden.engine.enrichment``): rules see ``p_enrichment`` as
Panther shows it, conditions on it give the same alerts compiled or in Python, the projected
read loads the selectors' columns, and a table without data is a warning, not a failure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowwarden.config import parse_config
from flowwarden.engine.engines import engine_named
from flowwarden.engine.loop import narrowed, phase_one_columns
from flowwarden.logs import DEFAULT_OPTIONS, read
from flowwarden.rules.loader import Pack, load_pack
from tests.engine.test_scan import T0, Item, batch_of, same

HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets " \
         "bytes start end action log-status"
TOR_EXIT, IOC_HOST, IOC_NET = "185.220.101.4", "203.0.113.77", "198.51.100.0/24"
FLOWS = [  # srcaddr dstaddr dstport action
    (TOR_EXIT, "10.0.0.5", 22, "ACCEPT"),
    (TOR_EXIT, "10.0.0.6", 22, "REJECT"),
    ("10.0.0.5", TOR_EXIT, 443, "ACCEPT"),
    ("10.0.0.7", IOC_HOST, 443, "ACCEPT"),
    ("10.0.0.8", "198.51.100.9", 443, "ACCEPT"),
    ("10.0.0.9", "8.8.8.8", 53, "ACCEPT"),
]

TOR_TABLE = """AnalysisType: lookup_table
LookupName: tor_exit_nodes
Schema: Tor.ExitNode
Filename: tor.csv
Enabled: true
LogTypeMap:
  PrimaryKey: ip
  AssociatedLogTypes:
    - LogType: AWS.VPCFlow
      Selectors: [dstAddr, srcAddr]
"""
REFRESHED_TABLE = """AnalysisType: lookup_table
LookupName: refreshed
Schema: Custom.Refreshed
Refresh:
  ObjectPath: s3://somewhere/table.csv
LogTypeMap:
  PrimaryKey: ip
  AssociatedLogTypes:
    - LogType: AWS.VPCFlow
      Selectors: [srcAddr]
"""
TOR_RULE_YML = """AnalysisType: rule
RuleID: Test.Tor
Filename: tor_rule.py
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: High
"""
TOR_RULE_PY = '''
def rule(event):
    if event.get("action") != "ACCEPT":
        return False
    return bool(event.deep_get("p_enrichment", "tor_exit_nodes", "srcAddr")
                or event.deep_get("p_enrichment", "tor_exit_nodes", "dstAddr"))


def title(event):
    side = "srcAddr" if event.deep_get("p_enrichment", "tor_exit_nodes", "srcAddr") else "dstAddr"
    node = event.deep_get("p_enrichment", "tor_exit_nodes", side)
    return f"Tor {node['nickname']} at {node['p_match']} ({side})"


def alert_context(event):
    return {"enrichment": event.get("p_enrichment")}
'''
IOC_RULE_YML = TOR_RULE_YML.replace("Test.Tor", "Test.Ioc").replace("tor_rule", "ioc_rule")
IOC_RULE_PY = '''
def rule(event):
    return event.deep_get("p_enrichment", "iocs", "dstAddr", "confidence", default=0) >= 80


def title(event):
    return f"IOC {event.get('dstAddr')}"
'''


def write_pack(tmp: Path, *, config: dict | None = None) -> Pack:
    root = tmp / "pack"
    (root / "rules").mkdir(parents=True)
    (root / "lookup_tables").mkdir()
    (root / "rules" / "tor_rule.yml").write_text(TOR_RULE_YML)
    (root / "rules" / "tor_rule.py").write_text(TOR_RULE_PY)
    (root / "rules" / "ioc_rule.yml").write_text(IOC_RULE_YML)
    (root / "rules" / "ioc_rule.py").write_text(IOC_RULE_PY)
    (root / "lookup_tables" / "tor.yml").write_text(TOR_TABLE)
    (root / "lookup_tables" / "refreshed.yml").write_text(REFRESHED_TABLE)
    (root / "lookup_tables" / "tor.csv").write_text(f"ip,nickname\n{TOR_EXIT},relayOne\n")
    (tmp / "iocs.csv").write_text(f"cidr,confidence\n{IOC_HOST}/32,90\n{IOC_NET},60\n")
    settings = config if config is not None else {"lookup_tables": {"iocs": {
        "path": "iocs.csv", "match": "cidr", "primary_key": "cidr",
        "log_types": {"AWS.VPCFlow": ["dstAddr"]}}}}
    return load_pack([root], parse_config(settings, str(tmp / "flowwarden.yaml")))


def write_flows(tmp: Path) -> str:
    lines = [HEADER] + [
        f"2 123456789010 eni-1 {src} {dst} 40000 {port} 6 10 840 1700000000 1700000060 {act} OK"
        for src, dst, port, act in FLOWS]
    path = tmp / "flows.log"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def comparable(alerts) -> list[dict]:
    """Alerts as dicts, without the parse time (each scan reads the file anew)."""
    found = []
    for alert in alerts:
        shown = alert.to_dict()
        shown["samples"] = [{k: v for k, v in s.items() if k != "p_parse_time"}
                            for s in shown["samples"]]
        found.append(shown)
    return found


def scan(pack: Pack, path: str, engine: str):
    return engine_named(engine).scan(pack, pack.active_rules([]), [path], DEFAULT_OPTIONS).result


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_rules_see_matched_rows_as_panther_shows_them(tmp_path: Path, engine: str) -> None:
    pack = write_pack(tmp_path)
    result = scan(pack, write_flows(tmp_path), engine)
    by_rule: dict[str, list] = {}
    for alert in result.alerts:
        by_rule.setdefault(alert.rule_id, []).append(alert)
    assert sorted(a.title for a in by_rule["Test.Tor"]) == [
        f"Tor relayOne at {TOR_EXIT} (dstAddr)", f"Tor relayOne at {TOR_EXIT} (srcAddr)"]
    # only what matched is shown: the other selector and the IOC table are left out
    inbound = next(a for a in by_rule["Test.Tor"] if a.title.endswith("(srcAddr)"))
    assert inbound.alert_context == {"enrichment": {"tor_exit_nodes": {"srcAddr": {
        "ip": TOR_EXIT, "nickname": "relayOne", "p_match": TOR_EXIT}}}}
    assert inbound.samples[0]["p_enrichment"] == inbound.alert_context["enrichment"]
    # longest prefix: the /32 (confidence 90) alerts, the /24 (60) does not
    assert [a.title for a in by_rule["Test.Ioc"]] == [f"IOC {IOC_HOST}"]
    assert any("refreshed" in note for note in result.notes)


def test_compiled_and_python_engines_agree_on_enriched_alerts(tmp_path: Path) -> None:
    pack = write_pack(tmp_path)
    path = write_flows(tmp_path)
    duck, python = scan(pack, path, "duckdb"), scan(pack, path, "python")
    assert comparable(duck.alerts) == comparable(python.alerts)
    assert len(duck.alerts) == 3
    assert duck.matches == python.matches


def test_the_projected_read_loads_the_selector_columns(tmp_path: Path) -> None:
    pack = write_pack(tmp_path)
    scanner = engine_named("duckdb").scanner(pack, pack.active_rules([]))
    columns = scanner.columns()
    assert columns is not None
    assert {"srcAddr", "dstAddr"} <= set(columns)
    assert not any(c.startswith("p_enrichment") for c in columns)


def test_a_pack_without_tables_scans_as_before(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, config={})
    (tmp_path / "pack" / "lookup_tables" / "tor.yml").unlink()
    pack = load_pack([tmp_path / "pack"], parse_config({}, str(tmp_path / "flowwarden.yaml")))
    result = scan(pack, write_flows(tmp_path), "duckdb")
    assert [a.rule_id for a in result.alerts] == []
    assert result.notes == ["refreshed: no data here (Panther refreshes it): give its file "
                            "under lookup_tables: in flowwarden.yaml"]
    # the rules' tables are defined nowhere now
    assert [n.split(" is not defined, so ")[0] for n in result.hints] == ["iocs",
                                                                         "tor_exit_nodes"]


# -- differential: the built-in enrichment rules, compiled against Python, on random flows --
TOR_NODES = ["185.220.101.4", "2a0b:f4c2::1"]
IOCS = [("203.0.113.77/32", 90), ("198.51.100.0/24", 60), ("198.51.0.0/16", 20),
        ("2001:db8:bad::/48", 85)]
ADDRESSES = [*TOR_NODES, "203.0.113.77", "203.0.113.78", "198.51.100.9", "198.51.7.7",
             "2001:db8:bad::5", "::ffff:185.220.101.4", "10.0.0.5", "fe80::1", None]


@pytest.fixture(scope="module")
def enriched_default_pack(tmp_path_factory: pytest.TempPathFactory) -> Pack:
    from flowwarden.rules.loader import resolve_pack_paths

    folder = tmp_path_factory.mktemp("enriched")
    (folder / "exits.txt").write_text("# bulk list\n" + "\n".join(TOR_NODES) + "\n")
    (folder / "iocs.csv").write_text("indicator,confidence\n" + "".join(
        f"{network},{confidence}\n" for network, confidence in IOCS))
    both = {"AWS.VPCFlow": ["srcAddr", "dstAddr"]}
    config = parse_config({"lookup_tables": {
        "tor_exit_nodes": {"path": "exits.txt", "kind": "tor-exits", "log_types": both},
        "threat_intel": {"path": "iocs.csv", "kind": "ioc-csv", "log_types": both}}},
        str(folder / "flowwarden.yaml"))
    return load_pack(resolve_pack_paths([]), config)


@st.composite
def enriched_flows(draw: st.DrawFn) -> list[dict]:
    return [{"srcAddr": draw(st.sampled_from(ADDRESSES)), "dstAddr": draw(st.sampled_from(ADDRESSES)),
             "srcPort": 40000, "dstPort": draw(st.sampled_from([22, 443, 8443])), "protocol": 6,
             "action": draw(st.sampled_from(["ACCEPT", "REJECT", None])), "status": "OK",
             "account": "123456789010", "p_log_type": "AWS.VPCFlow"}
            for _ in range(draw(st.integers(1, 12)))]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(records=enriched_flows())
def test_enrichment_rules_compiled_equal_python_on_random_flows(enriched_default_pack: Pack,
                                                                records: list[dict]) -> None:
    item = Item("AWS.VPCFlow", "mem", batch_of(records, [T0] * len(records)))
    result = same(enriched_default_pack, [item])
    # the rules alert exactly where Python's ipaddress says the tables hold an address
    accepted = [r for r in records if r["action"] == "ACCEPT"]
    tor = [r for r in accepted if r["srcAddr"] in TOR_NODES or r["dstAddr"] in TOR_NODES]
    assert (result.matches["AWS.VPC.TorTraffic"] > 0) == bool(tor)
    assert (result.matches["AWS.VPC.ThreatIntelMatch"] > 0) == any(
        _in_iocs(r["srcAddr"]) or _in_iocs(r["dstAddr"]) for r in accepted)


def _in_iocs(address: str | None) -> bool:
    import ipaddress

    if address is None:
        return False
    parsed = ipaddress.ip_address(address)
    return any(parsed in ipaddress.ip_network(network) for network, _ in IOCS)


def test_phase_one_batches_carry_only_what_the_queries_read(tmp_path: Path) -> None:
    pack = write_pack(tmp_path)
    scanner = engine_named("duckdb").scanner(pack, pack.active_rules([]))
    # the IOC rule tests one field; the Tor rule tests whole rows (their truthiness)
    assert scanner.enrichment.reads["AWS.VPCFlow"] == {
        "iocs": {"dstAddr": frozenset({"confidence"})},
        "tor_exit_nodes": {"srcAddr": None, "dstAddr": None}}
    [item] = narrowed(read([write_flows(tmp_path)]), phase_one_columns([scanner]))
    enriched = scanner.enrichment.batch(item)
    tables = enriched.batch.schema.field("p_enrichment").type
    assert tables.field("iocs").type == pa.struct([("dstAddr", pa.struct([
        ("confidence", pa.dictionary(pa.int32(), pa.int64()))]))])
    assert tables.field("tor_exit_nodes").type.field("srcAddr").type.names == [
        "ip", "nickname", "p_match"]
    # the complete rows, which the rules' Python and the alerts see, have everything
    complete = enriched.full_rows(np.arange(len(FLOWS)))
    iocs = complete.schema.field("p_enrichment").type.field("iocs").type
    assert iocs.field("dstAddr").type.names == ["cidr", "confidence", "p_match"]
    assert complete.column("p_enrichment").to_pylist()[3]["iocs"]["dstAddr"] == {
        "cidr": f"{IOC_HOST}/32", "confidence": 90, "p_match": IOC_HOST}


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_a_rule_reading_a_table_nobody_defined_is_a_note(default_pack: Pack, engine: str
                                                         ) -> None:
    rules = [default_pack.rule("AWS.VPC.ThreatIntelMatch"), default_pack.rule("AWS.VPC.TorTraffic"),
             default_pack.rule("AWS.VPC.PortScan")]
    hints = engine_named(engine).scanner(default_pack, rules).result.hints
    assert hints == [
        f"{table} is not defined, so {rule} cannot match through it: give it under "
        "lookup_tables: in flowwarden.yaml (README: Enrichment) or disable the rule"
        for table, rule in (("threat_intel", "AWS.VPC.ThreatIntelMatch"),
                            ("tor_exit_nodes", "AWS.VPC.TorTraffic"))]


def test_a_defined_table_is_no_such_note(tmp_path: Path) -> None:
    pack = write_pack(tmp_path)  # its rules read tables it defines
    assert engine_named("duckdb").scanner(pack, pack.active_rules([])).result.hints == []
