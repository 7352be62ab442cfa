from __future__ import annotations

import json

import pytest
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
    # Files that fail to load count apart from failed tests, as Panther's test tool counts them.
    assert result.output.strip().splitlines()[-1] == "2 passed, 0 failed, 2 invalid"


def test_usage_errors_exit_2_with_one_line():
    result = run("test", "--filter", "Nope")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --filter takes KEY=VALUE[,VALUE...] or KEY!=VALUE, got 'Nope'")
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
    assert "2 rules, 2 data-model log types, 0 problems, 0 warnings, 2 skipped" in result.output
    broken = run("check", str(FIXTURES / "broken_rules"))
    assert broken.exit_code == 1 and "bad_severity.yml" in broken.output


def test_explain_command_formats():
    text = run("explain", "AWS.VPC.InboundPortWhitelist")
    assert text.exit_code == 0
    assert "destination_port not in [80, 443]" in text.output
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


def test_check_of_the_builtin_packs_reports_nothing():
    for args in ((), ("--pack", "tuned")):
        result = run("check", *args)
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == (
            "8 rules, 2 data-model log types, 0 problems, 0 warnings, 0 skipped")
        assert "warning:" not in result.output and "invalid:" not in result.output


LOWERCASE_RULE = """AnalysisType: rule
Filename: r.py
RuleID: Test.Lowercase
Enabled: true
Severity: Low
LogTypes: [AWS.VPCFlow, OCSF.NetworkActivity]
SummaryAttributes: [src_addr, dst_endpoint.ip, DSTPORT]
"""


def test_check_explain_and_catalog_report_the_same_summary_attribute_problem(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.py").write_text("def rule(event):\n    return False\n")
    (rules / "r.yml").write_text(LOWERCASE_RULE)
    check = run("check", str(rules))
    assert check.exit_code == 0, check.output  # a warning, not a problem
    warnings = [line for line in check.output.splitlines() if line.startswith("warning: ")]
    # DSTPORT is dstPort: Panther matches field names in any case
    assert warnings == [f"warning: {rules / 'r.yml'}: Test.Lowercase: SummaryAttributes src_addr: "
                        "not a column of AWS.VPCFlow; did you mean srcAddr?; not a column of "
                        "OCSF.NetworkActivity; did you mean src_endpoint.ip (data-model field "
                        "source_ip)?"]
    assert "1 warnings" in check.output
    explain = run("explain", "Test.Lowercase", "--pack", str(rules))
    assert "src_addr         AWS.VPCFlow           not a column of AWS.VPCFlow; did you mean " \
           "srcAddr?" in explain.output
    # dst_endpoint.ip is an OCSF field: fine, though VPC flow events lack it
    assert "dst_endpoint.ip  AWS.VPCFlow           ok: OCSF.NetworkActivity only" in explain.output
    site = run("catalog", str(rules), "--out", str(tmp_path / "site"))
    assert site.exit_code == 0, site.output
    page = (tmp_path / "site" / "rules" / "Test.Lowercase.html").read_text()
    assert page.count('class="warn">not a column of') == 2


def test_explain_says_where_enabling_a_disabled_rule_comes_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no flowwarden.yaml here
    rule = "AWS.VPC.UnapprovedOutboundDNS"
    default = run("explain", rule)
    assert ("Enabled    false (enabled by the built-in default `enable:` list; no configuration "
            "file)") in default.output
    assert "flowwarden.yaml enables it" not in default.output
    (tmp_path / "other.yaml").write_text("approved_dns_servers: [9.9.9.9]\n")
    other = run("explain", rule, "--config", "other.yaml")
    assert ("false (enabled by the built-in default `enable:` list; other.yaml does not set it)"
            in other.output)
    (tmp_path / "flowwarden.yaml").write_text(f"enable: [{rule}]\n")
    own = run("explain", rule)
    assert "false (enabled by `enable:` in flowwarden.yaml)" in own.output
    (tmp_path / "flowwarden.yaml").write_text("disable: [AWS.VPC.PortScan]\n")
    assert ("true (disabled by `disable:` in flowwarden.yaml)"
            in run("explain", "AWS.VPC.PortScan").output)


def test_explain_of_a_replaced_rule_names_its_replacement():
    result = run("explain", "AWS.VPC.InboundPortWhitelist", "--pack", "tuned")
    assert result.exit_code == 2
    assert ("AWS.VPC.InboundPortWhitelist is replaced by AWS.VPC.InboundPortWhitelist.Tuned in "
            "this pack") in result.output
    tuned = run("explain", "AWS.VPC.PortScan", "--pack", "tuned")
    assert tuned.exit_code == 0, tuned.output


def test_doctests_of_the_cli_modules():
    import doctest

    from flowwarden.cli import backtest_view, console, doubts, options

    for module in (options, console, backtest_view, doubts):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_since_and_until_take_relative_times():
    from datetime import UTC, datetime

    from flowwarden.cli.options import parse_time
    from flowwarden.errors import UsageError

    clock = datetime(2024, 5, 8, 15, 30, 12, tzinfo=UTC)
    assert parse_time("24h", clock) == datetime(2024, 5, 7, 15, 30, 12, tzinfo=UTC)
    assert parse_time("T-7d", clock) == parse_time("7d", clock) == datetime(
        2024, 5, 1, 15, 30, 12, tzinfo=UTC)
    assert parse_time("90m", clock) == datetime(2024, 5, 8, 14, 0, 12, tzinfo=UTC)
    assert parse_time("yesterday", clock) == datetime(2024, 5, 7, tzinfo=UTC)
    assert parse_time("Today", clock) == datetime(2024, 5, 8, tzinfo=UTC)
    assert parse_time("now", clock) == clock
    # The clock is UTC whatever zone it is given in: 01:00 at +02:00 is the previous UTC day
    local = datetime.fromisoformat("2024-05-08T01:00:00+02:00")
    assert parse_time("today", local) == datetime(2024, 5, 7, tzinfo=UTC)
    for bad in ("7 days", "-7d", "T-7", "last week"):
        with pytest.raises(UsageError, match="not a time"):
            parse_time(bad, clock)
    result = run("parse", str(FIXTURES / "samples" / "s3-text"), "--to", "jsonl",
                 "--since", "soonish")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith("error: not a time: 'soonish' (give ISO 8601")
    recent = run("parse", str(FIXTURES / "samples" / "s3-text"), "--to", "jsonl",
                 "--since", "T-1h")
    assert recent.exit_code == 0, recent.output
    # the samples are years old: every record with a time is left out, those without are kept
    assert "(filtered 21 of the parsed by --since/--until)" in recent.stderr
    assert all(json.loads(line)["p_event_time"] is None for line in recent.stdout.splitlines())


def test_every_command_that_loads_packs_sees_the_tuned_pack_whole(tmp_path):
    tuned = {"AWS.VPC.InboundPortWhitelist.Tuned", "AWS.VPC.UnapprovedOutboundDNS.Tuned"}
    kept = {"AWS.VPC.InboundAdminPort", "AWS.VPC.PortScan", "AWS.VPC.SkipDataLogStatus",
            "AWS.VPC.SSHAcceptedFromInternet", "AWS.VPC.ThreatIntelMatch", "AWS.VPC.TorTraffic"}
    tests = run("test", "--pack", "tuned")
    assert tests.exit_code == 0, tests.output
    assert {line.split()[1] for line in tests.output.splitlines()
            if line.startswith("PASS ")} == tuned | kept
    site = run("catalog", "--pack", "tuned", "--out", str(tmp_path / "site"))
    assert site.exit_code == 0 and site.output.startswith("8 rules: ")
    pages = {p.stem for p in (tmp_path / "site" / "rules").glob("*.html")}
    assert pages == tuned | kept
    stats = run("logic", "stats", "--pack", "tuned")
    assert stats.exit_code == 0 and all(rule in stats.output for rule in tuned | kept)
    assert "AWS.VPC.InboundPortWhitelist " not in stats.output
    sample = str(FIXTURES / "samples" / "s3-text" / "awsdocs_v3_tcp_flag_sequence_custom.log")
    backtest = run("backtest", sample, "--pack", "tuned", "--output-format", "csv")
    assert backtest.exit_code == 0, backtest.output
    assert {line.split(",")[2] for line in backtest.stdout.splitlines()[1:]} == tuned | kept
