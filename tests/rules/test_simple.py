from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flowwarden.engine.local.vectorized import compile_pack
from flowwarden.errors import Location, RuleLoadError
from flowwarden.logic import ir
from flowwarden.logic.extract import extract_rule, extract_source
from flowwarden.rules.event import PantherEvent
from flowwarden.rules.loader import load_pack
from flowwarden.rules.match import MatchCompiler
from flowwarden.rules.pysource import to_python
from flowwarden.rules.simple import ElementRenderer, SimpleRule, element_evaluators
from flowwarden.rules.testing import run_tests

EVENT = {
    "action": "repo.archived", "status": "success", "count": 7, "empty": "",
    "actor": {"name": "cat", "ip": "10.1.2.3", "org": "cat"},
    "entity": {"name": "Pluto", "moons": [
        {"name": "Charon", "year": 1978}, {"name": "Nix", "year": 2005},
        {"name": "Hydra", "year": 2005}]},
}


def matches(expression: Any, event: dict[str, Any] = EVENT) -> bool:
    """Compile one YAML detection body and run its rule() on ``event``."""
    doc = {"Detection": expression if isinstance(expression, list) else [expression]}
    compiler = MatchCompiler(Location("t.yml"))
    node = compiler.compile_all(doc["Detection"])
    evaluate = ElementRenderer(element_evaluators(compiler.elements)).render(node)
    return bool(evaluate(PantherEvent(event)))


@pytest.mark.parametrize(("expression", "expected"), [
    ({"Key": "action", "Condition": "Equals", "Value": "repo.archived"}, True),
    ({"Key": "action", "Condition": "DoesNotEqual", "Value": "repo.archived"}, False),
    ({"DeepKey": ["actor", "name"], "Condition": "Equals", "Value": "cat"}, True),
    ({"KeyPath": "actor.name", "Condition": "StartsWith", "Value": "ca"}, True),
    ({"KeyPath": "actor.name", "Condition": "EndsWith", "Value": "x"}, False),
    ({"KeyPath": "actor.name", "Condition": "DoesNotEndWith", "Value": "x"}, True),
    ({"Key": "action", "Condition": "Contains", "Value": "archive"}, True),
    ({"Key": "missing", "Condition": "Contains", "Value": "archive"}, False),
    ({"Key": "missing", "Condition": "DoesNotContain", "Value": "archive"}, True),
    ({"Key": "count", "Condition": "IsGreaterThan", "Value": 6}, True),
    ({"Key": "count", "Condition": "IsLessThanOrEquals", "Value": 6}, False),
    ({"Key": "missing", "Condition": "IsGreaterThan", "Value": 6}, False),
    ({"Key": "status", "Condition": "IsIn", "Values": ["success", "ok"]}, True),
    ({"Key": "status", "Condition": "IsNotIn", "Values": ["success", "ok"]}, False),
    ({"Key": "status", "Condition": "Exists"}, True),
    ({"Key": "missing", "Condition": "DoesNotExist"}, True),
    ({"Key": "missing", "Condition": "IsNull"}, True),
    ({"Key": "empty", "Condition": "IsNullOrEmpty"}, True),
    ({"Key": "status", "Condition": "IsNotNullOrEmpty"}, True),
    ({"Condition": "AlwaysFalse"}, False),
    ({"KeyPath": "actor.ip", "Condition": "IsIPAddressInCIDR", "Value": "10.0.0.0/8"}, True),
    ({"KeyPath": "actor.ip", "Condition": "IsIPAddressPrivate"}, True),
    ({"KeyPath": "actor.ip", "Condition": "IsIPAddressPublic"}, False),
    ({"Condition": "Equals", "Values": [{"KeyPath": "actor.name"}, {"KeyPath": "actor.org"}]},
     True),
    ({"Condition": "DoesNotEqual", "Values": [{"Key": "action"}, {"Key": "status"}]}, True),
])
def test_each_condition(expression: dict[str, Any], expected: bool) -> None:
    assert matches(expression) is expected


def test_combinators() -> None:
    yes = {"Key": "status", "Condition": "Equals", "Value": "success"}
    no = {"Key": "status", "Condition": "Equals", "Value": "failure"}
    assert matches({"All": [yes, no]}) is False
    assert matches({"Any": [no, yes]}) is True
    assert matches({"OnlyOne": [yes, no, no]}) is True
    assert matches({"OnlyOne": [yes, yes, no]}) is False
    assert matches({"None": [no, no]}) is True
    assert matches([yes, {"None": [yes]}]) is False


def test_list_comprehension_tests_each_element() -> None:
    def over(condition: str, year: int) -> dict[str, Any]:
        return {"KeyPath": "entity.moons", "Condition": condition, "Expressions": [
            {"Key": "year", "Condition": "Equals", "Value": year}]}

    assert matches(over("AnyElement", 2005)) is True
    assert matches(over("OnlyOneElement", 2005)) is False
    assert matches(over("OnlyOneElement", 1978)) is True
    assert matches(over("AllElements", 2005)) is False
    assert matches(over("NoElement", 1999)) is True
    assert matches(over("AnyElement", 2005), {"entity": {"moons": "not a list"}}) is False


def test_unsupported_expressions_are_load_errors_naming_them() -> None:
    compiler = MatchCompiler(Location("t.yml"))
    for bad, words in [({"Key": "a", "Condition": "Matches", "Value": "x"}, "'Matches'"),
                       ({"Key": "a"}, "without a Condition"),
                       ({"Condition": "Equals", "Value": 1}, "without Key"),
                       ({"KeyPath": "a[*].b", "Condition": "Exists"}, "wildcards"),
                       ({"Key": "a", "Condition": "Equals", "Value": [1]}, "values must be")]:
        with pytest.raises(RuleLoadError, match=words):
            compiler.compile(bad)


def test_python_source_extracts_back_to_the_same_condition() -> None:
    compiler = MatchCompiler(Location("t.yml"))
    node = compiler.compile_all([
        {"Key": "status", "Condition": "IsIn", "Values": ["a", "b", 3]},
        {"Any": [{"KeyPath": "actor.name", "Condition": "StartsWith", "Value": "c"},
                 {"Key": "action", "Condition": "DoesNotContain", "Value": "x"},
                 {"Key": "count", "Condition": "IsGreaterThanOrEquals", "Value": 2}]},
        {"Key": "status", "Condition": "IsNullOrEmpty"},
    ])
    source = f"def rule(event):\n    return {to_python(node, {})}\n"
    assert extract_source(source) == node


def write_detection(tmp_path: Path, body: dict[str, Any]) -> Path:
    doc = {"AnalysisType": "rule", "RuleID": "Simple.Rule", "Enabled": True,
           "Severity": "Low", "LogTypes": ["GitHub.Audit"], **body}
    path = tmp_path / "simple.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_yaml_detection_loads_runs_its_tests_and_vectorizes(tmp_path: Path) -> None:
    write_detection(tmp_path, {
        "Detection": [{"Key": "action", "Condition": "Equals", "Value": "repo.archived"}],
        "InlineFilters": [{"Key": "org", "Condition": "DoesNotEqual", "Value": "test-org"}],
        "AlertTitle": "Repository [{repo}] archived by {actor.name}",
        "AlertContext": [{"KeyName": "who", "KeyValue": {"KeyPath": "actor.name"}}],
        "Tests": [
            {"Name": "hit", "ExpectedResult": True, "Log": {"action": "repo.archived"}},
            {"Name": "filtered", "ExpectedResult": False,
             "Log": {"action": "repo.archived", "org": "test-org"}},
            {"Name": "other", "ExpectedResult": False, "Log": {"action": "repo.create"}}],
    })
    pack = load_pack([tmp_path])
    assert pack.problems == []
    rule = pack.rule("Simple.Rule")
    assert isinstance(rule, SimpleRule)
    assert run_tests(pack).failed == 0
    assert extract_rule(rule).condition == rule.condition
    assert all(plan.exact for plan in compile_pack(pack).plans.values())
    result = rule.evaluate(pack.event({"action": "repo.archived", "repo": "o/r",
                                       "actor": {"name": "cat"}}))
    assert result.title == "Repository [o/r] archived by cat"
    assert result.alert_context == {"who": "cat"}


def test_list_comprehensions_fall_back_to_python_in_the_engine(tmp_path: Path) -> None:
    write_detection(tmp_path, {"Detection": [{
        "KeyPath": "moons", "Condition": "AnyElement",
        "Expressions": [{"Key": "name", "Condition": "Equals", "Value": "Nix"}]}]})
    pack = load_pack([tmp_path])
    rule = pack.rule("Simple.Rule")
    assert isinstance(rule.condition, ir.Residual)
    assert rule.evaluate(pack.event({"moons": [{"name": "Nix"}]})).matched is True
    assert rule.evaluate(pack.event({"moons": [{"name": "Kerberos"}]})).matched is False


def test_python_rules_accept_only_always_true_inline_filters(tmp_path: Path) -> None:
    (tmp_path / "r.py").write_text("def rule(event):\n    return True\n")
    base = ("AnalysisType: rule\nRuleID: R\nFilename: r.py\nEnabled: true\nSeverity: Low\n"
            "LogTypes: [X]\n")
    (tmp_path / "r.yml").write_text(base + "InlineFilters:\n  - All: []\n")
    assert load_pack([tmp_path]).problems == []
    (tmp_path / "r.yml").write_text(
        base + "InlineFilters:\n  - Key: a\n    Condition: Exists\n")
    problems = load_pack([tmp_path]).problems
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'r.yml'}: InlineFilters on a Python rule are not supported yet"]


def test_dynamic_severities_take_the_first_change_whose_conditions_hold(tmp_path: Path) -> None:
    write_detection(tmp_path, {
        "Detection": [{"Key": "action", "Condition": "Exists"}],
        "DynamicSeverities": [
            {"ChangeTo": "CRITICAL", "Conditions": [
                {"Key": "org", "Condition": "Equals", "Value": "prod"}]},
            {"ChangeTo": "High", "Conditions": [
                {"KeyPath": "moons", "Condition": "AnyElement", "Expressions": [
                    {"Key": "name", "Condition": "Equals", "Value": "Nix"}]}]}],
    })
    pack = load_pack([tmp_path])
    rule = pack.rule("Simple.Rule")

    def severity(event: dict[str, Any]) -> str | None:
        return rule.evaluate(pack.event({"action": "x", **event})).severity

    assert severity({"org": "prod", "moons": [{"name": "Nix"}]}) == "Critical"
    assert severity({"moons": [{"name": "Nix"}]}) == "High"
    assert severity({}) == "Low"


def test_unsupported_alert_keys_are_load_errors(tmp_path: Path) -> None:
    write_detection(tmp_path, {"Detection": [{"Condition": "AlwaysTrue"}],
                               "GroupBy": [{"Key": "actor"}]})
    assert "GroupBy is not supported" in str(load_pack([tmp_path]).problems[0])
    write_detection(tmp_path, {"Detection": [{"Condition": "AlwaysTrue"}],
                               "DynamicSeverities": [{"ChangeTo": "Urgent", "Conditions": []}]})
    assert "ChangeTo must be one of" in str(load_pack([tmp_path]).problems[0])
