from __future__ import annotations

import doctest
from pathlib import Path

from flowwarden.logic import stats as stats_module
from flowwarden.logic.stats import ResidualInfo, logic_stats, render_stats
from flowwarden.rules.loader import load_pack

PARTIAL_RULES = Path(__file__).parent / "fixtures" / "partial_rules"


def test_builtin_pack_extracts_fully(default_pack):
    stats = logic_stats(default_pack)
    assert stats.counts == {"full": 6, "partial": 0, "none": 0}
    assert all(r.residuals == () and r.python_fields == () for r in stats.rules)
    assert render_stats(stats).endswith("6 rules: 6 full, 0 partial, 0 none")


def test_partial_pack_lists_each_residual_with_its_reason_and_line():
    stats = {r.rule_id: r for r in logic_stats(load_pack([PARTIAL_RULES])).rules}
    assert stats["Test.Regex"].status == "partial"
    assert stats["Test.Regex"].residuals == (
        ResidualInfo("call to ACCEPTED.match()", 10, 'ACCEPTED.match(event.udm("action") or "")'),)
    assert stats["Test.LocalVariable"].residuals[0].reason == "Assign statement"
    assert stats["Test.InternalNetworks"].status == "full"
    assert stats["Test.MethodMapping"].python_fields == (("OCSF.NetworkActivity", "interface_id"),)
    text = render_stats(logic_stats(load_pack([PARTIAL_RULES])))
    assert "  line 9: call to _suspicious(): _suspicious(event)" in text
    assert text.endswith("6 rules: 3 full, 3 partial, 0 none")


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
