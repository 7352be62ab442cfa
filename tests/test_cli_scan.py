from __future__ import annotations

import json
import re
from collections import Counter

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from flowwarden.cli.app import main
from tests.conftest import REPO, SAMPLES
from tests.requirements import require_spark

EXAMPLES = REPO / "examples" / "data"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_readme_main_job_scans_the_bundled_samples(tmp_path):
    out, stats = tmp_path / "alerts.jsonl", tmp_path / "stats.json"
    result = run("scan", str(EXAMPLES), "--engine", "python", "--output", str(out),
                 "--stats", str(stats), "-q")
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    rules = {a["rule_id"] for a in alerts}
    assert {"AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.InboundPortWhitelist",
            "AWS.VPC.PortScan"} <= rules
    totals = json.loads(stats.read_text())["totals"]
    assert totals["read"] == totals["parsed"] + totals["rejected"] == 10_000


def test_fail_on_alert_exits_1_and_strict_exits_2(tmp_path):
    bad = tmp_path / "bad.log"
    bad.write_text("version account-id interface-id srcaddr dstaddr srcport dstport protocol "
                   "packets bytes start end action log-status\n"
                   "2 123456789010 eni-1 45.33.32.156 10.0.0.5 40000 22 6 1 40 1418530010 1418530070 REJECT OK\n"
                   "2 123456789010 eni-1 45.33.32.156 10.0.0.5 40000 abc 6 1 40 1418530010 1418530070 REJECT OK\n")
    alert = run("scan", str(bad), "--engine", "python", "--fail-on-alert", "-q")
    assert alert.exit_code == 1
    strict = run("scan", str(bad), "--engine", "python", "--strict")
    assert strict.exit_code == 2
    assert f"{bad}:3" in strict.output  # the rejected line is named with its line number


def test_store_twice_does_not_duplicate_alerts(tmp_path):
    store = tmp_path / "alerts.duckdb"
    sample = str(SAMPLES / "s3-text" / "awsdocs_v3_tcp_flag_sequence_custom.log")
    for _ in range(2):
        result = run("scan", sample, "--engine", "python", "--store", str(store), "-q",
                     "--output", str(tmp_path / "a.jsonl"))
        assert result.exit_code == 0, result.output
    con = duckdb.connect(str(store))
    ids = [r[0] for r in con.execute("SELECT id FROM alerts").fetchall()]
    assert ids and len(ids) == len(set(ids))
    assert len(ids) == len((tmp_path / "a.jsonl").read_text().splitlines())
    assert con.execute("SELECT count(*) FROM scan_files").fetchone()[0] == 2


def test_missing_input_is_a_one_line_error():
    result = run("scan", "/no/such/file.log", "--engine", "python")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "Traceback" not in result.output


def test_state_rerun_reads_nothing_new_and_emits_nothing(tmp_path):
    state, out1, out2 = tmp_path / "state.duckdb", tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    first = run("scan", str(EXAMPLES), "--state", str(state), "-o", str(out1), "-q")
    assert first.exit_code == 0, first.output
    assert out1.read_text().strip()
    second = run("scan", str(EXAMPLES), "--state", str(state), "-o", str(out2), "-q")
    assert second.exit_code == 0, second.output
    assert not out2.exists() or out2.read_text().strip() == ""


def test_ocsf_output_format_writes_detection_findings(tmp_path):
    out = tmp_path / "findings.jsonl"
    sample = str(SAMPLES / "s3-text" / "awsdocs_v3_tcp_flag_sequence_custom.log")
    result = run("scan", sample, "--output-format", "ocsf", "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    findings = [json.loads(line) for line in out.read_text().splitlines()]
    assert findings and {f["class_uid"] for f in findings} == {2004}
    assert {f["type_uid"] for f in findings} == {200401}


def test_watch_runs_n_times_and_backtest_prints_per_rule(tmp_path):
    watch = run("watch", str(EXAMPLES), "--state", str(tmp_path / "w.duckdb"), "--every", "1s",
                "--max-runs", "2", "-o", str(tmp_path / "w.jsonl"))
    assert watch.exit_code == 0, watch.output
    bad = run("watch", str(EXAMPLES), "--state", str(tmp_path / "w.duckdb"), "--every", "soon")
    assert bad.exit_code == 2
    backtest = run("backtest", str(EXAMPLES), "--output-format", "json")
    assert backtest.exit_code == 0, backtest.output
    data = json.loads(backtest.output)
    assert "AWS.VPC.PortScan" in json.dumps(data)


@pytest.mark.needs("spark")
def test_spark_engine_from_the_cli_gives_the_duckdb_alerts(tmp_path):
    require_spark()
    sample = str(SAMPLES / "s3-text" / "awsdocs_v3_tcp_flag_sequence_custom.log")
    spark_out, duck_out = tmp_path / "spark.jsonl", tmp_path / "duck.jsonl"
    spark = run("scan", sample, "--engine", "spark", "--master", "local[1]", "-o", str(spark_out),
                "--spark-conf", "spark.sql.shuffle.partitions=3", "-q")
    assert spark.exit_code == 0, spark.output
    from pyspark.sql import SparkSession

    assert SparkSession.getActiveSession().conf.get("spark.sql.shuffle.partitions") == "3"
    duck = run("scan", sample, "-o", str(duck_out), "-q")
    assert duck.exit_code == 0, duck.output
    ids = [sorted(json.loads(line)["id"] for line in path.read_text().splitlines())
           for path in (spark_out, duck_out)]
    assert ids[0] and ids[0] == ids[1]
    refused = run("scan", sample, "--engine", "spark", "--state", str(tmp_path / "s.duckdb"))
    assert refused.exit_code == 2 and "batch by batch (duckdb, python)" in refused.output
    # Spark's alerts take the one delivery path: OCSF findings like any other engine's
    ocsf = run("scan", sample, "--engine", "spark", "--master", "local[1]", "-q",
               "--output-format", "ocsf", "-o", str(tmp_path / "findings.jsonl"))
    assert ocsf.exit_code == 0, ocsf.output
    findings = [json.loads(line) for line in (tmp_path / "findings.jsonl").read_text().splitlines()]
    assert len(findings) == len(ids[0]) and {f["class_uid"] for f in findings} == {2004}
    bad_conf = run("scan", sample, "--engine", "spark", "--spark-conf", "spark.ui.enabled")
    assert bad_conf.exit_code == 2 and "KEY=VALUE, got 'spark.ui.enabled'" in bad_conf.output
    no_spark = run("scan", sample, "--master", "local[1]")
    assert no_spark.exit_code == 2 and "--master: settings of --engine spark" in no_spark.output


def test_key_values_split_at_the_first_equals_sign_and_later_keys_win():
    from flowwarden.cli.app import key_values

    assert key_values(["a.b=1", " c = x=y", "a.b=2", "d="], "--x") == {
        "a.b": "2", "c": " x=y", "d": ""}


FLOW_HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
               "bytes start end action log-status")


def flow_line(dst_port: int | str, start: int = 1714564800) -> str:
    return (f"2 123456789012 eni-1 10.0.0.9 10.0.1.5 40000 {dst_port} 6 1 40 {start} "
            f"{start + 60} ACCEPT OK")


def test_scan_with_the_tuned_pack_runs_the_whole_pack_and_says_what_was_replaced(tmp_path):
    sample = str(SAMPLES / "s3-text" / "awsdocs_v3_tcp_flag_sequence_custom.log")
    result = run("scan", sample, "--pack", "tuned", "-o", str(tmp_path / "a.jsonl"))
    assert result.exit_code == 0, result.output
    ran = [line.split("│")[1].strip() for line in result.stderr.splitlines()
           if line.startswith("│")]
    assert sorted(ran) == sorted([
        "AWS.VPC.InboundAdminPort", "AWS.VPC.PortScan", "AWS.VPC.SkipDataLogStatus",
        "AWS.VPC.SSHAcceptedFromInternet", "AWS.VPC.InboundPortWhitelist.Tuned",
        "AWS.VPC.UnapprovedOutboundDNS.Tuned", "AWS.VPC.ThreatIntelMatch", "AWS.VPC.TorTraffic"])
    assert "engine duckdb, 8 rules" in result.stderr
    assert ("replaced: AWS.VPC.InboundPortWhitelist by AWS.VPC.InboundPortWhitelist.Tuned\n"
            "replaced: AWS.VPC.UnapprovedOutboundDNS by AWS.VPC.UnapprovedOutboundDNS.Tuned"
            in result.stderr)


RAISING_RULE = ("def rule(event):\n"
                "    if event.get('dstPort') == 23:\n"
                "        raise ValueError('no telnet here')\n"
                "    return False\n")


def test_rule_errors_name_the_file_and_line_of_the_record(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.py").write_text(RAISING_RULE)
    (rules / "r.yml").write_text("AnalysisType: rule\nRuleID: Test.Raises\nFilename: r.py\n"
                                 "Enabled: true\nSeverity: Low\nLogTypes: [AWS.VPCFlow]\n")
    flows = tmp_path / "flows.log"
    # line 1 header, 2 fine, 3 blank, 4 rejected, 5 fine, 6 the one the rule raises on
    flows.write_text("\n".join([FLOW_HEADER, flow_line(80), "", flow_line("x"), flow_line(443),
                                flow_line(23)]) + "\n")
    for engine in ("duckdb", "python"):
        result = run("scan", str(flows), "--pack", str(rules), "--engine", engine,
                     "-o", str(tmp_path / "a.jsonl"))
        assert result.exit_code == 0, result.output
        assert (f"rule error Test.Raises.rule() on {flows}:6: ValueError: no telnet here"
                in result.stderr), result.stderr
        assert "#" not in result.stderr.split("rule error")[1]
    # Parquet has no lines: the record's number in the file, though --since left one out
    table = tmp_path / "flows.parquet"
    pq.write_table(pa.table({"srcaddr": ["10.0.0.9"] * 3, "dstaddr": ["10.0.1.5"] * 3,
                             "dstport": [80, 443, 23], "log_status": ["OK"] * 3,
                             "start": [1420070400, 1714564800, 1714564800]}), str(table))
    result = run("scan", str(table), "--pack", str(rules), "--since", "2020-01-01",
                 "-o", str(tmp_path / "b.jsonl"))
    assert result.exit_code == 0, result.output
    assert f"rule error Test.Raises.rule() on {table} record 3: ValueError" in result.stderr


def test_stderr_is_not_wrapped_when_it_is_not_a_terminal(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    flows = tmp_path / ("a-directory-name-long-enough-to-push-the-line-past-80-columns" * 2)
    flows.mkdir()
    path = flows / "flows.log"
    path.write_text(FLOW_HEADER + "\n" + flow_line("\x1b[31mnot-a-port-number-at-all") + "\n")
    result = run("scan", str(path), "-o", str(tmp_path / "a.jsonl"))
    assert result.exit_code == 0, result.output
    wanted = (f'rejected {path}:2: dstPort (dstport): not an integer: '
              f'"\\x1b[31mnot-a-port-number-at-all"')
    assert wanted in result.stderr.splitlines(), result.stderr
    assert len(wanted) > 120 and "\x1b" not in result.stderr


def test_summary_counts_records_left_out_by_since_and_until(tmp_path):
    flows = tmp_path / "flows.log"
    flows.write_text("\n".join([FLOW_HEADER, flow_line(80, 1420070400), flow_line(80),
                                flow_line(443)]) + "\n")
    result = run("scan", str(flows), "--since", "2024-01-01", "-o", str(tmp_path / "a.jsonl"))
    assert result.exit_code == 0, result.output
    assert ("records read 3 = parsed 3 + rejected 0 (filtered 1 of the parsed by "
            "--since/--until)") in result.stderr


def test_backtest_text_fits_100_columns_and_csv_has_a_row_per_rule_and_side(tmp_path):
    (tmp_path / "a.yaml").write_text("allowed_inbound_ports: [80, 443, 25, 445, 8080]\n")
    (tmp_path / "b.yaml").write_text("disable: [AWS.VPC.SkipDataLogStatus]\n")
    configs = ("--config", str(tmp_path / "a.yaml"), "--config", str(tmp_path / "b.yaml"))
    for extra in ((), configs):
        text = run("backtest", str(EXAMPLES), *extra)
        assert text.exit_code == 0, text.output
        assert max(len(line) for line in text.stdout.splitlines()) <= 100
        assert ("alerts/day: extrapolated from 1 hour (the events span 10 minutes; shorter spans "
                "count as 1 hour)") in text.stdout
    table = run("backtest", str(EXAMPLES), *configs, "--output-format", "csv")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].startswith("side,config,rule_id,severity,matched_events,alerts,")
    assert len(lines) == 1 + 8 + 7  # SkipDataLogStatus is off on side B


def test_report_embeds_the_first_alerts_per_rule_the_user_asks_for(tmp_path):
    store = tmp_path / "alerts.duckdb"
    scan = run("scan", str(EXAMPLES), "--store", str(store), "-q", "-o", str(tmp_path / "a.jsonl"))
    assert scan.exit_code == 0, scan.output
    for limit in ("1", "3"):
        out = tmp_path / f"r{limit}.html"
        report = run("report", "--store", str(store), "--out", str(out), "--alerts-per-rule", limit)
        assert report.exit_code == 0, report.output
        index = json.loads(re.search(r'id="alert-index">(.*?)</script>', out.read_text()).group(1))
        per_rule = Counter(a["rule_id"] for a in index)
        assert per_rule and max(per_rule.values()) == int(limit)
    assert run("report", "--store", str(store), "--out", str(tmp_path / "x.html"),
               "--alerts-per-rule", "-1").exit_code == 2


def test_max_line_bytes_makes_a_longer_line_one_rejection(tmp_path):
    header = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
              "bytes start end action log-status")
    good = ("2 123456789010 eni-1 45.33.32.156 10.0.0.5 40000 8080 6 1 40 1709251200 1709251260 "
            "ACCEPT OK")
    (tmp_path / "flows.log").write_text("\n".join([header, good, good + " " + "x" * 3000, good]))
    stats = tmp_path / "stats.json"
    reasons = {}
    for limit in ("2048", "8192"):
        result = CliRunner().invoke(main, ["scan", str(tmp_path / "flows.log"), "-q", "-o",
                                           str(tmp_path / "a.jsonl"), "--max-line-bytes", limit,
                                           "--stats", str(stats)])
        assert result.exit_code == 0, result.output
        found = json.loads(stats.read_text())
        assert [found["totals"][k] for k in ("read", "parsed", "rejected")] == [3, 2, 1]
        reasons[limit] = found["files"][0]["rejections"]
    assert reasons["2048"] == [{"line": 3, "reason": "line longer than 2,048 bytes (3,093 bytes, "
                                                     "skipped)"}]
    assert reasons["8192"] == [{"line": 3, "reason": "expected 14 fields, found 15"}]
    bad = CliRunner().invoke(main, ["scan", str(tmp_path / "flows.log"), "--max-line-bytes", "10"])
    assert bad.exit_code == 2 and "max-line-bytes" in bad.output
