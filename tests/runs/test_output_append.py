"""Issue 15: ``scan --state S -o F`` appends each run's alerts to F, so what an interrupted run
left for the next one is never overwritten by that run's own alerts; a kill at any moment loses
no alert and doubles none; a failing sink does not stop later runs from reading new inputs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import flowwarden.runs.outbox as outbox
from flowwarden.alerts.delivery import OutputSpec
from flowwarden.alerts.groupstore import SqlGrouper
from flowwarden.errors import UsageError
from flowwarden.runs.checkpoint import FAILPOINT_ENV, run_checkpointed
from flowwarden.runs.state import StateStore
from tests.flowgen.generate import generate_flows, write_text
from tests.runs.test_checkpoint import flow_line, run, write_flows

# Without the port-allowlist rule: its thousands of alerts add time, not cases.
RULES = ("AWS.VPC.PortScan", "AWS.VPC.InboundAdminPort", "AWS.VPC.SSHAcceptedFromInternet",
         "AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.SkipDataLogStatus")
FAILPOINTS = ("scanned", "committed", "appending", "delivering", "delivered")
ADMIN = ["AWS.VPC.InboundAdminPort"]


def lines_of(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "a partial line was left at the end"
    return [json.loads(line) for line in text.splitlines()]


def test_each_run_appends_and_a_run_with_nothing_new_leaves_the_file(default_pack, tmp_path):
    source, out = tmp_path / "in", tmp_path / "alerts.jsonl"
    source.mkdir()
    spec = OutputSpec(output=str(out))
    write_flows(source / "a.log", [flow_line(1)])
    first = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=ADMIN, outputs=spec)
    write_flows(source / "b.log", [flow_line(2, src="45.33.32.157")])
    second = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=ADMIN, outputs=spec)
    ids = [a["id"] for a in lines_of(out)]
    assert ids == [first.alerts[0].id, second.alerts[0].id]
    out.unlink()
    nothing = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=ADMIN, outputs=spec)
    assert nothing.run is None and out.read_text() == ""


def test_parquet_cannot_be_appended_to_and_is_refused(default_pack, tmp_path):
    with pytest.raises(UsageError, match="use --output-dir"):
        run_checkpointed(default_pack, [str(tmp_path)], str(tmp_path / "s.duckdb"),
                         outputs=OutputSpec("ocsf-parquet", output=str(tmp_path / "a.parquet")))


def test_a_repeated_delivery_cuts_back_what_an_interrupted_one_wrote(default_pack, tmp_path):
    source, out, state = tmp_path / "in", tmp_path / "alerts.jsonl", tmp_path / "s.duckdb"
    source.mkdir()
    out.write_text('{"earlier": "content"}\n')
    write_flows(source / "a.log", [flow_line(1)])
    store = StateStore(state)  # a committed run, as if killed before its delivery
    try:
        run_id = store.commit([], None, None, None, SqlGrouper().collect())
        store.set_output_offset(run_id, str(out.resolve()), out.stat().st_size)
    finally:
        store.close()
    with out.open("a") as f:
        f.write('{"half of an alert')  # what the killed delivery had written
    run(default_pack, source, state, rule_ids=ADMIN, outputs=OutputSpec(output=str(out)))
    rows = lines_of(out)
    assert rows[0] == {"earlier": "content"} and len(rows) == 2
    assert rows[1]["rule_id"] == ADMIN[0]


def test_a_failing_sink_does_not_stop_new_inputs_and_is_delivered_later(default_pack, tmp_path,
                                                                        monkeypatch):
    source, out, state = tmp_path / "in", tmp_path / "alerts.jsonl", tmp_path / "s.duckdb"
    source.mkdir()
    spec = OutputSpec(output=str(out))
    real = outbox.deliver

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outbox, "deliver", failing)
    write_flows(source / "a.log", [flow_line(1)])
    first = run(default_pack, source, state, rule_ids=ADMIN, outputs=spec)
    assert first.run == 1 and first.undelivered == [1]
    assert first.delivery_error == "OSError: [Errno 28] No space left on device"
    write_flows(source / "b.log", [flow_line(2, src="45.33.32.157")])
    second = run(default_pack, source, state, rule_ids=ADMIN, outputs=spec)
    assert second.run == 2 and len(second.inputs) == 1 and second.undelivered == [1, 2]
    monkeypatch.setattr(outbox, "deliver", real)
    third = run(default_pack, source, state, rule_ids=ADMIN, outputs=spec)
    assert third.redelivered == [1, 2] and third.delivery_error is None
    assert [a["id"] for a in lines_of(out)] == [first.alerts[0].id, second.alerts[0].id]


def test_the_cli_reports_a_failed_delivery_in_one_line_and_exits_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from flowwarden.cli.app import main

    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(1)])

    def failing(*args, **kwargs):
        raise UsageError("cannot write: the bucket is gone")

    monkeypatch.setattr(outbox, "deliver", failing)
    args = ["scan", str(source), "--state", str(tmp_path / "s.duckdb"), "-o",
            str(tmp_path / "a.jsonl"), "--rule-id", ADMIN[0], "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: delivery of run(s) 1 failed: cannot write: the bucket is gone; they are "
        "committed and the next run with this --state delivers them")


# --- the kill test: the CLI in a subprocess, SIGKILLed, run again with more inputs -----------

class Scenario:
    """Inputs arriving in waves, one state and one -o file, scanned by ``flowwarden scan``."""

    def __init__(self, root: Path, seed: int, records: int) -> None:
        self.root, self.seed, self.records = root, seed, records
        self.inputs = root / "in"
        self.inputs.mkdir()
        self.waves = 0

    def add_wave(self) -> None:
        start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=40 * self.waves)
        batches = generate_flows(self.records, seed=self.seed * 100 + self.waves, start=start,
                                 duration=timedelta(minutes=40), batch_size=self.records)
        write_text(batches, str(self.inputs / f"wave{self.waves:02d}.log.gz"))
        self.waves += 1

    def args(self, state: Path, out: Path) -> list[str]:
        rules = [arg for rule in RULES for arg in ("--rule-id", rule)]
        return [sys.executable, "-m", "flowwarden.cli", "scan", str(self.inputs), "-q",
                "--state", str(state), "-o", str(out), *rules]

    def start(self, failpoint: str | None = None) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != FAILPOINT_ENV}
        if failpoint:
            env[FAILPOINT_ENV] = failpoint
        return subprocess.Popen(self.args(self.root / "state.duckdb", self.root / "alerts.jsonl"),
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self) -> float:
        """One run left alone; returns its duration."""
        started = time.monotonic()
        process = self.start()
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err.decode()
        return time.monotonic() - started

    def reference(self) -> dict[str, int]:
        """alert id -> event count of one uninterrupted run over every wave."""
        out = self.root / "reference.jsonl"
        done = subprocess.run(self.args(self.root / "reference.duckdb", out),
                              capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr.decode()
        return {a["id"]: a["event_count"] for a in lines_of(out)}

    def check(self) -> None:
        rows = lines_of(self.root / "alerts.jsonl")
        versions = [(a["id"], a["event_count"]) for a in rows]
        assert len(versions) == len(set(versions)), "an alert version was appended twice"
        latest: dict[str, int] = {}
        for alert_id, count in versions:
            latest[alert_id] = max(count, latest.get(alert_id, 0))
        reference = self.reference()
        assert reference, "the scenario has no alerts to lose"
        assert latest == reference, "the file lost or changed an alert"


def test_runs_killed_at_each_failpoint_lose_no_alert_in_the_output_file(tmp_path):
    scenario = Scenario(tmp_path, seed=4, records=2000)
    for point in FAILPOINTS:
        scenario.add_wave()
        process = scenario.start(point)
        _, err = process.communicate(timeout=600)
        assert process.returncode == -signal.SIGKILL, (point, err.decode())
        scenario.add_wave()  # the next run has new inputs besides the interrupted delivery
        scenario.finish()
    scenario.check()


@pytest.mark.parametrize("seed", [1, 2])
def test_runs_killed_at_random_moments_lose_no_alert_in_the_output_file(tmp_path, seed):
    rng = random.Random(seed)
    scenario = Scenario(tmp_path, seed=seed, records=30_000)
    scenario.add_wave()
    typical = scenario.finish()
    kills = 0
    for _ in range(3):
        scenario.add_wave()
        process = scenario.start()
        time.sleep(rng.uniform(0.2, 0.8 * typical))  # inside the run, wherever that falls
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=600)
    scenario.add_wave()
    scenario.finish()
    assert kills >= 1, "no run was interrupted: the runs are shorter than the delays"
    scenario.check()


def test_watch_prints_a_failed_delivery_even_when_quiet(default_pack, tmp_path, monkeypatch,
                                                        capsys):
    from flowwarden.cli.console import watch_command
    from flowwarden.logs import ReadOptions

    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(1)])

    def failing(*args, **kwargs):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(outbox, "deliver", failing)
    outcome = watch_command(default_pack, [str(source)], ReadOptions(),
                            state=str(tmp_path / "s.duckdb"), every="1s", max_runs=1,
                            engine="python", rule_ids=ADMIN, max_samples=3,
                            outputs=OutputSpec(output=str(tmp_path / "a.jsonl")), quiet=True)
    assert outcome.runs == 1
    assert ("delivery of run(s) 1 failed: PermissionError: [Errno 13] Permission denied"
            in capsys.readouterr().err)
