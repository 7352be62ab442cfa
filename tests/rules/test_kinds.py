from __future__ import annotations

from pathlib import Path
from unittest.mock import MagicMock

from flowwarden.rules.filters import parse_filters, selector
from flowwarden.rules.kinds import Policy, ScheduledRule, kind
from flowwarden.rules.loader import load_pack
from flowwarden.rules.testing import mock_object, run_tests

POLICY_YML = """AnalysisType: policy
PolicyID: Bucket.Versioned
Filename: bucket.py
Enabled: true
Severity: Medium
ResourceTypes: [AWS.S3.Bucket]
Tests:
  - Name: versioned
    ExpectedResult: true
    Resource: {Versioning: Enabled, Tags: [a, b]}
  - Name: not versioned
    ExpectedResult: false
    Resource: {Versioning: null}
  - Name: wrong on purpose
    ExpectedResult: true
    Resource: {}
"""
POLICY_PY = """def policy(resource):
    assert isinstance(resource.get("Tags", []), list)
    return resource.get("Versioning") == "Enabled"

def title(resource):
    return "bucket not versioned"
"""
SCHEDULED_YML = """AnalysisType: scheduled_rule
RuleID: Query.Result
Filename: scheduled.py
Enabled: true
Severity: Low
ScheduledQueries: [My Query]
Tests:
  - Name: many
    ExpectedResult: true
    Log: {count: 12, srcAddr: 1.2.3.4, p_log_type: AWS.VPCFlow}  # no data model: udm() is None
  - Name: few
    ExpectedResult: false
    Log: {count: 2}
"""
SCHEDULED_PY = """def rule(event):
    return event.get("count", 0) > 10 and event.udm("source_ip") is None
"""


def write_kinds(tmp_path: Path) -> Path:
    for name, text in [("bucket.yml", POLICY_YML), ("bucket.py", POLICY_PY),
                       ("scheduled.yml", SCHEDULED_YML), ("scheduled.py", SCHEDULED_PY)]:
        (tmp_path / name).write_text(text)
    return tmp_path


def test_policies_and_scheduled_rules_load_and_run_their_tests(tmp_path: Path) -> None:
    pack = load_pack([write_kinds(tmp_path)])
    assert pack.problems == []
    policy, scheduled = pack.rule("Bucket.Versioned"), pack.rule("Query.Result")
    assert isinstance(policy, Policy) and isinstance(scheduled, ScheduledRule)
    assert (kind(policy), kind(scheduled)) == ("policy", "scheduled_rule")
    assert policy.log_types == ("AWS.S3.Bucket",) and scheduled.log_types == ("My Query",)
    outcomes = {o.name: (o.passed, o.reason) for o in run_tests(pack).outcomes}
    assert outcomes == {"versioned": (True, ""), "not versioned": (True, ""),
                        "wrong on purpose": (False, "expected True, got False"),
                        "many": (True, ""), "few": (True, "")}


def test_a_failing_policy_is_a_match_with_its_alert_fields(tmp_path: Path) -> None:
    pack = load_pack([write_kinds(tmp_path)])
    policy = pack.rule("Bucket.Versioned")
    finding = policy.evaluate(pack.event({"Versioning": "Suspended"}))
    assert finding.matched is True and finding.title == "bucket not versioned"
    assert policy.evaluate(pack.event({"Versioning": "Enabled"})).matched is False


def test_correlation_rules_and_templates_are_not_run(tmp_path: Path) -> None:
    (tmp_path / "corr.yml").write_text("AnalysisType: correlation_rule\nRuleID: C\n"
                                       "Detection: [{Sequence: []}]\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "example.yml").write_text(
        "AnalysisType: rule\nRuleID: Example\nFilename: nope.py\n")
    pack = load_pack([tmp_path])
    assert pack.problems == [] and pack.rules == []
    assert [reason.split(":")[0] for _, reason in pack.skipped] == [
        "AnalysisType correlation_rule"]
    assert "correlation backend" in pack.skipped[0][1]


def test_a_selector_leaves_unselected_detections_unloaded(tmp_path: Path) -> None:
    write_kinds(tmp_path)
    (tmp_path / "broken.yml").write_text(
        "AnalysisType: rule\nRuleID: Broken\nFilename: missing.py\nSeverity: High\n")
    everything = load_pack([tmp_path])
    assert len(everything.problems) == 1
    policies = load_pack([tmp_path], select=selector(parse_filters(["AnalysisType=policy"])))
    assert [r.id for r in policies.rules] == ["Bucket.Versioned"] and policies.problems == []
    low = load_pack([tmp_path], select=selector(parse_filters(["Severity!=medium,high"])))
    assert [r.id for r in low.rules] == ["Query.Result"]


def test_minimum_tests_fails_rules_with_too_few_or_one_sided_tests(tmp_path: Path) -> None:
    pack = load_pack([write_kinds(tmp_path)])
    few = [o for o in run_tests(pack, minimum_tests=3).outcomes if not o.passed]
    assert {(o.rule_id, o.reason) for o in few if o.name == "(test coverage)"} == {
        ("Query.Result", "Insufficient test coverage: 3 tests required but only 2 found")}
    (tmp_path / "scheduled.yml").write_text(SCHEDULED_YML.split("  - Name: few")[0])
    one_sided = run_tests(load_pack([tmp_path]), minimum_tests=1)
    assert all(o.passed for o in one_sided.outcomes if o.rule_id == "Query.Result")
    two = [o.reason for o in run_tests(load_pack([tmp_path]), minimum_tests=2).outcomes
           if o.rule_id == "Query.Result" and not o.passed]
    assert two == ["Insufficient test coverage: 2 tests required but only 1 found"]


def test_mocks_are_magicmocks_returning_their_value() -> None:
    text = mock_object('{"a": ["b"]}')
    assert isinstance(text, MagicMock) and text() == '{"a": ["b"]}'
    assert "a" not in text  # a MagicMock, not the JSON text: no substring match
    networks = mock_object(["10.0.0.0/8"])
    assert networks() == ["10.0.0.0/8"] and "10.0.0.0/8" in networks
    assert list(networks) == ["10.0.0.0/8"] and len(networks) == 1 and networks[0]
    assert not mock_object([]) and mock_object({"k": 1})["k"] == 1


def test_doctests_of_the_filter_module() -> None:
    import doctest

    from flowwarden.rules import filters

    result = doctest.testmod(filters)
    assert result.attempted >= 3 and result.failed == 0
