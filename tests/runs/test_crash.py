from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from flowwarden.alerts.delivery import OutputSpec
from flowwarden.runs.checkpoint import run_checkpointed
from tests.flowgen.generate import generate_flows, write_text
from tests.runs.statefiles import stored_groups

MOTO_READY_POLLS = 300


@dataclass
class MotoServer:
    """moto's standalone S3 server on a localhost port, with the environment that points at it."""

    endpoint: str
    env: dict[str, str]

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    executable = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable),
                                                             "moto_server")
    port = _free_port()
    process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(MOTO_READY_POLLS):
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}")
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answered
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_server did not start")
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_REGION": "us-east-1"}
        yield MotoServer(endpoint, env)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def s3_env(moto_server, monkeypatch) -> MotoServer:
    """The moto server's environment set in this process for the duration of one test."""
    for key, value in moto_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


# --- the crash tests ------------------------------------------------------------------------

CHILD = """
import sys
from flowwarden.alerts.delivery import OutputSpec
from flowwarden.runs.checkpoint import run_checkpointed
from flowwarden.rules.loader import load_pack, resolve_pack_paths

source, state, fmt, out_dir, store, rules = sys.argv[1:7]
pack = load_pack(resolve_pack_paths([]))
print("ready", flush=True)
run_checkpointed(pack, [source], state, engine="python", rule_ids=rules.split(","),
                 outputs=OutputSpec(fmt, output_dir=out_dir, store=store))
"""
# The built-in pack without the noisy port-allowlist rule: fewer alerts, faster runs.
RULES = ("AWS.VPC.PortScan", "AWS.VPC.InboundAdminPort", "AWS.VPC.SSHAcceptedFromInternet",
         "AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.SkipDataLogStatus")
FAILPOINTS = ("scanned", "committed", "delivering", "delivered")
SEEDS = (1, 2, 3)
MAX_KILLS_PER_WAVE = 2
MAX_WAVES = 3


@dataclass
class Scenario:
    """One bucket of flow logs, one state, one set of sinks, and the runs made so far."""

    server: MotoServer
    bucket: str
    root: Path
    fmt: str
    out_dir: str
    runs: int = 0
    kills: int = 0
    last_run_seconds: float = 0.0

    @property
    def scratch(self) -> Path:
        """The runs' temporary directory."""
        return self.root / "tmp"

    def left_groups(self) -> list[Path]:
        """Group databases of runs that are gone."""
        return sorted(self.scratch.glob("flowwarden-groups-*"))

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/AWSLogs/"

    def upload_wave(self, wave: int, seed: int, files: int = 2, records: int = 300) -> None:
        client = self.server.client()
        start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=40 * wave)
        batches = generate_flows(files * records, seed=seed * 100 + wave, batch_size=records,
                                 start=start, duration=timedelta(minutes=40))
        for index, batch in enumerate(batches):
            local = self.root / f"wave{wave}-{index}.log.gz"
            write_text([batch], str(local))
            key = (f"AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/01/"
                   f"123456789012_vpcflowlogs_us-east-1_fl-1_20240101T{wave:02d}00Z_{index}.log.gz")
            client.upload_file(str(local), self.bucket, key)

    def child(self, failpoint: str | None = None) -> subprocess.Popen:
        env = {**os.environ, **self.server.env}
        env.pop("FLOWWARDEN_FAILPOINT", None)
        self.scratch.mkdir(exist_ok=True)
        env["TMPDIR"] = str(self.scratch)  # what a killed run leaves, apart from the tests'
        if failpoint:
            env["FLOWWARDEN_FAILPOINT"] = failpoint
        args = [sys.executable, "-c", CHILD, self.source, str(self.root / "state.duckdb"),
                self.fmt, self.out_dir, str(self.root / "store.duckdb"), ",".join(RULES)]
        self.runs += 1
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run_until_done(self, kill_after: Callable[[int], float] | None = None) -> None:
        """Run the child; with ``kill_after(attempt)``, SIGKILL it that many seconds in (a few
        times), then let one run finish."""
        for attempt in range(MAX_KILLS_PER_WAVE + 1):
            process = self.child()
            process.stdout.readline()  # "ready": imports done, the run starts now
            started = time.monotonic()
            delay = kill_after(attempt) if kill_after and attempt < MAX_KILLS_PER_WAVE else None
            try:
                _, err = process.communicate(timeout=delay)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                self.kills += 1
                continue
            assert process.returncode == 0, err.decode()
            self.last_run_seconds = time.monotonic() - started
            return
        raise AssertionError("unreachable")

    def delivered(self) -> list[tuple[str, int]]:
        """(alert id, event count) of every alert version any delivery wrote."""
        if self.fmt == "jsonl":
            versions = []
            for path in sorted(Path(self.out_dir).glob("[!.]*.jsonl")):
                versions += [(a["id"], a["event_count"]) for a in map(json.loads, path.open())]
            return versions
        bucket, prefix = self.out_dir.removeprefix("s3://").split("/", 1)
        client = self.server.client()
        versions = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                table = pq.read_table(io.BytesIO(body))
                uids = table.column("finding_info").combine_chunks().field("uid").to_pylist()
                versions += list(zip(uids, table.column("count").to_pylist(), strict=True))
        return versions

    def stored(self, name: str) -> dict[str, int]:
        con = duckdb.connect(str(self.root / name), read_only=True)
        try:
            return dict(con.execute("SELECT id, event_count FROM alerts").fetchall())
        finally:
            con.close()


def reference_alerts(pack, scenario: Scenario, tmp: Path) -> dict[str, int]:
    """The alerts of one uninterrupted run over everything (in this process, same S3)."""
    result = run_checkpointed(pack, [scenario.source], str(tmp / "reference.duckdb"),
                              engine="python", rule_ids=RULES,
                              outputs=OutputSpec(output_dir=str(tmp / "ref")))
    return {a.id: a.event_count for a in result.alerts}


def assert_same_alerts(scenario: Scenario, reference: dict[str, int]) -> None:
    versions = scenario.delivered()
    assert len(versions) == len(set(versions)), "an alert version was delivered twice"
    latest: dict[str, int] = {}
    for alert_id, count in versions:
        latest[alert_id] = max(count, latest.get(alert_id, 0))
    assert latest == reference, "deliveries lost or changed an alert"
    assert scenario.stored("store.duckdb") == reference
    groups = stored_groups(scenario.root / "state.duckdb")
    assert {key: groups[key][1] for key in reference} == reference


def make_scenario(server: MotoServer, root: Path, name: str, fmt: str) -> Scenario:
    server.client().create_bucket(Bucket=name)
    out_dir = f"s3://{name}/lake" if fmt == "ocsf-parquet" else str(root / "out")
    return Scenario(server, name, root, fmt, out_dir)


def test_a_run_killed_at_each_failpoint_loses_and_repeats_nothing(default_pack, s3_env, tmp_path):
    scenario = make_scenario(s3_env, tmp_path, "crash-failpoints", "ocsf-parquet")
    scenario.upload_wave(0, seed=9)
    left: set[Path] = set()
    for point in FAILPOINTS:
        process = scenario.child(point)
        _, err = process.communicate()
        assert process.returncode == -signal.SIGKILL, (point, err.decode())
        left.update(scenario.left_groups())
    assert len(left) == 2  # the two runs killed while they held groups removed nothing
    scenario.run_until_done()  # delivers the interrupted run, then finds nothing new
    assert scenario.left_groups() == []  # later runs removed the killed runs' groups
    scenario.upload_wave(1, seed=9)
    scenario.run_until_done()
    assert_same_alerts(scenario, reference_alerts(default_pack, scenario, tmp_path))


@pytest.mark.parametrize("seed", SEEDS)
def test_runs_killed_at_random_moments_lose_and_repeat_nothing(default_pack, s3_env, tmp_path,
                                                              seed):
    fmt = "jsonl" if seed % 2 else "ocsf-parquet"
    scenario = make_scenario(s3_env, tmp_path, f"crash-random-{seed}", fmt)
    rng = random.Random(seed)
    scenario.upload_wave(0, seed)
    scenario.run_until_done()
    timing = {"typical": scenario.last_run_seconds}  # how long a run's work takes here

    def kill_after(attempt: int) -> float:
        # The first attempt dies somewhere in its run; the second maybe, maybe not.
        return rng.uniform(0.0, timing["typical"] * (0.9 if attempt == 0 else 1.3))

    for wave in range(1, MAX_WAVES + 1):  # more data until a kill has landed
        scenario.upload_wave(wave, seed)
        scenario.run_until_done(kill_after)
        timing["typical"] = min(timing["typical"], scenario.last_run_seconds)
        if scenario.kills:
            break
    assert scenario.kills >= 1
    assert_same_alerts(scenario, reference_alerts(default_pack, scenario, tmp_path))


def test_a_failed_delivery_is_repeated_by_the_next_run(default_pack, s3_env, tmp_path):
    from tests.runs.test_checkpoint import flow_line, write_flows

    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(1)])
    spec = OutputSpec("ocsf-parquet", output_dir="s3://lake-created-later/findings")

    def run():
        return run_checkpointed(default_pack, [str(source)], str(tmp_path / "s.duckdb"),
                                engine="python", rule_ids=["AWS.VPC.InboundAdminPort"],
                                outputs=spec)

    first = run()  # the bucket does not exist yet: the run is committed, its delivery is not
    assert first.run == 1 and first.undelivered == [1]
    assert first.delivery_error is not None and "cannot write" in first.delivery_error
    write_flows(source / "b.log", [flow_line(2)])
    second = run()  # still no bucket: the new input is read all the same, and waits in line
    assert second.run == 2 and [o.url for o in second.inputs] == [str(source / "b.log")]
    assert second.undelivered == [1, 2] and second.redelivered == []
    s3_env.client().create_bucket(Bucket="lake-created-later")
    result = run()
    assert (result.run, result.inputs, result.redelivered) == (None, [], [1, 2])
    assert result.delivery_error is None and len(result.written) == 2
    assert all(w.startswith("s3://lake-created-later/findings/ext/flowwarden/")
               for w in result.written)
    assert run().redelivered == []
