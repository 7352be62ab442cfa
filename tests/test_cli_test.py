"""`flowwarden test` as Panther's test tool users rely on it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from flowwarden.cli.app import main
from tests.rules.test_kinds import write_kinds

RULE_YML = """AnalysisType: rule
RuleID: {rule_id}
Filename: r.py
Enabled: true
Severity: {severity}
LogTypes: [{log_type}]
Tags: [{tag}]
Tests:
  - Name: hit
    ExpectedResult: true
    Log: {{a: 1}}
  - Name: miss
    ExpectedResult: false
    Log: {{a: 2}}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def tree(tmp_path: Path) -> Path:
    write_kinds(tmp_path)
    (tmp_path / "r.py").write_text("def rule(event):\n    return event.get('a') == 1\n")
    for rule_id, severity, log_type, tag in [("Okta.One", "High", "Okta.SystemLog", "Okta"),
                                             ("Aws.Two", "Low", "AWS.CloudTrail", "AWS")]:
        (tmp_path / f"{rule_id}.yml").write_text(RULE_YML.format(
            rule_id=rule_id, severity=severity, log_type=log_type, tag=tag))
    (tmp_path / "broken.yml").write_text(
        "AnalysisType: rule\nRuleID: Broken\nFilename: missing.py\nSeverity: High\n"
        "Enabled: true\nLogTypes: [Okta.SystemLog]\n")
    return tmp_path


def last_line(result: Result) -> str:
    return result.output.strip().splitlines()[-1]


def test_invalid_files_count_apart_from_failed_tests(tmp_path: Path) -> None:
    result = run("test", str(tree(tmp_path)))
    assert result.exit_code == 1
    assert last_line(result) == "8 passed, 1 failed, 1 invalid"
    assert "FAIL Bucket.Versioned (2/3 passed)" in result.output


def test_filters_select_by_any_attribute_and_count_only_what_they_select(tmp_path: Path) -> None:
    tree(tmp_path)
    cases = {
        ("Severity=low",): "4 passed, 0 failed",  # Aws.Two and the scheduled rule
        ("LogTypes=aws.cloudtrail,Nope",): "2 passed, 0 failed",
        ("Tags=okta", "Severity=High"): "2 passed, 0 failed",
        ("AnalysisType=scheduled_rule",): "2 passed, 0 failed",
        ("RuleID=Okta.One,Aws.Two",): "4 passed, 0 failed",
        ("AnalysisType!=rule,policy",): "2 passed, 0 failed",
    }
    for filters, expected in cases.items():
        args = [part for f in filters for part in ("--filter", f)]
        result = run("test", str(tmp_path), *args)
        # The broken file is not selected: it neither counts nor fails the run.
        assert (result.exit_code, last_line(result)) == (0, expected), (filters, result.output)
    broken = run("test", str(tmp_path), "--filter", "Severity=High")
    assert (broken.exit_code, last_line(broken)) == (1, "2 passed, 0 failed, 1 invalid")
    nothing = run("test", str(tmp_path), "--filter", "Tags=typo")
    assert (nothing.exit_code, last_line(nothing)) == (1, "0 passed, 0 failed")
    assert "error: no detection matched --filter Tags=typo" in nothing.output


def test_bad_filters_are_usage_errors(tmp_path: Path) -> None:
    for bad, words in [("Colour=red", "Colour is not a detection attribute"),
                       ("Severity=", "takes KEY=VALUE"), ("Enabled=maybe", "true or false")]:
        result = run("test", str(tmp_path), "--filter", bad)
        assert result.exit_code == 2 and words in result.output, result.output


def test_minimum_tests_and_verbose(tmp_path: Path) -> None:
    tree(tmp_path)
    result = run("test", str(tmp_path), "--filter", "AnalysisType=rule,scheduled_rule",
                 "--minimum-tests", "3", "--verbose")
    assert result.exit_code == 1
    assert last_line(result) == "6 passed, 3 failed, 1 invalid"
    assert "  PASS hit" in result.output and "  PASS miss" in result.output
    assert ("  FAIL (test coverage): Insufficient test coverage: 3 tests required but only "
            "2 found") in result.output
    quiet = run("test", str(tmp_path), "--filter", "RuleID=Okta.One")
    assert "PASS Okta.One (2 tests)" in quiet.output and "  PASS hit" not in quiet.output


def test_what_a_rule_prints_shows_under_its_test_with_verbose(tmp_path: Path) -> None:
    tree(tmp_path)
    (tmp_path / "r.py").write_text(
        "def rule(event):\n    print('looking at', event.get('a'))\n    return event.get('a') == 1\n")
    quiet = run("test", str(tmp_path), "--filter", "RuleID=Okta.One")
    assert "looking at" not in quiet.output and last_line(quiet) == "2 passed, 0 failed"
    verbose = run("test", str(tmp_path), "--filter", "RuleID=Okta.One", "--verbose")
    assert "  PASS hit\n    | looking at 1\n  PASS miss\n    | looking at 2\n" in verbose.output
