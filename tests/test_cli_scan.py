from __future__ import annotations

import json

import duckdb
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
