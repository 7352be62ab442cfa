"""``benchmarks/engine.py``'s own machinery: the phases it times still exist in the package, and
its timed child runs (a script's breakage shows only when someone runs it at 10M records)."""

from __future__ import annotations

import importlib

import pytest


def test_every_timed_phase_names_a_function_of_the_scan(engine_benchmark):
    for phase, module_name, qualified, _ in engine_benchmark.SCAN_PHASES:
        owner = importlib.import_module(module_name)
        for name in qualified.split("."):
            owner = getattr(owner, name, None)
            assert owner is not None, f"{phase}: {module_name}.{qualified} is gone"
        assert callable(owner), phase


@pytest.mark.parametrize("rules", ["pack-tuned", "spec"])
def test_the_phases_child_times_a_scan(engine_benchmark, tmp_path, rules):
    from tests.flowgen.generate import generate_flows, write_parquet

    path = tmp_path / "flows.parquet"
    write_parquet(generate_flows(3000, engine_benchmark.SEED), str(path))
    result = engine_benchmark.run_child("phases", path, rules)
    assert result["records"] == 3000
    spent = result["phases"]
    for phase in ("Parquet read (prefetch thread)", "condition query (_run)",
                  "phase 2 (complete rows)", "alerts from the groups (collect)",
                  "alert delivery (JSONL)"):
        assert spent[phase][0] > 0, phase
    assert result["alerts"] > 0


@pytest.mark.parametrize("rules", ["pack-tuned", "pack"])
def test_the_one_query_child_finds_the_scans_matches(engine_benchmark, tmp_path, rules):
    from tests.flowgen.generate import generate_flows, write_parquet

    path = tmp_path / "flows.parquet"
    write_parquet(generate_flows(5000, engine_benchmark.SEED), str(path))
    scan = engine_benchmark.child_scan_jsonl(str(path), rules, str(tmp_path / "scan.jsonl"))
    query = engine_benchmark.child_rare_query(str(path), rules)
    assert query["records"] == scan["records"] == 5000
    assert query["python_rows"] == 0
    found = {rule: count for rule, (count, _) in query["matches"].items() if count}
    assert len(found) >= 3  # attacks included: several rules match
    assert found == {rule: count for rule, (count, _) in scan["matches"].items() if count}


def _alerts(path):
    """Alerts of a JSON lines file by id (the slim hand-written query's made from its rule,
    dedup and window number, as ``model.alert_id`` makes them)."""
    import json
    from datetime import UTC, datetime

    from flowwarden.alerts.model import alert_id

    def key(alert):
        if "id" in alert:
            return alert["id"]
        start = datetime.fromtimestamp(alert["window"] * 3600, UTC)
        return alert_id(alert["rule_id"], alert["dedup"], start)

    with open(path, encoding="utf-8") as handle:
        return {key(alert): alert for alert in map(json.loads, handle)}


@pytest.mark.parametrize("full", [False, True])
def test_the_hand_written_alert_queries_make_the_scans_alerts(engine_benchmark, tmp_path, full):
    """The references the spec scan is measured against compute the same alerts (ids from the
    same titles and windows, counts), and the full one the same contexts and samples."""
    from tests.flowgen.generate import generate_flows, write_parquet

    path = str(tmp_path / "flows.parquet")
    write_parquet(generate_flows(5000, engine_benchmark.SEED), path)
    engine_benchmark.child_scan_jsonl(path, "spec", str(tmp_path / "scan.jsonl"))
    engine_benchmark.child_hand_alerts(path, "spec", str(tmp_path / "hand.jsonl"), full=full)
    scan, hand = _alerts(tmp_path / "scan.jsonl"), _alerts(tmp_path / "hand.jsonl")
    assert len(scan) > 10 and {a["rule_id"] for a in scan.values()} == set(
        engine_benchmark.SPEC_RULES)
    assert scan.keys() == hand.keys()
    for alert_id, alert in scan.items():
        theirs = hand[alert_id]
        assert (theirs["event_count"], theirs["title"]) == (alert["event_count"], alert["title"])
        if full:
            assert theirs["rule_name"] == alert["rule_name"]
            assert theirs["severity"] == alert["severity"]
            assert theirs["mitre"] == alert["mitre"]
            assert len(theirs["samples"]) == len(alert["samples"])
            assert [s["dstport"] for s in theirs["samples"]] == [
                s.get("dstPort") for s in alert["samples"]]
            context = {k: v for k, v in theirs["alert_context"].items() if "time" not in k}
            assert context == {k: v for k, v in alert["alert_context"].items()
                               if "time" not in k}


def test_repeated_runs_report_medians_and_flag_runs_that_found_something_else(engine_benchmark):
    def run(seconds, cpu, alerts, read_wall):
        return ("jsonl", "duckdb", "spec", {
            "seconds": seconds, "cpu": cpu, "rss_mb": 100.0 + seconds, "records": 10,
            "alerts": alerts, "matches": {"r": [3, None]},
            "phases": {"Parquet read (prefetch thread)": [read_wall, read_wall / 2]}})

    passes = [[run(5.0, 9.0, 4, 0.3)], [run(1.0, 2.0, 4, 0.1)], [run(2.0, 7.0, 4, 0.2)]]
    [(*key, row)] = engine_benchmark.combined(passes)
    assert key == ["jsonl", "duckdb", "spec"]
    assert (row["seconds"], row["cpu"]) == (2.0, 7.0)  # medians
    assert row["rss_mb"] == 105.0  # the highest peak: a limit holds in every run or not at all
    assert row["phases"]["Parquet read (prefetch thread)"] == [0.2, 0.1]
    assert row["spread"] == (1.0, 5.0) and row["same"]
    passes[1] = [run(1.0, 2.0, 5, 0.1)]  # one run wrote another number of alerts
    assert not engine_benchmark.combined(passes)[0][3]["same"]
    assert engine_benchmark.combined(passes[:1]) == passes[0]  # one pass: as measured


def test_repeat_measures_every_row_once_a_pass(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "engine.py"), "--records", "2000",
         "--parts", "alerts", "--scan-rules", "spec", "--no-references", "--repeat", "2",
         "--workdir", str(tmp_path)], capture_output=True, text=True, check=True)
    assert "Medians of 2 runs of each row" in done.stdout
    assert "OK   jsonl duckdb spec: every run found the same" in done.stdout
    [line] = [line for line in done.stdout.splitlines() if line.startswith("jsonl  duckdb")]
    fastest, slowest = map(float, line.split()[-1].split("-"))
    assert fastest <= float(line.split()[4]) <= slowest
