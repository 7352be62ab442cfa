from __future__ import annotations

import doctest
import json
from pathlib import Path

from click.testing import CliRunner

from flowwarden.cli.app import main
from flowwarden.logic import stats as stats_module
from flowwarden.logic.stats import (
    PackStats,
    ResidualInfo,
    RuleStats,
    logic_stats,
    reason_kind,
    render_stats,
    stats_json,
    top_reasons,
)
from flowwarden.rules.loader import load_pack

PARTIAL_RULES = Path(__file__).parent / "fixtures" / "partial_rules"


def test_builtin_pack_extracts_fully(default_pack):
    stats = logic_stats(default_pack)
    assert stats.counts == {"full": 8, "partial": 0, "none": 0}
    assert all(r.residuals == () and r.python_fields == () for r in stats.rules)
    assert render_stats(stats).endswith("8 rules: 8 full, 0 partial, 0 none")


def test_partial_pack_lists_each_residual_with_its_reason_and_line():
    stats = {r.rule_id: r for r in logic_stats(load_pack([PARTIAL_RULES])).rules}
    assert stats["Test.Regex"].status == "partial"
    assert stats["Test.Regex"].residuals == (
        ResidualInfo("call to ACCEPTED.match()", 10, 'ACCEPTED.match(event.udm("action") or "")'),)
    assert stats["Test.LocalVariable"].status == "full"  # `port = ...` read where it is used
    assert stats["Test.InternalNetworks"].status == "full"
    assert stats["Test.MethodMapping"].python_fields == (("OCSF.NetworkActivity", "interface_id"),)
    text = render_stats(logic_stats(load_pack([PARTIAL_RULES])))
    assert "Test.HelperFunction    full        0" in text  # _suspicious() inlined
    assert text.endswith("6 rules: 5 full, 1 partial, 0 none")


def test_a_rule_without_rule_function_is_none(tmp_path: Path):
    (tmp_path / "r.yml").write_text("AnalysisType: rule\nFilename: r.py\nRuleID: R\nEnabled: true\n"
                                    "LogTypes: [AWS.VPCFlow]\nSeverity: Low\n")
    (tmp_path / "r.py").write_text("def rule(event, extra=1):\n    return True\n")
    stats = logic_stats(load_pack([tmp_path]))
    assert stats.counts == {"full": 0, "partial": 0, "none": 1}
    assert stats.rules[0].residuals[0].reason == "rule() must take exactly one event argument"


def test_doctests():
    result = doctest.testmod(stats_module)
    assert result.attempted > 0 and result.failed == 0


def _rule(rule_id: str, status: str, *reasons: str) -> RuleStats:
    return RuleStats(rule_id, status, tuple(ResidualInfo(r, 1, "") for r in reasons))


MIXED = PackStats((
    _rule("A", "partial", "call to a.get()", "call to b.get()", "call to a.get()"),
    _rule("B", "partial", "call to c.get()", "Try statement"),
    _rule("C", "none", "Try statement"),
    _rule("D", "partial", "call to isinstance()"),
    _rule("E", "full"),
))


def test_top_reasons_count_rules_affected_not_residuals():
    # A has three .get() residuals: one rule. Method calls count together whatever the object.
    assert top_reasons(MIXED) == [("Try statement", 2), ("call to .get()", 2),
                                  ("call to isinstance()", 1)]
    assert top_reasons(MIXED, limit=1) == [("Try statement", 2)]
    assert reason_kind("call to helper()") == "call to helper()"


def test_render_stats_ends_with_reasons_and_counts():
    text = render_stats(MIXED)
    reasons = text.split("top residual reasons (rules affected):\n")[1]
    assert reasons.splitlines()[:3] == ["      2  Try statement", "      2  call to .get()",
                                        "      1  call to isinstance()"]
    assert text.endswith("5 rules: 1 full, 3 partial, 1 none")


def test_stats_json_has_counts_shares_and_reasons():
    data = stats_json(MIXED)
    assert data["rules_total"] == 5
    assert data["counts"] == {"full": 1, "partial": 3, "none": 1}
    assert data["percent"] == {"full": 20.0, "partial": 60.0, "none": 20.0}
    assert data["top_reasons"][0] == {"reason": "Try statement", "rules": 2}
    assert data["rules"][3]["residuals"] == [
        {"reason": "call to isinstance()", "line": 1, "source": ""}]
    assert "agreement" not in data


def test_logic_stats_command_json_output():
    result = CliRunner().invoke(main, ["logic", "stats", str(PARTIAL_RULES), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"] == {"full": 5, "partial": 1, "none": 0}
    assert data["top_reasons"] == [{"reason": "call to .match()", "rules": 1}]
    builtin = CliRunner().invoke(main, ["logic", "stats", "--format", "json", "--tests"])
    agreed = json.loads(builtin.output)["agreement"]
    assert agreed["events"] >= agreed["decided"] > 0 and agreed["disagreements"] == []
    text = CliRunner().invoke(main, ["logic", "stats", str(PARTIAL_RULES)])
    assert "top residual reasons (rules affected):\n      1  call to .match()" in text.output
