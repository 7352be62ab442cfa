"""The built-in rules that read lookup-table enrichment: AWS.VPC.ThreatIntelMatch (the IOC
tables named in the configuration) and AWS.VPC.TorTraffic (Panther's tor_exit_nodes table).

Events carry ``p_enrichment`` as Panther shows it: ``p_enrichment.<LookupName>.<selector>`` is the
matched row plus ``p_match`` (a list of them for a list selector such as ``p_any_ip_addresses``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from flowwarden.config import parse_config
from flowwarden.engine.local.vectorized import BatchEvaluator
from flowwarden.errors import ConfigError
from flowwarden.logic.extract import extract_rule
from flowwarden.logic.rewrite import resolve_fields
from flowwarden.rules.loader import Pack, load_pack, resolve_pack_paths
from flowwarden.rules.rule import RuleResult
from flowwarden.rules.testing import run_tests

INTEL, TOR = "AWS.VPC.ThreatIntelMatch", "AWS.VPC.TorTraffic"
VPC, OCSF = "AWS.VPCFlow", "OCSF.NetworkActivity"
# codes of the compiled verdict (flowwarden.engine.local.vectorized): no, yes, ask Python
NO, YES, PYTHON = 0, 1, 2


def _row(address: str, **fields: Any) -> dict[str, Any]:
    return {**fields, "p_match": address}


def flow(src: str, dst: str, action: str = "ACCEPT", **enrichment: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"srcAddr": src, "dstAddr": dst, "dstPort": 443, "action": action,
                             "account": "123456789012", "p_log_type": VPC}
    if enrichment:
        event["p_enrichment"] = enrichment
    return event


def evaluate(pack: Pack, rule_id: str, event: dict[str, Any]) -> RuleResult:
    result = pack.rule(rule_id).evaluate(pack.event(event))
    assert result.errors == {}
    return result


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack(resolve_pack_paths(["default"]))


def test_their_unit_tests_pass_and_cover_both_log_types(pack: Pack) -> None:
    report = run_tests(pack, [INTEL, TOR], minimum_tests=2)
    assert [f"{o.rule_id} / {o.name}: {o.reason}" for o in report.outcomes if not o.passed] == []
    for rule_id in (INTEL, TOR):
        rule = pack.rule(rule_id)
        assert {t.expected for t in rule.tests} == {True, False}
        assert {t.log["p_log_type"] for t in rule.tests if t.expected} == {VPC, OCSF}
        assert rule.mitre and rule.runbook and rule.reference
        assert rule.log_types == (VPC, OCSF)


@pytest.mark.parametrize(("confidence", "severity"), [
    (95, "High"), (80, "High"), ("79.5", "Medium"), (50, "Medium"), (49, "Low"), (0, "Low"),
    (None, "Medium"), ("unrated", "Medium"), (True, "Medium"),  # none: the YAML's Medium
])
def test_threat_intel_severity_follows_confidence_and_never_reaches_critical(
        pack: Pack, confidence: Any, severity: str) -> None:
    row = _row("198.51.100.7", indicator="198.51.100.0/24", confidence=confidence)
    result = evaluate(pack, INTEL, flow("198.51.100.7", "10.0.0.5",
                                        threat_intel={"srcAddr": row}))
    assert result.matched is True and result.severity == severity


def test_threat_intel_title_dedup_and_context_name_the_indicator(pack: Pack) -> None:
    row = _row("203.0.113.9", indicator="203.0.113.9", confidence=70, source="feed-a")
    result = evaluate(pack, INTEL, flow("10.0.0.5", "203.0.113.9", threat_intel={"dstAddr": row}))
    assert result.title == ("Accepted traffic from [10.0.0.5] to threat-intel address "
                            "[203.0.113.9]")
    assert result.dedup == "203.0.113.9"
    context = result.alert_context
    assert context is not None
    assert context["threat_intel"] == {"table": "threat_intel", "selector": "dstAddr",
                                       "direction": "destination", "address": "203.0.113.9",
                                       "indicator": row}
    # the flow's own fields, as the pack's other rules give them
    assert context["source_ip"] == "10.0.0.5" and context["account_id"] == "123456789012"
    inbound = evaluate(pack, INTEL, flow("203.0.113.9", "10.0.0.5",
                                         threat_intel={"srcAddr": row}))
    assert inbound.title == ("Accepted traffic from threat-intel address [203.0.113.9] to "
                             "[10.0.0.5]")
    assert inbound.dedup == result.dedup  # one alert per indicator address, either direction


def test_threat_intel_reads_the_configured_tables_only(tmp_path: Any) -> None:
    config = parse_config({"threat_intel_tables": ["misp_ips", "abuse_ch"]})
    pack = load_pack(resolve_pack_paths(["default"]), config)
    row = _row("192.0.2.1", confidence=90)
    assert evaluate(pack, INTEL, flow("192.0.2.1", "10.0.0.1",
                                      threat_intel={"srcAddr": row})).matched is False
    both = evaluate(pack, INTEL, flow("192.0.2.1", "192.0.2.2",
                                      misp_ips={"dstAddr": _row("192.0.2.2", confidence=10)},
                                      abuse_ch={"srcAddr": _row("192.0.2.1", confidence=60)}))
    # tables in name order: the first table's first match decides title, dedup and severity
    assert both.matched is True and both.dedup == "192.0.2.1" and both.severity == "Medium"
    assert both.alert_context is not None
    assert both.alert_context["threat_intel"]["table"] == "abuse_ch"
    with pytest.raises(ConfigError, match="threat_intel_tables"):
        parse_config({"threat_intel_tables": ["no spaces"]})


def test_threat_intel_list_selector_finds_the_side_of_the_address(pack: Pack) -> None:
    # NAT: the threat-intel address is the packet-level destination, not the interface's
    event = flow("10.0.1.5", "10.0.0.220",
                 threat_intel={"p_any_ip_addresses": [_row("203.0.113.5", confidence=85)]})
    event["pktSrcAddr"], event["pktDstAddr"] = "10.0.1.5", "203.0.113.5"
    result = evaluate(pack, INTEL, event)
    assert result.matched is True and result.severity == "High"
    assert result.alert_context is not None
    assert result.alert_context["threat_intel"]["direction"] == "destination"
    assert result.title == ("Accepted traffic from [10.0.1.5] to threat-intel address "
                            "[203.0.113.5]")


def test_tor_direction_decides_title_and_severity(pack: Pack) -> None:
    node = {"ip": "185.220.101.4"}
    inbound = evaluate(pack, TOR, flow("185.220.101.4", "10.0.0.8", tor_exit_nodes={
        "srcAddr": _row("185.220.101.4", **node)}))
    outbound = evaluate(pack, TOR, flow("10.0.0.8", "185.220.101.4", tor_exit_nodes={
        "dstAddr": _row("185.220.101.4", **node)}))
    assert inbound.title == ("Accepted inbound traffic from Tor exit node [185.220.101.4] to "
                             "[10.0.0.8]")
    assert outbound.title == ("Accepted outbound traffic from [10.0.0.8] to Tor exit node "
                              "[185.220.101.4]")
    assert (inbound.severity, outbound.severity) == ("Medium", "High")
    assert inbound.dedup == outbound.dedup == "185.220.101.4"
    assert outbound.alert_context is not None
    assert outbound.alert_context["tor"]["direction"] == "outbound"
    assert outbound.alert_context["tor"]["row"] == _row("185.220.101.4", **node)
    rejected = evaluate(pack, TOR, flow("185.220.101.4", "10.0.0.8", action="REJECT",
                                        tor_exit_nodes={"srcAddr": _row("185.220.101.4")}))
    assert rejected.matched is False


def test_panther_tor_helper_reads_the_same_shape(pack: Pack) -> None:
    # panther-analysis's TorExitNodes helper (global_helpers/panther_tor_helpers.py) reads
    # p_enrichment.tor_exit_nodes.<selector>.ip: the shape this rule's tests carry
    event = pack.event(flow("185.220.101.4", "10.0.0.8", tor_exit_nodes={
        "srcAddr": _row("185.220.101.4", ip="185.220.101.4")}))
    assert event.deep_get("p_enrichment", "tor_exit_nodes", "srcAddr", "ip") == "185.220.101.4"


ROW = pa.struct([("ip", pa.string()), ("confidence", pa.int64()), ("p_match", pa.string())])


def _codes(pack: Pack, rule_id: str, log_type: str, batch: pa.RecordBatch) -> list[int]:
    condition = resolve_fields(extract_rule(pack.rule(rule_id)).condition,
                               pack.data_models.get(log_type))
    return BatchEvaluator().codes({"r": condition}, batch)["r"].tolist()


def _enrichment(table: str, selectors: list[str], rows: list[dict[str, Any] | None],
                item: pa.DataType = ROW) -> pa.Array:
    kind = pa.struct([(table, pa.struct([(s, item) for s in selectors]))])
    return pa.array([None if r is None else {table: r} for r in rows], kind)


def test_both_rules_compile_into_the_query(pack: Pack) -> None:
    for rule_id in (INTEL, TOR):
        assert extract_rule(pack.rule(rule_id)).status == "full"
    hit = {"ip": "9.9.9.9", "confidence": 90, "p_match": "9.9.9.9"}
    vpc = pa.record_batch({
        "action": ["ACCEPT", "ACCEPT", "REJECT"], "srcAddr": ["9.9.9.9", "10.0.0.1", "9.9.9.9"],
        "dstAddr": ["10.0.0.1"] * 3,
        "p_enrichment": _enrichment("threat_intel", ["srcAddr", "dstAddr"],
                                    [{"srcAddr": hit}, None, {"srcAddr": hit}]),
    })
    assert _codes(pack, INTEL, VPC, vpc) == [YES, NO, NO]  # decided without Python
    assert _codes(pack, TOR, VPC, vpc) == [NO, NO, NO]  # no tor_exit_nodes table in the batch
    ocsf = pa.record_batch({
        "action": ["Allowed", "Allowed", "Denied"],
        "p_enrichment": _enrichment("tor_exit_nodes", ["src_endpoint.ip", "dst_endpoint.ip"],
                                    [{"dst_endpoint.ip": hit}, None, {"src_endpoint.ip": hit}]),
    })
    assert _codes(pack, TOR, OCSF, ocsf) == [YES, NO, NO]
    # a table selecting a list (p_any_ip_addresses): the renderer leaves list truthiness to Python
    listed = pa.record_batch({
        "action": ["ACCEPT", "REJECT"],
        "p_enrichment": _enrichment("threat_intel", ["p_any_ip_addresses"],
                                    [{"p_any_ip_addresses": [hit]}, None], pa.list_(ROW)),
    })
    assert _codes(pack, INTEL, VPC, listed) == [PYTHON, NO]
