"""The tuned pack: its unit tests, one named test per known fault, spec parity, compilation."""

from __future__ import annotations

import pytest

from flowwarden.engine.local.vectorized import compile_pack
from flowwarden.errors import RuleLoadError
from flowwarden.logic.extract import extract_rule
from flowwarden.rules.loader import BUILTIN_PACKS, load_pack, resolve_pack_paths
from flowwarden.rules.testing import run_test, run_tests

INBOUND, DNS = "AWS.VPC.InboundPortWhitelist", "AWS.VPC.UnapprovedOutboundDNS"
TUNED = {INBOUND: f"{INBOUND}.Tuned", DNS: f"{DNS}.Tuned"}
SPEC_TESTS = {
    INBOUND: ("Public to Private IP on Restricted Port", "Public to Private IP on Allowed Port",
              "Private to Private IP on Restricted Port",
              "Public to Private IP on Restricted Port - OCSF",
              "Public to Private IP on Allowed Port - OCSF"),
    DNS: ("Approved Outbound DNS Traffic", "Unapproved Outbound DNS Traffic",
          "Outbound Non-DNS Traffic", "Approved Outbound DNS Traffic - OCSF",
          "Unapproved Outbound DNS Traffic - OCSF"),
}
# (spec rule, test-name prefix, whether some record of it shows the spec rule getting it wrong)
FAULTS = [
    (INBOUND, "Fault return traffic", True),
    (INBOUND, "Fault one connection", False),  # legs the spec never sees (ENI-level addresses)
    (INBOUND, "Fault IPv6", True),
    (INBOUND, "Fault shared address space", True),
    (DNS, "Fault mDNS", True),
    (DNS, "Fault IPv6", True),
    (DNS, "Fault AWS resolver", True),
    (DNS, "Fault shared address space", True),
    (DNS, "Fault one connection", True),
]


def test_tuned_pack_loads_and_its_tests_pass(tuned_pack, spec_pack):
    assert tuned_pack.problems == []
    # The default pack with the tuned rules in place of the two spec rules, nothing else lost
    kept = {r.id for r in spec_pack.rules} - set(TUNED)
    assert len(kept) == 6 and {"AWS.VPC.PortScan", "AWS.VPC.TorTraffic"} <= kept
    assert sorted(r.id for r in tuned_pack.rules) == sorted([*kept, *TUNED.values()])
    assert tuned_pack.replaced == TUNED
    assert {r.id for r in tuned_pack.active_rules()} == {r.id for r in tuned_pack.rules}
    report = run_tests(tuned_pack)
    failures = [f"{o.rule_id} / {o.name}: {o.reason}" for o in report.outcomes if not o.passed]
    assert failures == []
    assert report.passed >= 60


def test_a_pack_directory_alone_loads_only_itself():
    alone = load_pack(resolve_pack_paths([str(BUILTIN_PACKS["tuned"])]))
    assert sorted(r.id for r in alone.rules) == sorted(TUNED.values()) and alone.replaced == {}
    assert [p.name for p in resolve_pack_paths(["tuned"])] == ["default", "tuned"]


def test_replaced_rules_are_named_when_asked_for(tuned_pack):
    with pytest.raises(RuleLoadError, match=f"{INBOUND} is replaced by {INBOUND}.Tuned"):
        tuned_pack.active_rules([INBOUND])


def test_replaces_must_name_rule_ids(tmp_path):
    (tmp_path / "r.py").write_text("def rule(e): return True\n")
    (tmp_path / "r.yml").write_text("AnalysisType: rule\nRuleID: R\nFilename: r.py\n"
                                    "Enabled: true\nSeverity: Low\nLogTypes: [X]\nReplaces: [1]\n")
    pack = load_pack([tmp_path])
    assert pack.rules == [] and "Replaces must be a RuleID" in pack.problems[0].message


@pytest.mark.parametrize(("spec_id", "prefix", "spec_wrong"), FAULTS,
                         ids=[f"{s.split('.')[-1]}-{p}" for s, p, _ in FAULTS])
def test_every_fault_has_named_test_records(tuned_pack, spec_pack, spec_id, prefix, spec_wrong):
    tuned = tuned_pack.rule(TUNED[spec_id])
    tests = [t for t in tuned.tests if t.name.startswith(prefix)]
    assert tests, f"no test named {prefix!r}"
    spec = spec_pack.rule(spec_id)
    # The same record under the spec rule: some must come out wrong, or the test shows no fault
    wrong = [t.name for t in tests if spec.evaluate(spec_pack.event(t.log)).matched != t.expected]
    assert bool(wrong) == spec_wrong, wrong


@pytest.mark.parametrize("spec_id", [INBOUND, DNS])
def test_spec_tests_and_metadata_are_kept(tuned_pack, spec_pack, spec_id):
    spec, tuned = spec_pack.rule(spec_id), tuned_pack.rule(TUNED[spec_id])
    spec_tests = {t.name: t for t in spec.tests}
    tuned_tests = {t.name: t for t in tuned.tests}
    for name in SPEC_TESTS[spec_id]:
        assert tuned_tests[name].log == spec_tests[name].log
        assert tuned_tests[name].expected == spec_tests[name].expected
        assert run_test(tuned_pack, tuned, tuned_tests[name]).passed
    for attr in ("severity", "tags", "reports", "log_types", "reference", "runbook"):
        assert getattr(tuned, attr) == getattr(spec, attr), attr
    assert tuned.enabled


def test_conditions_compile_without_residual(tuned_pack):
    for rule in tuned_pack.rules:
        assert extract_rule(rule).status == "full", rule.id
    compiled = compile_pack(tuned_pack)
    for (rule_id, log_type), plan in compiled.plans.items():
        if log_type == "AWS.VPCFlow":
            assert plan.exact, (rule_id, plan.reasons)
        else:  # OCSF: only the data model's flow_direction method needs Python
            assert all("flow_direction" in reason for reason in plan.reasons), plan.reasons


def test_initiator_flags_are_syn_without_ack(tuned_pack):
    flags = tuned_pack.rule(TUNED[INBOUND]).module.INITIATOR_FLAGS
    assert flags == {2, 3, 6, 7, 10, 11, 14, 15, 34, 35, 38, 39, 42, 43, 46, 47}
    assert {0, 1, 4, 18, 19} & flags == set()


def _dedups(pack, rule_id, logs):
    rule = pack.rule(rule_id)
    results = [rule.evaluate(pack.event({**log, "p_log_type": "AWS.VPCFlow"})) for log in logs]
    assert all(r.matched for r in results)
    return {r.dedup for r in results}


def test_one_dns_query_seen_by_client_and_nat_gateway_is_one_key(tuned_pack):
    # AWS's NAT example: the client's ENI, then the NAT gateway's ingress leg (pkt-dstaddr)
    client = {"srcAddr": "10.0.1.5", "dstAddr": "45.90.28.1", "pktSrcAddr": "10.0.1.5",
              "pktDstAddr": "45.90.28.1", "srcPort": 53211, "dstPort": 53, "protocol": 17}
    nat_leg = {**client, "dstAddr": "10.0.0.220"}
    v2_client = {k: v for k, v in client.items() if not k.startswith("pkt")}
    assert len(_dedups(tuned_pack, TUNED[DNS], [client, nat_leg, v2_client])) == 1


def test_one_inbound_connection_seen_by_two_enis_is_one_key(tuned_pack):
    # A transit gateway ENI (srcaddr its own IP, v3 format: no flow-direction) and the target
    target = {"srcAddr": "45.33.32.156", "dstAddr": "10.0.1.20", "srcPort": 50001,
              "dstPort": 5432, "protocol": 6, "tcpFlags": 2}
    tgw_leg = {**target, "srcAddr": "10.0.0.70", "pktSrcAddr": "45.33.32.156",
               "pktDstAddr": "10.0.1.20"}
    retry = {**target, "srcPort": 50007}
    assert len(_dedups(tuned_pack, TUNED[INBOUND], [target, tgw_leg, retry])) == 1


def test_pod_secondary_ip_keys_on_the_packet_address(tuned_pack):
    # EKS: the pod's ENI logs its primary IP in srcaddr and the pod in pkt-srcaddr
    network = ["100.64.0.0/16"]
    rule = tuned_pack.rule(TUNED[DNS])
    record = {"srcAddr": "100.64.1.4", "pktSrcAddr": "100.64.1.23", "dstAddr": "45.90.28.1",
              "pktDstAddr": "45.90.28.1", "dstPort": 53, "p_log_type": "AWS.VPCFlow"}
    original = rule.module.INTERNAL_NETWORKS
    rule.module.INTERNAL_NETWORKS = network
    try:
        result = rule.evaluate(tuned_pack.event(record))
    finally:
        rule.module.INTERNAL_NETWORKS = original
    assert result.matched
    assert result.dedup == "100.64.1.23->45.90.28.1:53"


def test_benchmark_pack_tuned_is_the_tuned_pack(engine_benchmark):
    pack, rules = engine_benchmark.load_rules("pack-tuned")
    _, default_rules = engine_benchmark.load_rules("pack")
    # The whole pack, each spec rule swapped for its tuned version
    assert sorted(r.id for r in rules) == sorted(
        TUNED.get(r.id, r.id) for r in default_rules)


def test_spark_executors_load_the_same_tuned_pack(tuned_pack):
    from types import SimpleNamespace

    from flowwarden.engine.spark.session import pack_spec

    session = SimpleNamespace(sparkContext=SimpleNamespace(master="local[2]"))
    spec = pack_spec(session, tuned_pack, tuned_pack.active_rules(), tuned_pack.paths)
    assert spec.paths == ("default", "tuned")
    loaded = spec.load()
    assert [r.id for r in loaded.rules] == [r.id for r in tuned_pack.rules]
    assert loaded.replaced == TUNED
    # A bare built-in name brings its layers on the executors too
    bare = type(spec)(("tuned",), spec.config).load()
    assert [r.id for r in bare.rules] == [r.id for r in tuned_pack.rules]
