from __future__ import annotations

from click.testing import CliRunner

from flowwarden.cli.app import main
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


def test_explain_command_formats():
    text = run("explain", "AWS.VPC.InboundPortWhitelist")
    assert text.exit_code == 0
    assert 'destination_port not in ["80", "443"]' in text.output
    assert "is_global(source_ip" in text.output
    as_json = run("explain", "AWS.VPC.InboundPortWhitelist", "--format", "json")
    assert as_json.exit_code == 0 and as_json.output.lstrip().startswith("{")
    unknown = run("explain", "No.Such.Rule")
    assert unknown.exit_code == 2 and unknown.output.startswith("error: ")


def test_catalog_and_report_commands(tmp_path):
    site = run("catalog", "--out", str(tmp_path / "site"))
    assert site.exit_code == 0, site.output
    assert (tmp_path / "site" / "index.html").is_file()
    store = tmp_path / "alerts.duckdb"
    sample = str(FIXTURES.parent.parent / "examples" / "data")
    scan = run("scan", sample, "--engine", "python", "--store", str(store), "-q",
               "--output", str(tmp_path / "a.jsonl"))
    assert scan.exit_code == 0, scan.output
    report = run("report", "--store", str(store), "--out", str(tmp_path / "report.html"))
    assert report.exit_code == 0, report.output
    assert "AWS.VPC.PortScan" in (tmp_path / "report.html").read_text()
    missing = run("report", "--store", str(tmp_path / "nope.duckdb"), "--out", str(tmp_path / "r.html"))
    assert missing.exit_code == 2


def test_logic_stats_command():
    result = run("logic", "stats")
    assert result.exit_code == 0, result.output
    assert "AWS.VPC.UnapprovedOutboundDNS" in result.output
    assert "full" in result.output
    partial = run("logic", "stats", str(FIXTURES.parent / "logic" / "fixtures" / "partial_rules"))
    assert partial.exit_code == 0 and "partial" in partial.output
