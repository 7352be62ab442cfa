"""panther-analysis's GreyNoise V3 and OTX rules, and its Tor helper, run unchanged
(``tests/fixtures/panther_enrichment``, see its SOURCES.md): their own YAML tests pass, and on
generated VPC flow logs with matching tables they alert, alike from the duckdb and python
engines. The GreyNoise and OTX helpers read ``p_enrichment.<table>.<matched IP>``, which the
tables' ``layout: by-value`` gives; the Tor helper reads the selector-keyed default."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowwarden.config import load_config
from flowwarden.engine.engines import engine_named
from flowwarden.logs import DEFAULT_OPTIONS
from flowwarden.rules.loader import Pack, load_pack
from flowwarden.rules.testing import run_tests
from tests.conftest import FIXTURES
from tests.engine.test_enrichment import comparable as alerts_without_parse_time

FIXTURE = FIXTURES / "panther_enrichment"
GREYNOISE, OTX, TOR = ("Standard.GreyNoiseV3.MaliciousIP", "Standard.OTX.MaliciousIndicator",
                       "Fixture.VPC.TorExitNode")

MALICIOUS, UNKNOWN, BENIGN, BUSINESS = "203.0.113.50", "203.0.113.60", "198.51.100.8", "203.0.113.70"
PULSE_IP, TOR_EXIT = "198.51.100.23", "192.0.2.10"
FLOWS = [  # srcaddr, dstaddr, dstport, action
    (MALICIOUS, "10.0.0.5", 22, "ACCEPT"),
    ("10.0.0.6", UNKNOWN, 443, "ACCEPT"),
    (BENIGN, "10.0.0.5", 443, "ACCEPT"),
    (BUSINESS, "10.0.0.7", 443, "ACCEPT"),
    ("10.0.0.8", PULSE_IP, 443, "ACCEPT"),
    (TOR_EXIT, "10.0.0.9", 443, "ACCEPT"),
    (TOR_EXIT, "10.0.0.9", 443, "REJECT"),
    ("10.0.0.1", "10.0.0.2", 443, "ACCEPT"),
    (MALICIOUS, PULSE_IP, 8080, "ACCEPT"),
]
HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets " \
         "bytes start end action log-status"


def scanner_row(ip: str, classification: str, business: bool = False) -> dict[str, Any]:
    """A row shaped as GreyNoise V3 data appears in panther-analysis's tests."""
    return {"ip": ip,
            "internet_scanner_intelligence": {
                "classification": classification, "found": True, "actor": "tester",
                "metadata": {"asn": "AS64500", "organization": "Example"},
                "tags": [{"id": "t1", "name": "Scanner", "category": "activity"}]},
            "business_service_intelligence": {"found": business,
                                              "name": "Example DNS" if business else ""}}


GREYNOISE_ROWS = [scanner_row(MALICIOUS, "malicious"), scanner_row(UNKNOWN, "unknown"),
                  scanner_row(BENIGN, "benign"), scanner_row(BUSINESS, "malicious", True)]
OTX_ROWS = [{"indicator": PULSE_IP, "indicator_type": "IPv4", "id": "pulse-1",
             "name": "Test Pulse", "adversary": "APT-Test", "malware_families": ["TestRAT"],
             "tags": ["c2"], "tlp": "white"}]
def config(layout: str) -> dict[str, Any]:
    """flowwarden.yaml naming the three tables, GreyNoise's and OTX's in ``layout``."""
    return {"lookup_tables": {
        "greynoise_noise": {"path": "greynoise.jsonl", "primary_key": "ip", "layout": layout,
                            "log_types": {"AWS.VPCFlow": ["p_any_ip_addresses"]}},
        "pulses_otx": {"path": "otx.jsonl", "primary_key": "indicator", "layout": layout,
                       "log_types": {"AWS.VPCFlow": ["srcAddr", "dstAddr"]}},
        "tor_exit_nodes": {"path": "tor.csv"},  # its YAML (copied) gives the selectors
    }}


def write_inputs(tmp: Path, layout: str = "by-value") -> tuple[Pack, str]:
    (tmp / "greynoise.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GREYNOISE_ROWS))
    (tmp / "otx.jsonl").write_text("".join(json.dumps(r) + "\n" for r in OTX_ROWS))
    (tmp / "tor.csv").write_text(f"ip\n{TOR_EXIT}\n")
    (tmp / "flowwarden.yaml").write_text(yaml.safe_dump(config(layout)))
    lines = [HEADER] + [
        f"2 123456789010 eni-1 {src} {dst} 40000 {port} 6 10 840 1700000000 1700000060 {act} OK"
        for src, dst, port, act in FLOWS]
    (tmp / "flows.log").write_text("\n".join(lines) + "\n")
    pack = load_pack([FIXTURE], load_config(tmp / "flowwarden.yaml"))
    return pack, str(tmp / "flows.log")


def scan(pack: Pack, path: str, engine: str) -> Any:
    return engine_named(engine).scan(pack, pack.active_rules([]), [path], DEFAULT_OPTIONS).result


def comparable(alerts: Any) -> list[dict[str, Any]]:
    return sorted(alerts_without_parse_time(alerts), key=lambda a: (a["rule_id"], a["title"]))


def test_the_copied_rules_pass_their_own_tests() -> None:
    pack = load_pack([FIXTURE])
    assert not pack.problems
    report = run_tests(pack)
    per_rule = Counter(o.rule_id for o in report.outcomes)
    assert per_rule == {GREYNOISE: 5, OTX: 8, "Axonius.TorLogin": 3, TOR: 3}
    assert [o for o in report.outcomes if not o.passed] == []


def expected_alerts() -> dict[tuple[str, str], int]:
    """(rule, title) -> how many flows, worked out from FLOWS and the tables."""
    expected: Counter[tuple[str, str]] = Counter()
    alerting = {r["ip"]: r["internet_scanner_intelligence"]["classification"]
                for r in GREYNOISE_ROWS
                if not r["business_service_intelligence"]["found"]
                and r["internet_scanner_intelligence"]["classification"] != "benign"}
    for src, dst, _, action in FLOWS:
        hits = [ip for ip in (src, dst) if ip in alerting]
        if len(hits) == 1:
            expected[GREYNOISE, f"GreyNoise: {alerting[hits[0]].title()} IP [{hits[0]}] "
                                "detected in AWS.VPCFlow"] += 1
        if PULSE_IP in (src, dst):
            expected[OTX, f"OTX: Known threat IPv4 [{PULSE_IP}] detected in AWS.VPCFlow"] += 1
        if TOR_EXIT in (src, dst) and action == "ACCEPT":
            expected[TOR, f"Tor exit node {TOR_EXIT} (srcAddr)"] += 1
    return dict(expected)


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_they_alert_on_flow_logs_with_matching_tables(tmp_path: Path, engine: str) -> None:
    pack, flows = write_inputs(tmp_path)
    result = scan(pack, flows, engine)
    found = {(a.rule_id, a.title): a.event_count for a in result.alerts}
    assert found == expected_alerts()
    assert len(found) == 4  # malicious, unknown, the OTX pulse, Tor
    by_title = {a.title: a for a in result.alerts}
    malicious = by_title[f"GreyNoise: Malicious IP [{MALICIOUS}] detected in AWS.VPCFlow"]
    assert malicious.severity.upper() == "CRITICAL"
    assert malicious.alert_context[MALICIOUS]["MatchedClassification"] == "malicious"
    # the sample shows the table keyed by the matched address, as the helpers read it
    sample = malicious.samples[0]["p_enrichment"]
    assert list(sample["greynoise_noise"]) == [MALICIOUS]
    assert sample["greynoise_noise"][MALICIOUS]["p_match"] == MALICIOUS
    pulse = by_title[f"OTX: Known threat IPv4 [{PULSE_IP}] detected in AWS.VPCFlow"]
    assert pulse.severity.upper() == "CRITICAL"  # an adversary and malware families
    assert pulse.alert_context[PULSE_IP]["PulseName"] == "Test Pulse"
    tor = by_title[f"Tor exit node {TOR_EXIT} (srcAddr)"]
    assert tor.alert_context == {"srcAddr": TOR_EXIT}


def test_the_engines_give_identical_alerts(tmp_path: Path) -> None:
    pack, flows = write_inputs(tmp_path)
    duck, python = comparable(scan(pack, flows, "duckdb").alerts), \
        comparable(scan(pack, flows, "python").alerts)
    assert duck == python
    assert len(duck) == 4


def test_without_the_by_value_layout_greynoise_and_otx_stay_silent(tmp_path: Path) -> None:
    """What the layout is for: keyed by selector, the helpers find no match by address."""
    pack, flows = write_inputs(tmp_path, layout="by-selector")
    result = scan(pack, flows, "duckdb")
    assert {a.rule_id for a in result.alerts} == {TOR}
