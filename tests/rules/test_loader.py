from __future__ import annotations

from pathlib import Path

from flowwarden.config import parse_config
from flowwarden.errors import Location, RuleLoadError
from flowwarden.rules.loader import load_pack
from flowwarden.rules.testing import run_tests
from tests.conftest import FIXTURES


def test_panther_layout_tree_runs_unchanged():
    pack = load_pack([FIXTURES / "panther_tree"])
    assert pack.problems == []
    assert [r.id for r in pack.rules] == ["Fixture.Policy", "Fixture.VPC.InternalTelnet"]
    assert pack.data_models["AWS.VPCFlow"].id == "Standard.AWS.VPCFlow"
    report = run_tests(pack)
    assert (report.passed, report.failed) == (3, 0)


def test_other_analysis_types_are_skipped_with_a_reason():
    pack = load_pack([FIXTURES / "panther_tree"])
    kinds = sorted(reason.split(":")[0] for _, reason in pack.skipped)
    assert kinds == ["AnalysisType pack", "AnalysisType scheduled_query"]


def test_broken_rules_are_reported_with_their_path_and_others_still_load():
    pack = load_pack([FIXTURES / "broken_rules"])
    where = {str(p.location) for p in pack.problems}
    assert any(w.endswith("broken_syntax.py:1:16") for w in where)
    assert any(w.endswith("bad_severity.yml") for w in where)
    assert [r.id for r in pack.rules] == ["Fixture.Broken.NeighbourStillRuns"]
    assert run_tests(pack).failed == 0


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def test_validation_problems_each_name_the_file(tmp_path):
    write(tmp_path, "a.yml", "AnalysisType: rule\nRuleID: A\nFilename: a.py\nEnabled: true\nSeverity: Low\n")
    write(tmp_path, "b.yml", "AnalysisType: rule\nRuleID: B\nFilename: missing.py\nEnabled: true\n"
          "Severity: Low\nLogTypes: [X]\n")
    write(tmp_path, "c.yml", "AnalysisType: rule\nRuleID: C\nRuleID: C2\n")
    write(tmp_path, "d.yml", "AnalysisType: rule\nRuleID: D\nFilename: a.py\nEnabled: true\n"
          "Severity: Low\nLogTypes: []\n")
    write(tmp_path, "e.yml", "AnalysisType: wat\n")
    write(tmp_path, "a.py", "def rule(e): return True\n")
    pack = load_pack([tmp_path])
    messages = {Path(p.location.path).name: p.message for p in pack.problems}
    assert messages["a.yml"] == "missing required key(s): LogTypes"
    assert "missing.py" in messages["b.yml"]
    assert "duplicate key 'RuleID'" in messages["c.yml"]
    assert "LogTypes must be a non-empty list" in messages["d.yml"]
    assert "unknown AnalysisType 'wat'" in messages["e.yml"]
    assert pack.rules == []


def test_duplicate_rule_ids_are_a_problem(tmp_path):
    for name in ("one", "two"):
        write(tmp_path, f"{name}.yml", f"AnalysisType: rule\nRuleID: Same\nFilename: {name}.py\n"
              "Enabled: true\nSeverity: Low\nLogTypes: [X]\n")
        write(tmp_path, f"{name}.py", "def rule(e): return True\n")
    pack = load_pack([tmp_path])
    assert len(pack.rules) == 1
    assert "also defined" in pack.problems[0].message


def test_import_error_in_rule_module_is_located(tmp_path):
    write(tmp_path, "r.yml", "AnalysisType: rule\nRuleID: R\nFilename: r.py\nEnabled: true\n"
          "Severity: Low\nLogTypes: [X]\n")
    write(tmp_path, "r.py", "import os\nimport no_such_module_here\n")
    problem = load_pack([tmp_path]).problems[0]
    assert isinstance(problem, RuleLoadError)
    assert problem.location == Location(str(tmp_path / "r.py"), 2)
    assert "no_such_module_here" in problem.message


def test_rule_constants_from_config_replace_module_constants():
    config = parse_config({"rule_constants": {"Fixture.VPC.InternalTelnet": {"UNUSED": 1}}})
    pack = load_pack([FIXTURES / "panther_tree"], config)
    assert "has no constant 'UNUSED'" in pack.problems[0].message


def test_config_settings_reach_builtin_rules():
    pack = load_pack([FIXTURES.parent.parent / "flowwarden" / "packs" / "default"],
                     parse_config({"approved_dns_servers": ["9.9.9.9"]}))
    rule = pack.rule("AWS.VPC.UnapprovedOutboundDNS")
    event = {"dstPort": 53, "dstAddr": "9.9.9.9", "srcAddr": "10.0.0.1", "p_log_type": "AWS.VPCFlow"}
    assert rule.evaluate(pack.event(event)).matched is False
    event["dstAddr"] = "1.1.1.1"
    assert rule.evaluate(pack.event(event)).matched is True


def test_doctests():
    import doctest

    from flowwarden.rules import loader

    result = doctest.testmod(loader)
    assert result.attempted > 0 and result.failed == 0
