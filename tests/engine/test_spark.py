"""``spark_scan`` gives the alerts of the duckdb engine: ids, counts, titles, whole alerts.

One local[2] session serves the module. Every test scans the same inputs with the duckdb
``Scanner`` and with Spark and compares everything a scan reports (sample records differ only
in ``p_parse_time``, the moment of parsing).
"""

from __future__ import annotations

import doctest
import gzip
import io
import itertools
import json
import os
import pickle
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowwarden.alerts.formats.jsonl import JsonLines, alert_json
from flowwarden.engine.local import match_columns
from flowwarden.engine.scan import Scanner, ScanResult
from flowwarden.engine.spark import rules as spark_rules_module
from flowwarden.engine.spark import session as spark_engine
from flowwarden.engine.spark.arrow import POSITION, SOURCE
from flowwarden.engine.spark.inputs import input_frames
from flowwarden.engine.spark.keys import RECORD_ROW, RuleKeys, key_name
from flowwarden.engine.spark.rules import SHIPPED, PackSpec
from flowwarden.engine.spark.run import SparkScan
from flowwarden.engine.spark.session import (
    infer_pack_paths,
    require_pyspark,
    resolve_master,
    spark_scan,
    spark_session,
)
from flowwarden.errors import EngineError, UsageError
from flowwarden.logs import DEFAULT_OPTIONS, ReadOptions, read
from flowwarden.rules.loader import load_pack, resolve_pack_paths
from flowwarden.rules.rule import MAX_DEDUP, MAX_TITLE
from tests.conftest import SAMPLES
from tests.flowgen.generate import generate_flows, write_parquet, write_text
from tests.logic.test_differential import PARTIAL_RULES
from tests.logs.helpers import non_null
from tests.requirements import require_spark

RECORDS = 100_000  # two files, for the tests that scan them several times
BENCHMARK_RECORDS = 1_000_000  # benchmarks/engine.py's dataset (its seed), at 1M instead of 10M
BENCHMARK_SEED = 42
SMALL = 20_000
START = datetime(2024, 3, 1, tzinfo=UTC)
BUILTIN = load_pack(resolve_pack_paths([]))
PARTIAL = load_pack([PARTIAL_RULES])


@pytest.fixture(scope="module")
def spark(request: pytest.FixtureRequest) -> Iterator[Any]:
    require_spark()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    # 1g of driver heap holds the default run's scans (a JVM grows towards its limit, so the
    # suite stays small); the slow 1M-record test needs local mode's 4g. The first session of
    # the process starts the JVM, so its setting holds for every later one.
    slow = any(item.get_closest_marker("slow") for item in request.session.items)
    session = spark_session("local[2]", {"spark.ui.enabled": "false",
                                         "spark.sql.shuffle.partitions": "8",
                                         "spark.driver.memory": "4g" if slow else "1g"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def flows(tmp_path_factory) -> list[str]:
    """The generated dataset: a directory of two AWS-layout Parquet files, one with characters
    that URLs encode and globs interpret in its name."""
    root = tmp_path_factory.mktemp("flows")
    first, second = root / "part one+1 [a]{b}*?.parquet", root / "part-2.parquet"
    half = RECORDS // 2
    write_parquet(generate_flows(half, seed=11, start=START), str(first))
    write_parquet(generate_flows(RECORDS - half, seed=12, start=START + timedelta(minutes=30)),
                  str(second))
    return [str(root)]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("small") / "small.parquet")
    write_parquet(generate_flows(SMALL, seed=13, start=START), path)
    return path


def duckdb_scan(pack: Any, sources: list[str], options: ReadOptions = DEFAULT_OPTIONS,
                max_samples: int = 3) -> ScanResult:
    return Scanner(pack, pack.active_rules(), "duckdb", max_samples).scan(read(sources, options))


def comparable(alert: Any) -> dict[str, Any]:
    whole = alert.to_dict()
    for sample in whole["samples"]:
        sample.pop("p_parse_time", None)
    return whole


def assert_same(got: ScanResult, want: ScanResult) -> None:
    # One alert of each at a time: the 1M-record scans have hundreds of thousands of alerts,
    # and both lists of dicts at once took 9 GB.
    assert len(got.alerts) == len(want.alerts)
    for mine, theirs in zip(got.alerts, want.alerts, strict=True):
        assert comparable(mine) == comparable(theirs)
    if isinstance(got.alerts, JsonLines):  # Spark's lines, written on the executors
        lines = (line for chunk in got.alerts.json_lines() for line in chunk.splitlines(True))
        for mine, line in itertools.zip_longest(got.alerts, lines):
            assert line == (alert_json(mine) + "\n").encode("utf-8")
        # the digest that names alert files: the duckdb engine's query writes the same text
        assert b"".join(got.alerts.identity_text()) == b"".join(want.alerts.identity_text())
        assert got.alerts.count_by_rule() == Counter(a.rule_id for a in got.alerts) == (
            want.alerts.count_by_rule())
    assert (got.records, got.matches, got.python_rows, got.error_counts) == (
        want.records, want.matches, want.python_rows, want.error_counts)
    if sum(want.error_counts.values()) <= len(want.errors):
        key = lambda e: (e.source, e.position, e.rule_id, e.function)  # noqa: E731
        assert sorted(got.errors, key=key) == sorted(want.errors, key=key)


def test_builtin_pack_on_generated_parquet(spark, flows):
    want = duckdb_scan(BUILTIN, flows)
    got = spark_scan(BUILTIN, BUILTIN.active_rules(), flows, spark=spark)
    assert_same(got, want)
    assert got.records == RECORDS and len(got.alerts) > 1000
    # every rule alerts but those that need lookup tables (none are configured here)
    assert {a.rule_id for a in got.alerts} == {r.id for r in BUILTIN.active_rules()} - {
        "AWS.VPC.ThreatIntelMatch", "AWS.VPC.TorTraffic"}
    assert any(a.unique_count and a.unique_count >= a.threshold > 1 for a in got.alerts)
    files = {str(Path(flows[0]) / name) for name in os.listdir(flows[0])}
    assert {s["p_source_file"] for a in got.alerts for s in a.samples} == files


def parquet_tree(root: Path) -> dict[str, Any]:
    return {str(p.relative_to(root)): pq.read_table(p) for p in sorted(root.rglob("*.parquet"))}


def test_findings_made_on_the_executors_are_the_drivers(spark, flows, tmp_path, monkeypatch):
    from flowwarden.alerts.formats import ALERT_FORMATS, ocsf, ocsftable
    from flowwarden.alerts.formats.securitylake import write_security_lake
    from flowwarden.engine.spark.chunks import ChunkedFindings

    plain = spark_scan(BUILTIN, BUILTIN.active_rules(), flows, spark=spark)
    assert not isinstance(plain.alerts, ocsf.PreparedFindings)
    got = spark_scan(BUILTIN, BUILTIN.active_rules(), flows, spark=spark, findings=True)
    assert isinstance(got.alerts, ChunkedFindings) and len(got.alerts) > 1000
    assert_same(got, plain)
    walked = list(got.alerts)  # Alert objects, made into findings here one by one
    want = {}
    for fmt in ("ocsf", "ocsf-parquet"):
        out = io.BytesIO()
        assert ALERT_FORMATS[fmt].write(walked, out) == len(walked)
        want[fmt] = out.getvalue()
    want_urls = write_security_lake(walked, str(tmp_path / "walked"))

    def refused(alert: Any) -> Any:
        raise AssertionError("a finding was made in the driver")

    monkeypatch.setattr(ocsf, "to_finding", refused)
    monkeypatch.setattr(ocsftable, "to_finding", refused)
    for fmt in ("ocsf", "ocsf-parquet"):
        out = io.BytesIO()
        assert ALERT_FORMATS[fmt].write(got.alerts, out) == len(walked)
        if fmt == "ocsf":
            assert out.getvalue() == want[fmt]
        else:
            mine = pq.read_table(io.BytesIO(out.getvalue()))
            assert mine.equals(pq.read_table(io.BytesIO(want[fmt]))) and len(mine) == len(walked)
    got_urls = write_security_lake(got.alerts, str(tmp_path / "prepared"))
    assert [Path(u).relative_to(tmp_path / "prepared") for u in got_urls] == \
        [Path(u).relative_to(tmp_path / "walked") for u in want_urls]
    lake = parquet_tree(tmp_path / "prepared")
    assert lake == parquet_tree(tmp_path / "walked") and len(lake) >= 2


@pytest.mark.slow  # minutes and gigabytes (1M records, >100k alerts on each engine)
def test_builtin_pack_on_the_benchmark_dataset_at_1m_records(spark, tmp_path):
    path = str(tmp_path / "flows-1m.parquet")
    write_parquet(generate_flows(BENCHMARK_RECORDS, BENCHMARK_SEED), path)
    want = duckdb_scan(BUILTIN, [path])
    got = spark_scan(BUILTIN, BUILTIN.active_rules(), [path], spark=spark)
    assert_same(got, want)
    assert got.records == BENCHMARK_RECORDS and len(got.alerts) > 100_000
    # every rule alerts but those that need lookup tables (none are configured here)
    assert {a.rule_id for a in got.alerts} == {r.id for r in BUILTIN.active_rules()} - {
        "AWS.VPC.ThreatIntelMatch", "AWS.VPC.TorTraffic"}


def test_partial_rules_ask_python_and_raise_like_duckdb(spark, small):
    want = duckdb_scan(PARTIAL, [small])
    got = spark_scan(PARTIAL, PARTIAL.active_rules(), [small], spark=spark,
                     pack_paths=[str(PARTIAL_RULES)])
    assert_same(got, want)
    assert got.python_rows > 0 and got.alerts


def test_since_until_and_max_samples(spark, flows):
    options = ReadOptions(since=START + timedelta(minutes=40), until=START + timedelta(minutes=50))
    want = duckdb_scan(BUILTIN, flows, options, max_samples=5)
    got = spark_scan(BUILTIN, BUILTIN.active_rules(), flows, spark=spark, options=options,
                     max_samples=5)
    assert_same(got, want)
    assert 0 < got.records < RECORDS and max(len(a.samples) for a in got.alerts) == 5


def test_text_flow_logs_through_the_header_driven_reader(spark, tmp_path):
    batches = list(generate_flows(30_000, seed=5, start=START))
    fields = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
              "protocol", "packets", "bytes", "start", "end", "action", "log-status",
              "pkt-srcaddr", "flow-direction", "vpc-id", "region")
    write_text(batches[:2], str(tmp_path / "a.log.gz"), fields=fields)
    write_text(batches[2:], str(tmp_path / "b.log"), gzip=False)
    (tmp_path / "junk.txt").write_text("not a flow log\n")
    sources = [str(tmp_path)]
    assert_same(spark_scan(BUILTIN, BUILTIN.active_rules(), sources, spark=spark),
                duckdb_scan(BUILTIN, sources))


def test_messy_parquet_is_coerced_and_rejected_like_the_local_reader(spark, tmp_path):
    rows = {
        "srcaddr": ["45.33.32.156", "None", "-", "10.0.0.9", "45.33.32.156", "8.8.8.8", ""],
        "dstaddr": ["10.0.0.5", "10.0.0.5", "10.0.0.5", "8.8.4.4", "10.0.0.6", "10.1.1.1", "-"],
        "srcport": ["40000", "-", "x1", "53", "40001", "123\n", "None"],
        "dstport": pa.array([22, 22, 22, 53, 3389, 22, None], pa.int32()),
        "protocol": [6.0, 6.0, 6.0, 17.0, 6.0, 6.0, None],
        "action": ["ACCEPT", "ACCEPT", "ACCEPT", "ACCEPT", "ACCEPT", "ACCEPT", "-"],
        "log_status": ["OK", "OK", "OK", "OK", "OK", "OK", "SKIPDATA"],
        "start": pa.array([1709251200000, 1709251201, 1709251202, 1709251203, None, 1709251205,
                           1709251206], pa.int64()),
        "end": ["1709251260", "-", "-", "-", "1709251264", "1709251265", "-"],
        "custom_tag": ["a", "-", "b", "c", "d", "e", "f"],
        "custom_num": pa.array([1, 2, None, 4, 5, 6, 7], pa.int32()),
    }
    path = str(tmp_path / "messy.parquet")
    pq.write_table(pa.table(rows), path)
    got = spark_scan(BUILTIN, BUILTIN.active_rules(), [path], spark=spark)
    assert_same(got, duckdb_scan(BUILTIN, [path]))
    assert got.records == 5 and got.alerts  # "x1" and "123\n" are not integers: rejected


def test_messy_parquet_gives_the_local_readers_records(spark, tmp_path):
    """Spark converts flow log Parquet with the local reader's code, so the records are the
    same, value for value. Each file holds a case where Spark's own coercions once differed."""
    files = {
        # Unicode digits: the local reader failed the file, Spark rejected the row; now both
        # reject the row. Floats written as text: Spark's "6.0" against Arrow's "6". A
        # protocol of 1e30 is out of range (0..255): rejected by both.
        "digits": {"srcport": ["443", "²", "٣", "22"], "account": [6.0, 1e20, 0.5, None],
                   "protocol": [6.0, float("nan"), 17.0, 1e30], "dstaddr": ["a", "b", "c", "d"],
                   "custom_num": pa.array([1, None, 3, 4], pa.int8()), "start": [1, 2, 3, 4]},
        # Sub-second times: the local reader failed the file, Spark truncated them; now both
        # read them as the local reader does.
        "millis": {"srcaddr": ["10.0.0.1", "10.0.0.2"], "dstaddr": ["a", "b"],
                   "start": pa.array([1_709_251_200_500, 1_709_251_201_000], pa.timestamp("ms"))},
        # uint64 with 19 digits: the local reader took them, Spark rejected them; now both
        # reject a counter over 10**18 - 1 (out of range) and keep the other row.
        "wide": {"srcaddr": ["10.0.0.1", "10.0.0.2"], "dstaddr": ["a", "b"],
                 "bytes": pa.array([10**18 + 7, 5], pa.uint64())},
    }
    paths = []
    for name, columns in files.items():
        paths.append(str(tmp_path / f"{name}.parquet"))
        pq.write_table(pa.table(columns), paths[-1])
    local = read(paths)
    want = {p: [] for p in paths}
    for item in local:
        want[item.source].extend(non_null(r) for r in item.batch.to_pylist())
    got = {p: [] for p in paths}
    for item in input_frames(spark, paths, DEFAULT_OPTIONS):
        for record in item.frame.orderBy(SOURCE, POSITION).drop(POSITION).toArrow().to_pylist():
            got[record.pop(SOURCE)].append(non_null(record))
    assert got == want
    stats = local.stats.files
    assert [len(want[p]) for p in paths] == [1, 2, 1]
    assert [stats[p].rejected for p in paths] == [3, 0, 1]
    assert want[paths[0]][0]["account"] == "6" and want[paths[2]][0]["bytes"] == 5


def test_ocsf_parquet_natively_and_the_shared_samples(spark, tmp_path):
    path = str(tmp_path / "ocsf.parquet")
    pq.write_table(ocsf_table(next(generate_flows(20_000, seed=9, start=START,
                                                  batch_size=20_000))), path)
    sources = [path, str(SAMPLES)]
    got = spark_scan(BUILTIN, BUILTIN.active_rules(), sources, spark=spark)
    assert_same(got, duckdb_scan(BUILTIN, sources))
    assert {"OCSF.NetworkActivity", "AWS.VPCFlow"} <= {t for a in got.alerts for t in a.log_types}
    assert any(s.get("class_uid") == 4001 for a in got.alerts for s in a.samples)


def ocsf_table(batch: pa.RecordBatch) -> pa.Table:
    """Generated flows in OCSF Network Activity shape (as Security Lake writes Parquet)."""
    actions = {"ACCEPT": "Allowed", "REJECT": "Denied"}
    rows = [{
        "class_uid": 4001,
        "time": int(r["start"].timestamp() * 1000) if r["start"] else None,
        "src_endpoint": {"ip": r["srcAddr"], "port": r["srcPort"], "interface_uid": r["interfaceId"]},
        "dst_endpoint": {"ip": r["dstAddr"] or "-", "port": r["dstPort"]},
        "connection_info": {"protocol_num": r["protocol"]},
        "action": actions.get(r["action"]),
        "status_code": r["status"],
        "cloud": {"account_uid": r["account"], "region": r["region"]},
        "traffic": {"bytes": r["bytes"], "packets": r["packets"]},
    } for r in batch.to_pylist()]
    return pa.Table.from_pylist(rows)


def test_shipped_rule_directory_loads_on_the_executors(spark, small):
    spark.sparkContext.addFile(str(PARTIAL_RULES), recursive=True)
    spec = PackSpec((SHIPPED + PARTIAL_RULES.name,), pickle.dumps(PARTIAL.config))
    got = SparkScan(spark, PARTIAL, PARTIAL.active_rules(), spec).run([small], DEFAULT_OPTIONS)
    assert_same(got, duckdb_scan(PARTIAL, [small]))
    assert got.alerts


KEY_TEXTS = (None, "", "x", "é" * 1500, "t" * (MAX_TITLE + 1))


@pytest.mark.parametrize("functions", [("dedup", "title", "unique"), ("title",), ("dedup",), ()])
def test_compiled_keys_follow_the_local_engines_rules(spark, functions):
    """The dedup string, title key, unique value and "needs Python" of a match, as Spark
    computes them, are the local engine's (``match_columns``), flag by flag, text by text."""
    rows = [{**{key_name(0, f): text for f in functions},
             **{key_name(0, f, python=True): flag == f for f in functions}}
            for text in KEY_TEXTS for flag in (None, *functions)]
    schema = ", ".join([f"{key_name(0, f)} string" for f in functions]
                       + [f"{key_name(0, f, python=True)} boolean" for f in functions]) or "x int"
    frame = spark.createDataFrame([row or {"x": 1} for row in rows], schema)
    query = SimpleNamespace(names=("r",), alerts=(("r", [SimpleNamespace(name=f)
                                                          for f in functions]),))
    keys = RuleKeys(query, 0)
    got = frame.select(keys.dedup("r").alias("dedup"), keys.title().alias("title"),
                       keys.value("unique").alias("unique"),
                       keys.needs_python().alias("python")).collect()
    table = pa.table({**{f: [r[key_name(0, f)] for r in rows] for f in functions},
                      **{f + ":python": [r[key_name(0, f, python=True)] for r in rows]
                         for f in functions}} or {"x": [1] * len(rows)})
    at = np.arange(len(rows))
    kept, asked = match_columns("r", at, table if functions else None, np.zeros(len(rows), int))
    assert [r.python for r in got] == asked.tolist()
    compiled = [(r.dedup, r.title, r.unique) for r in got if not r.python]
    assert compiled == list(zip(kept.dedup.to_pylist(), kept.title.to_pylist(),
                                kept.unique_array().to_pylist(), strict=True))
    cut = any(len(dedup) == MAX_DEDUP for dedup, _, _ in compiled)  # long texts were cut
    assert cut == bool({"dedup", "title"} & set(functions))


def test_compiled_matches_skip_python_and_keep_their_records_in_spark(spark, small):
    """Matches whose keys compile come out of Spark expressions: no pickled result, the record
    as a struct; Python's rows carry both pickled. The input is read once (its records
    counted once)."""
    scan = SparkScan(spark, BUILTIN, BUILTIN.active_rules(),
                     PackSpec(("default",), pickle.dumps(BUILTIN.config)))
    (frame,) = input_frames(spark, [small], DEFAULT_OPTIONS)
    results = scan.evaluated(frame)
    (struct,) = [c for c in results.columns if c.startswith(RECORD_ROW)]
    rows = results.where("matched").collect()
    compiled = [r for r in rows if r.result is None]
    python = [r for r in rows if r.result is not None]
    assert len(compiled) > len(python) and compiled
    assert all(r.record is None and r[struct] is not None for r in compiled)
    assert all(r.record is not None and r[struct] is None for r in python)
    assert scan._observations[0].get["records"] == SMALL


def test_pack_paths_are_inferred_from_the_rules():
    assert infer_pack_paths(BUILTIN, BUILTIN.rules) == ["default"]
    assert infer_pack_paths(PARTIAL, PARTIAL.rules) == [str(PARTIAL_RULES.resolve())]


def test_stdin_is_refused(spark):
    with pytest.raises(UsageError, match="stdin"):
        spark_scan(BUILTIN, BUILTIN.active_rules(), ["-"], spark=spark)


def test_empty_and_unknown_inputs(spark, tmp_path):
    (tmp_path / "empty.log").write_bytes(gzip.compress(b""))
    pq.write_table(pa.table({"a": [1]}), str(tmp_path / "other.parquet"))
    got = spark_scan(BUILTIN, BUILTIN.active_rules(), [str(tmp_path)], spark=spark)
    assert_same(got, duckdb_scan(BUILTIN, [str(tmp_path)]))
    assert got.records == 0 and not got.alerts


def test_hadoop_urls_are_listed_and_read_by_spark(spark, small, tmp_path):
    """``file:`` stands in for ``s3a://``: Spark lists the directory; sources are its URLs."""
    directory = tmp_path / "nested" / "year=2024"
    directory.mkdir(parents=True)
    copy = directory / "flows.parquet"
    copy.write_bytes(Path(small).read_bytes())
    got = spark_scan(BUILTIN, BUILTIN.active_rules(), [tmp_path.as_uri()], spark=spark)
    want = duckdb_scan(BUILTIN, [str(copy)])
    assert [(a.id, a.event_count, a.title) for a in got.alerts] == [
        (a.id, a.event_count, a.title) for a in want.alerts]
    assert got.records == SMALL and "year" not in got.alerts[0].samples[0]
    assert got.alerts[0].samples[0]["p_source_file"].startswith("file:")


@pytest.mark.needs("spark")
def test_old_or_missing_pyspark_is_a_usage_error():
    require_spark(java=False)  # with no PySpark at all the message differs
    with pytest.raises(UsageError, match="PySpark 99.0 or newer"):
        require_pyspark((99, 0))


def test_doctests():
    for module in (spark_engine, spark_rules_module):
        result = doctest.testmod(module)
        assert result.failed == 0
    assert doctest.testmod(spark_engine).attempted > 0


def test_local_sessions_get_small_splits_and_user_settings_win(spark):
    assert spark.conf.get("spark.sql.files.maxPartitionBytes") == "32m"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    mine = spark_engine.session_conf("local[4]", {"spark.sql.files.maxPartitionBytes": "256m"})
    assert mine["spark.sql.files.maxPartitionBytes"] == "256m"
    assert "spark.sql.files.maxPartitionBytes" not in spark_engine.session_conf("yarn")
    # a JVM this process launches exits on running out of memory; a cluster's settings rule
    local = spark_engine.session_conf("local[2]")
    assert local["spark.driver.extraJavaOptions"] == "-XX:+ExitOnOutOfMemoryError"
    assert "spark.driver.extraJavaOptions" not in spark_engine.session_conf("yarn")


def test_master_defaults():
    assert resolve_master(None, environ={}) == "local[*]"
    assert resolve_master(None, environ={"PYSPARK_GATEWAY_PORT": "1"}) is None
    assert resolve_master("spark://h:7077", environ={}) == "spark://h:7077"


def test_importing_flowwarden_does_not_import_pyspark():
    code = ("import sys, flowwarden.cli.app, flowwarden.engine.scan, flowwarden.engine.spark.session, "
            "flowwarden.logic.render.spark; print('pyspark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class FakeBuilder:
    """A session builder whose start, like PySpark's, runs a process that writes to the
    terminal (as the JVM does); the session records its log level."""

    def __init__(self) -> None:
        self.levels: list[str] = []

    def getOrCreate(self) -> Any:  # noqa: N802 - PySpark's name
        subprocess.run(["sh", "-c", "echo \"Using Spark's default log4j profile\" >&2; "
                                    "echo ':: loading settings :: url = jar:ivy'"], check=True)
        return SimpleNamespace(sparkContext=SimpleNamespace(setLogLevel=self.levels.append))


def test_a_quiet_session_start_sends_the_jvm_output_to_a_log_file(tmp_path, capfd, monkeypatch):
    log = tmp_path / "spark.log"
    monkeypatch.setattr(spark_engine, "spark_log_path", lambda directory=None: str(log))
    monkeypatch.setattr(spark_engine, "_launches_jvm", lambda: True)
    builder = FakeBuilder()
    spark_engine.start_session(builder)
    print("flowwarden's own output")  # restored after the start
    out, err = capfd.readouterr()
    assert out == "flowwarden's own output\n" and err == ""
    assert "log4j profile" in log.read_text() and ":: loading settings ::" in log.read_text()
    assert builder.levels == ["ERROR"]
    verbose = FakeBuilder()
    spark_engine.start_session(verbose, verbose=True)
    out, err = capfd.readouterr()
    assert "log4j profile" in err and ":: loading settings ::" in out and verbose.levels == []


@pytest.mark.needs("spark")
def test_spark_scan_from_the_command_line_is_quiet_unless_verbose(tmp_path):
    require_spark()
    sample = str(SAMPLES / "s3-text" / "awsdocs_v3_tcp_flag_sequence_custom.log")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "flowwarden.cli", "scan", sample, "--engine", "spark",
               "--master", "local[1]", "--spark-conf", "spark.ui.enabled=false"]
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.splitlines()[0] == "records 8   engine spark, 8 rules"
    assert "AWS.VPC.InboundPortWhitelist" in quiet.stderr  # the per-rule table
    assert not [line for line in quiet.stderr.splitlines() if "log4j" in line or " WARN " in line]
    assert [json.loads(line)["rule_id"] for line in quiet.stdout.splitlines()]  # alerts only
    (log,) = tmp_path.glob("flowwarden-spark-*.log")
    assert "log4j" in log.read_text()
    verbose = subprocess.run([*command, "--verbose", "-q"], capture_output=True, text=True,
                             env=env, timeout=600)
    assert verbose.returncode == 0 and "log4j" in verbose.stderr


OUT_OF_MEMORY = """
from flowwarden.engine.spark.session import spark_session, watched_jvm
session = spark_session("local[1]", {"spark.driver.memory": "512m", "spark.ui.enabled": "false"})
try:
    with watched_jvm(session):  # 4M rows of 200 characters do not fit in 512 MB
        session.range(0, 4_000_000, 1, 4).selectExpr("repeat('x', 200) AS s").toArrow()
except Exception as error:
    print(type(error).__name__, error)
"""


@pytest.mark.needs("spark")
def test_a_jvm_that_runs_out_of_memory_stops_the_scan_with_its_log(tmp_path):
    # Without -XX:+ExitOnOutOfMemoryError an OutOfMemoryError in a driver thread (the one that
    # fetches task results) left the job waiting: a 1M-record scan hung in toArrow for good.
    require_spark()
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", OUT_OF_MEMORY], capture_output=True, text=True,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    (log,) = tmp_path.glob("flowwarden-spark-*.log")
    assert run.stdout.strip() == (
        "EngineError Spark's JVM ran out of memory during the scan (spark.driver.memory=512m) "
        f"and stopped; give it more with --spark-conf spark.driver.memory=<size>; its log: {log}")
    assert "Terminating due to java.lang.OutOfMemoryError" in log.read_text()  # the JVM's flag


def test_a_scan_whose_jvm_stopped_says_so(spark, small, tmp_path, monkeypatch):
    log = tmp_path / "spark.log"
    log.write_text("Exception in thread \"task-result-getter-0\" java.lang.OutOfMemoryError\n")

    def lost(*args: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(SparkScan, "run", lost)
    monkeypatch.setattr(spark_engine, "_jvm_logs", [str(log)])
    monkeypatch.setattr(spark_engine, "jvm_exit_status", lambda wait=0: 3)
    with pytest.raises(EngineError, match=r"ran out of memory .*spark\.driver\.memory=1g\)"):
        spark_scan(BUILTIN, BUILTIN.active_rules(), [small], spark=spark)
    log.write_text("killed\n")
    with pytest.raises(EngineError, match=r"stopped during the scan \(exit status 3\); its log"):
        spark_scan(BUILTIN, BUILTIN.active_rules(), [small], spark=spark)
    monkeypatch.setattr(spark_engine, "jvm_exit_status", lambda wait=0: None)  # still running
    with pytest.raises(ConnectionRefusedError):
        spark_scan(BUILTIN, BUILTIN.active_rules(), [small], spark=spark)


def test_chunked_alerts_read_like_a_list():
    from flowwarden.engine.spark.chunks import Chunk, ChunkedAlerts, pack, unpack
    from flowwarden.util.spill import Place, Spill

    assert unpack(memoryview(pack([("s3://b/k ü", 7)]))) == [("s3://b/k ü", 7)]
    parts = [list(range(0, 3)), list(range(3, 4)), list(range(4, 9))]
    spill = Spill()
    places = [spill.add(pack(p)) for p in reversed(parts)][::-1]  # kept out of order

    def text(lines: list[str]) -> Place:
        return spill.add(zlib.compress("".join(f"{line}\n" for line in lines).encode()))

    identities = [[f"{99 - n:032x}:{n}:t" for n in part] for part in parts]  # ids descending
    alerts = ChunkedAlerts(spill, [
        Chunk(place, len(part), spill.add(pack([])), text([f"line {n}" for n in part]),
              text(ids)) for place, part, ids in zip(places, parts, identities, strict=True)],
        {"a": 9})
    assert alerts.count_by_rule() == {"a": 9}
    assert b"".join(alerts.json_lines()) == "".join(f"line {n}\n" for n in range(9)).encode()
    assert b"".join(alerts.identity_text()).decode().splitlines() == [
        f"{99 - n:032x}:{n}:t" for n in reversed(range(9))]
    every = list(range(9))
    assert len(alerts) == 9 and list(alerts) == every
    assert [alerts[i] for i in range(-9, 9)] == every[-9:] + every
    assert alerts[2:7] == every[2:7] and alerts[::-3] == every[::-3] and alerts[8:] == [8]
    with pytest.raises(IndexError):
        alerts[9]
    assert len(ChunkedAlerts(Spill(), [], {})) == 0


def test_batches_are_handed_over_as_they_arrive_with_the_frames_order(spark):
    from pyspark.sql import functions as S

    from flowwarden.engine.spark.stream import arriving_batches

    frame = spark.range(0, 50_000, numPartitions=6).withColumn("text", S.format_string(
        "row %d", "id")).orderBy(S.col("id").desc())
    kept: list[pa.RecordBatch] = []
    order = arriving_batches(frame, kept.append)
    assert sorted(order) == list(range(len(kept))) and len(kept) > 1
    assert pa.Table.from_batches([kept[i] for i in order]).equals(frame.toArrow())
    nothing: list[pa.RecordBatch] = []
    order = arriving_batches(spark.range(0), nothing.append)
    assert sorted(order) == list(range(len(nothing)))
    assert sum(batch.num_rows for batch in nothing) == 0


def test_a_failing_job_raises_while_its_batches_stream(spark):
    from pyspark.sql import functions as S

    from flowwarden.engine.spark.stream import arriving_batches

    failing = spark.range(0, 1000, numPartitions=2).select(
        S.raise_error(S.format_string("bad row %d", "id")).alias("x"))
    with pytest.raises(Exception, match="bad row"):
        arriving_batches(failing, lambda batch: None)


def test_frames_without_the_jvms_stream_are_read_with_to_arrow():
    from flowwarden.engine.spark.stream import arriving_batches

    table = pa.Table.from_batches([pa.record_batch({"a": [1, 2]}), pa.record_batch({"a": [3]})])
    connect_like = SimpleNamespace(toArrow=lambda: table)  # no ``_jdf``
    kept: list[pa.RecordBatch] = []
    assert arriving_batches(connect_like, kept.append) == [0, 1]
    assert pa.Table.from_batches(kept).equals(table)
