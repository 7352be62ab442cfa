from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from flowwarden.alerts.delivery import OutputSpec
from flowwarden.cli.console import describe_run, run_scan
from flowwarden.errors import UsageError
from flowwarden.runs.checkpoint import RunResult, run_checkpointed
from flowwarden.runs.state import StateStore
from flowwarden.runs.watch import parse_every, watch
from tests.runs.test_checkpoint import flow_line, write_flows

RULES = ["AWS.VPC.InboundAdminPort"]


def stepper(pack, source, state):
    def step() -> RunResult:
        return run_checkpointed(pack, [str(source)], str(state), engine="python", rule_ids=RULES,
                                outputs=OutputSpec(output_dir=str(source.parent / "out")))
    return step


def test_watch_runs_until_max_runs_and_reads_only_new_files(default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "0.log", [flow_line(0)])
    seen = []

    def report(number, result):
        seen.append((number, [os.path.basename(o.url) for o in result.inputs], len(result.alerts)))
        if number < 3:  # new data arrives between steps
            write_flows(source / f"{number}.log", [flow_line(number, src=f"45.33.32.{number}")])

    outcome = watch(stepper(default_pack, source, tmp_path / "s.duckdb"), 0, max_runs=3,
                    report=report)
    assert (outcome.runs, outcome.alerts, outcome.stopped_by_signal) == (3, 3, False)
    assert seen == [(1, ["0.log"], 1), (2, ["1.log"], 1), (3, ["2.log"], 1)]


def test_a_signal_during_a_step_lets_the_step_finish_then_stops(default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "0.log", [flow_line(0)])
    inner = stepper(default_pack, source, tmp_path / "s.duckdb")
    before = signal.getsignal(signal.SIGINT)  # another library (PySpark) may have set its own

    def step() -> RunResult:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while the step works
        return inner()

    outcome = watch(step, 0, max_runs=5)
    assert outcome.runs == 1 and outcome.stopped_by_signal
    assert outcome.last is not None and outcome.last.run == 1
    state = StateStore(tmp_path / "s.duckdb")
    try:
        assert state.last_run() == 1 and state.pending_runs() == []
    finally:
        state.close()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_while_waiting_stops_before_the_next_step(default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        os.kill(os.getpid(), signal.SIGTERM)

    outcome = watch(stepper(default_pack, source, tmp_path / "s.duckdb"), 300, sleep=sleep)
    assert outcome.runs == 1 and outcome.stopped_by_signal and len(calls) == 1


def test_a_second_ctrl_c_interrupts_at_once(default_pack, tmp_path):
    def step() -> RunResult:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("not reached: the second signal interrupts")

    with pytest.raises(KeyboardInterrupt):
        watch(step, 0)


def test_ctrl_c_stops_the_watch_command_cleanly(default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "0.log", [flow_line(0)])
    code = (
        "import sys\n"
        "from flowwarden.alerts.delivery import OutputSpec\n"
        "from flowwarden.cli.console import watch_command\n"
        "from flowwarden.logs import ReadOptions\n"
        "from flowwarden.rules.loader import load_pack, resolve_pack_paths\n"
        "pack = load_pack(resolve_pack_paths([]))\n"
        "outcome = watch_command(pack, [sys.argv[1]], ReadOptions(), state=sys.argv[2],\n"
        "    every='1h', max_runs=None, engine='python', rule_ids=['AWS.VPC.InboundAdminPort'],\n"
        "    max_samples=3, outputs=OutputSpec(output=sys.argv[3]), quiet=False)\n"
        "print('runs', outcome.runs, flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(source), str(tmp_path / "s.duckdb"),
         str(tmp_path / "alerts.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"})
    lines = iter(process.stderr.readline, "")  # ends when the process closes stderr
    first = next((line for line in lines if " run 1: " in line), "")
    assert "run 1: 1 new or changed inputs" in first  # the first step has run and committed
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "stopped after 1 run(s); the state is saved" in err
    assert out.strip() == "runs 1"
    assert (tmp_path / "alerts.jsonl").read_text().count("\n") == 1


def test_parse_every():
    assert parse_every("5m") == 300 and parse_every(" 2h ") == 7200 and parse_every("1.5s") == 1.5
    with pytest.raises(UsageError, match="--every"):
        parse_every("five minutes")


def test_a_scan_with_state_summarizes_the_run(default_pack, tmp_path, capsys):
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "0.log", [flow_line(0)])
    result = run_scan(default_pack, [str(source)], None, state=str(tmp_path / "s.duckdb"),
                       engine="python", rule_ids=RULES, max_samples=3,
                       outputs=OutputSpec("ocsf", output=str(tmp_path / "f.jsonl")), quiet=False)
    err = capsys.readouterr().err
    assert "run 1: 1 new or changed inputs (0 unchanged), 1 records, 1 alerts new or updated" in err
    assert "AWS.VPC.InboundAdminPort" in err
    assert describe_run(result).startswith("run 1:")
    again = run_scan(default_pack, [str(source)], None, state=str(tmp_path / "s.duckdb"),
                      engine="python", rule_ids=RULES, max_samples=3,
                      outputs=OutputSpec("ocsf", output=str(tmp_path / "f.jsonl")), quiet=True)
    assert describe_run(again).startswith("nothing new: 0 new or changed inputs (1 unchanged)")
