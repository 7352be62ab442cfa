from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flowwarden.rules.loader import load_pack

RULE_YAML = """\
AnalysisType: rule
Filename: r.py
RuleID: "T.Rule"
DisplayName: "Test rule"
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Medium
"""


def make_rule(tmp_path: Path, source: str, yaml_extra: str = ""):
    (tmp_path / "r.yml").write_text(RULE_YAML + yaml_extra)
    (tmp_path / "r.py").write_text(textwrap.dedent(source))
    pack = load_pack([tmp_path])
    assert not pack.problems, pack.problems
    return pack, pack.rule("T.Rule")


EVENT = {"dstPort": 22, "srcAddr": "1.2.3.4", "p_log_type": "AWS.VPCFlow"}


def test_match_runs_all_alert_functions(tmp_path):
    pack, rule = make_rule(tmp_path, """
        def rule(e): return True
        def title(e): return "T " + e.get("srcAddr")
        def dedup(e): return "D"
        def severity(e): return "critical"
        def alert_context(e): return {"port": e.udm("destination_port")}
        def description(e): return "desc"
        def reference(e): return "ref"
        def runbook(e): return "run"
        def destinations(e): return ["slack"]
        def unique(e): return e.get("dstPort")
    """)
    result = rule.evaluate(pack.event(EVENT))
    assert result.matched is True
    assert (result.title, result.dedup, result.severity) == ("T 1.2.3.4", "D", "Critical")
    assert result.alert_context == {"port": 22}
    assert (result.description, result.reference, result.runbook) == ("desc", "ref", "run")
    assert result.destinations == ["slack"]
    assert result.unique == "22"
    assert result.errors == {}


def test_alert_functions_do_not_run_without_a_match(tmp_path):
    pack, rule = make_rule(tmp_path, """
        CALLS = []
        def rule(e): return False
        def title(e):
            CALLS.append(1)
            return "x"
    """)
    result = rule.evaluate(pack.event(EVENT))
    assert result.matched is False and result.title is None
    assert rule.module.CALLS == []


def test_defaults_dedup_falls_back_to_title_then_default_string(tmp_path):
    pack, rule = make_rule(tmp_path, """
        def rule(e): return True
        def title(e): return "x" * 1500
    """)
    result = rule.evaluate(pack.event(EVENT))
    assert len(result.title) == 1000
    assert result.dedup == result.title
    assert result.severity == "Medium"

    pack2, rule2 = make_rule(tmp_path, "def rule(e): return True\n")
    assert rule2.evaluate(pack2.event(EVENT)).dedup == "defaultDedupString:T.Rule"


def test_severity_default_keyword_and_invalid_value(tmp_path):
    pack, rule = make_rule(tmp_path, """
        def rule(e): return True
        def severity(e): return "DEFAULT" if e.get("dstPort") == 22 else "Urgent"
    """)
    assert rule.evaluate(pack.event(EVENT)).severity == "Medium"
    bad = rule.evaluate(pack.event({**EVENT, "dstPort": 80}))
    assert bad.severity == "Medium"
    assert "severity" in bad.errors


def test_rule_exception_is_an_error_result(tmp_path):
    pack, rule = make_rule(tmp_path, """
        def rule(e): return 1 / 0
    """)
    result = rule.evaluate(pack.event(EVENT))
    assert result.matched is None
    assert result.rule_error == "ZeroDivisionError: division by zero"


def test_non_bool_rule_return_is_an_error(tmp_path):
    pack, rule = make_rule(tmp_path, "def rule(e): return e.get('srcAddr')\n")
    result = rule.evaluate(pack.event(EVENT))
    assert result.matched is None and "expected bool" in result.rule_error


@pytest.mark.parametrize("function", ["title", "dedup", "alert_context", "unique", "runbook"])
def test_each_alert_function_error_is_captured_and_the_alert_still_fires(tmp_path, function):
    pack, rule = make_rule(tmp_path, f"""
        def rule(e): return True
        def {function}(e): raise KeyError("boom")
    """)
    result = rule.evaluate(pack.event(EVENT))
    assert result.matched is True
    assert result.errors == {function: "KeyError: 'boom'"}
    assert result.dedup  # a dedup string always exists


def test_alert_context_must_be_a_mapping(tmp_path):
    pack, rule = make_rule(tmp_path, """
        def rule(e): return True
        def alert_context(e): return ["not", "a", "dict"]
    """)
    result = rule.evaluate(pack.event(EVENT))
    assert result.alert_context is None and "expected a mapping" in result.errors["alert_context"]


def test_threshold_and_dedup_period_are_read(tmp_path):
    _, rule = make_rule(tmp_path, "def rule(e): return True\n",
                        "Threshold: 5\nDedupPeriodMinutes: 15\n")
    assert (rule.threshold, rule.dedup_minutes) == (5, 15)
