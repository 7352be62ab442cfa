from __future__ import annotations

from flowwarden.rules.loader import load_pack
from flowwarden.rules.testing import run_tests
from tests.conftest import FIXTURES


def test_builtin_pack_tests_all_pass_including_the_ten_spec_tests(default_pack):
    report = run_tests(default_pack)
    assert report.failed == 0
    spec = [o for o in report.outcomes if o.rule_id in
            ("AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.InboundPortWhitelist")]
    assert len(spec) >= 10


def test_spec_tests_are_copied_exactly(default_pack):
    dns = default_pack.rule("AWS.VPC.UnapprovedOutboundDNS")
    names = [t.name for t in dns.tests[:5]]
    assert names == [
        "Approved Outbound DNS Traffic",
        "Unapproved Outbound DNS Traffic",
        "Outbound Non-DNS Traffic",
        "Approved Outbound DNS Traffic - OCSF",
        "Unapproved Outbound DNS Traffic - OCSF",
    ]
    assert dns.tests[1].log == {"dstPort": 53, "dstAddr": "100.100.100.100",
                                "srcAddr": "10.0.0.1", "p_log_type": "AWS.VPCFlow"}


def test_mocks_patch_only_for_the_duration_of_one_test():
    pack = load_pack([FIXTURES / "panther_tree"])
    rule = pack.rule("Fixture.VPC.InternalTelnet")
    original = rule.module.is_internal
    report = run_tests(pack)
    assert report.failed == 0
    assert rule.module.is_internal is original


def test_failure_reasons_say_expected_and_got(tmp_path):
    (tmp_path / "r.yml").write_text(
        "AnalysisType: rule\nRuleID: R\nFilename: r.py\nEnabled: true\nSeverity: Low\n"
        "LogTypes: [X]\nTests:\n  - Name: wrong\n    ExpectedResult: true\n    Log: {a: 1}\n"
        "  - Name: raises\n    ExpectedResult: true\n    Log: {a: 2}\n")
    (tmp_path / "r.py").write_text("def rule(e):\n    assert e.get('a') == 1\n    return False\n")
    report = run_tests(load_pack([tmp_path]))
    reasons = {o.name: o.reason for o in report.outcomes}
    assert reasons == {"wrong": "expected True, got False",
                       "raises": "rule() raised AssertionError: "}
