from __future__ import annotations

from click.testing import CliRunner

from flowwarden.cli import main
from tests.conftest import FIXTURES


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_every_command_has_help():
    for command in main.commands:
        result = run(command, "--help")
        assert result.exit_code == 0, command
        assert "Usage:" in result.output


def test_test_command_last_line_counts_tests():
    result = run("test")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[-1].endswith(" passed, 0 failed")
    assert int(lines[-1].split()[0]) >= 40
    assert "PASS AWS.VPC.UnapprovedOutboundDNS" in result.output


def test_test_command_filter():
    result = run("test", "--filter", "RuleID=AWS.VPC.InboundPortWhitelist")
    assert result.exit_code == 0
    assert "UnapprovedOutboundDNS" not in result.output
    assert result.output.strip().splitlines()[-1] == "13 passed, 0 failed"


def test_test_command_reports_broken_rules_and_exits_1():
    result = run("test", str(FIXTURES / "broken_rules"))
    assert result.exit_code == 1
    assert "broken_syntax.py:1:16: syntax error" in result.output
    assert "PASS Fixture.Broken.NeighbourStillRuns (2 tests)" in result.output
    assert result.output.strip().splitlines()[-1] == "2 passed, 2 failed"


def test_usage_errors_exit_2_with_one_line():
    result = run("test", "--filter", "Nope")
    assert result.exit_code == 2
    assert result.output.strip() == "error: --filter takes RuleID=A,B, got 'Nope'"
    bad_config = run("test", "--config", "/no/such/flowwarden.yaml")
    assert bad_config.exit_code == 2
    assert "configuration file not found" in bad_config.output
    assert "Traceback" not in bad_config.output


def test_bad_config_value_is_a_clear_error(tmp_path):
    path = tmp_path / "flowwarden.yaml"
    path.write_text("approved_dns_servers: [not-an-ip]\n")
    result = run("test", "--config", str(path))
    assert result.exit_code == 2
    assert "approved_dns_servers: 'not-an-ip' is not an IP address" in result.output


def test_check_lists_problems_and_skips():
    result = run("check", str(FIXTURES / "panther_tree"))
    assert result.exit_code == 0
    assert "1 rules, 2 data-model log types, 0 problems, 3 skipped" in result.output
    broken = run("check", str(FIXTURES / "broken_rules"))
    assert broken.exit_code == 1 and "bad_severity.yml" in broken.output
