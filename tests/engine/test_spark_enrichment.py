"""Lookup tables on Spark (``flowwarden.engine.spark.enrichment``): the duckdb, python and spark
engines give the same alerts for packs whose rules read ``p_enrichment``, on text flow logs
(read by ``flowwarden.logs`` inside Spark) and on Parquet (read by Spark), through compiled
conditions and through Python; ``event.lookup`` answers from the same tables; tables without
data are noted alike; a table that does not pickle is built again from its files."""

from __future__ import annotations

import ipaddress
import os
import pickle
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flowwarden.config import parse_config
from flowwarden.engine.engines import engine_named
from flowwarden.engine.enrichment import pack_enrichment
from flowwarden.engine.local.vectorized import compile_pack
from flowwarden.engine.scan import ScanResult
from flowwarden.engine.spark.enrichment import Rebuild, payload, unpack
from flowwarden.engine.spark.session import spark_scan, spark_session
from flowwarden.enrich.enricher import BoundTable, Enricher
from flowwarden.logs import DEFAULT_OPTIONS
from flowwarden.rules.loader import Pack, load_pack
from tests.engine.test_enrichment import comparable, write_flows, write_pack
from tests.engine.test_event_lookup_scan import write as write_owners
from tests.flowgen.generate import generate_flows, write_parquet
from tests.requirements import require_spark

RECORDS = 20_000
START = datetime(2024, 3, 1, tzinfo=UTC)
WATCH_TABLE = """AnalysisType: lookup_table
LookupName: watch
Schema: Custom.Watch
Filename: watch.csv
LogTypeMap:
  PrimaryKey: ip
  AssociatedLogTypes:
    - LogType: AWS.VPCFlow
      Selectors: [p_any_ip_addresses]
"""
WATCH_RULE_YML = """AnalysisType: rule
RuleID: Test.Watch
Filename: watch_rule.py
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Medium
"""
WATCH_RULE_PY = '''
def rule(event):
    return bool(event.deep_get("p_enrichment", "watch", "p_any_ip_addresses"))


def title(event):
    rows = event.deep_get("p_enrichment", "watch", "p_any_ip_addresses")
    return "watched " + ",".join(f"{row['p_match']}={row['team']}" for row in rows)


def dedup(event):
    return event.get("dstPort")


def alert_context(event):
    return {"teams": [row["team"] for row in event.deep_get("p_enrichment", "watch",
                                                            "p_any_ip_addresses")]}
'''


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    require_spark()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = spark_session("local[2]", {"spark.ui.enabled": "false",
                                         "spark.sql.shuffle.partitions": "8",
                                         "spark.driver.memory": "1g"})
    yield session
    session.stop()


def spark_result(spark: Any, pack: Pack, sources: list[str]) -> ScanResult:
    return spark_scan(pack, pack.active_rules([]), sources, spark=spark,
                      pack_paths=[str(p) for p in pack.paths])


def local_result(pack: Pack, sources: list[str], engine: str) -> ScanResult:
    return engine_named(engine).scan(pack, pack.active_rules([]), sources,
                                     DEFAULT_OPTIONS).result


def assert_three_agree(spark: Any, pack: Pack, sources: list[str]) -> ScanResult:
    duck = local_result(pack, sources, "duckdb")
    python = local_result(pack, sources, "python")
    got = spark_result(spark, pack, sources)
    assert [a.id for a in got.alerts] == [a.id for a in duck.alerts] == [
        a.id for a in python.alerts]
    assert comparable(got.alerts) == comparable(duck.alerts) == comparable(python.alerts)
    assert got.matches == duck.matches == python.matches
    assert (got.records, got.python_rows, got.error_counts) == (
        duck.records, duck.python_rows, duck.error_counts)
    assert got.notes == duck.notes == python.notes and got.hints == duck.hints == python.hints
    return got


def test_text_flows_give_the_local_engines_enriched_alerts(spark: Any, tmp_path: Path) -> None:
    pack = write_pack(tmp_path)
    got = assert_three_agree(spark, pack, [write_flows(tmp_path)])
    assert sorted(a.rule_id for a in got.alerts) == ["Test.Ioc", "Test.Tor", "Test.Tor"]
    inbound = next(a for a in got.alerts if a.title.endswith("(srcAddr)"))
    assert inbound.alert_context == {"enrichment": {"tor_exit_nodes": {"srcAddr": {
        "ip": "185.220.101.4", "nickname": "relayOne", "p_match": "185.220.101.4"}}}}
    assert inbound.samples[0]["p_enrichment"] == inbound.alert_context["enrichment"]
    assert any(note.startswith("refreshed: no data here") for note in got.notes)


def test_event_lookup_asks_the_tables_on_the_executors(spark: Any, tmp_path: Path) -> None:
    pack, flows = write_owners(tmp_path)
    got = assert_three_agree(spark, pack, [flows])
    assert sorted(a.title for a in got.alerts) == [
        "payments (10.0.0.5 in 10.0.0.0/24)", "search (10.0.1.7 in 10.0.1.0/24)"]


def generated_pack(tmp: Path, flows: list[pa.RecordBatch]) -> Pack:
    """The pack of ``write_pack`` plus a list-selector table, with tables holding addresses
    the generated flows use: Tor exits among their sources, IOC networks (a /24 inside a /16
    of another confidence) and watched addresses among their destinations."""
    write_pack(tmp)
    sources = distinct_public(flows, "srcAddr")
    targets = distinct_public(flows, "dstAddr")
    root = tmp / "pack"
    (root / "lookup_tables" / "tor.csv").write_text(
        "ip,nickname\n" + "".join(f"{ip},relay{i}\n" for i, ip in enumerate(sources[:40])))
    lines = []
    for i, ip in enumerate(targets[:30]):
        net = ipaddress.ip_network(f"{ip}/24", strict=False)
        lines.append(f"{net},{90 if i % 3 else 60}")
        if i % 5 == 0:
            lines.append(f"{ipaddress.ip_network(f'{ip}/16', strict=False)},95")
    (tmp / "iocs.csv").write_text("cidr,confidence\n" + "\n".join(dict.fromkeys(lines)) + "\n")
    (root / "lookup_tables" / "watch.yml").write_text(WATCH_TABLE)
    (root / "lookup_tables" / "watch.csv").write_text(
        "ip,team\n" + "".join(f"{ip},team{i % 4}\n" for i, ip in enumerate(targets[30:60])))
    (root / "rules" / "watch_rule.yml").write_text(WATCH_RULE_YML)
    (root / "rules" / "watch_rule.py").write_text(WATCH_RULE_PY)
    config = {"lookup_tables": {"iocs": {
        "path": "iocs.csv", "match": "cidr", "primary_key": "cidr",
        "log_types": {"AWS.VPCFlow": ["dstAddr"]}}}}
    return load_pack([root], parse_config(config, str(tmp / "flowwarden.yaml")))


def distinct_public(flows: list[pa.RecordBatch], column: str) -> list[str]:
    found = {a for batch in flows for a in batch.column(column).to_pylist() if a is not None}
    return sorted(a for a in found if ipaddress.ip_address(a).is_global)


def test_parquet_flows_compiled_and_python_paths_agree(spark: Any, tmp_path: Path) -> None:
    flows = list(generate_flows(RECORDS, seed=21, start=START))
    path = str(tmp_path / "flows.parquet")
    write_parquet(flows, path)
    pack = generated_pack(tmp_path, flows)
    got = assert_three_agree(spark, pack, [path])
    counts = {rule: sum(a.rule_id == rule for a in got.alerts)
              for rule in ("Test.Tor", "Test.Ioc", "Test.Watch")}
    assert all(count > 3 for count in counts.values()), counts
    # Test.Ioc's condition and title compile, so its matches never meet Python on Spark: its
    # samples are Spark's record structs, shown as Panther shows them all the same
    [plan] = [p for p in compile_pack(pack, pack.active_rules([])).rules_for("AWS.VPCFlow")
              if p.rule_id == "Test.Ioc"]
    assert "Residual" not in repr((plan.condition, plan.keys))
    for alert in (a for a in got.alerts if a.rule_id == "Test.Ioc"):
        for sample in alert.samples:
            shown = sample["p_enrichment"]
            assert shown["iocs"]["dstAddr"]["confidence"] >= 80
            assert all(row is not None for table in shown.values() for row in table.values())
    watched = next(a for a in got.alerts if a.rule_id == "Test.Watch")
    assert watched.alert_context is not None and watched.alert_context["teams"]


def test_a_table_that_does_not_pickle_is_built_again(tmp_path: Path) -> None:
    pack = write_pack(tmp_path)
    enricher = pack_enrichment(pack, {"AWS.VPCFlow"}).enricher
    assert enricher is not None

    class Unpicklable:  # a local class does not pickle, as an open mmdb reader does not
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    payloads = [payload(pack, BoundTable(Unpicklable(t.lookup), t.selectors))
                for t in enricher.tables]
    assert all(isinstance(p, Rebuild) for p in payloads)
    assert isinstance(payload(pack, enricher.tables[0]), bytes)
    rebuilt = Enricher([unpack(pickle.loads(pickle.dumps(p))) for p in payloads])
    batch = pa.record_batch({"srcAddr": ["185.220.101.4", "10.0.0.1"],
                             "dstAddr": ["203.0.113.77", "198.51.100.3"]})
    want = enricher.enrich(batch, "AWS.VPCFlow").column("p_enrichment")
    assert rebuilt.enrich(batch, "AWS.VPCFlow").column("p_enrichment").equals(want)
    assert want.to_pylist()[0]["tor_exit_nodes"]["srcAddr"]["nickname"] == "relayOne"


def test_a_rebuilt_table_reads_the_file_shipped_with_the_job(spark: Any, tmp_path: Path) -> None:
    pack = write_pack(tmp_path)  # its iocs table comes from the configuration: iocs.csv
    enricher = pack_enrichment(pack, {"AWS.VPCFlow"}).enricher
    assert enricher is not None
    [iocs] = [t for t in enricher.tables if t.lookup.name == "iocs"]

    class Unpicklable:  # as an open mmdb reader
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    shipped = payload(pack, BoundTable(Unpicklable(iocs.lookup), iocs.selectors), spark)
    assert isinstance(shipped, Rebuild) and shipped.shipped == "iocs.csv"

    def fetched(_: int) -> bool:
        from pyspark import SparkFiles

        return os.path.exists(SparkFiles.get("iocs.csv"))

    assert spark.sparkContext.parallelize([0], 1).map(fetched).collect() == [True]
    (tmp_path / "iocs.csv").rename(tmp_path / "gone.csv")  # the executors need no copy here

    def confidence(_: int) -> Any:
        batch = pa.record_batch({"dstAddr": ["203.0.113.77"]})
        return unpack(shipped).lookup.match(batch.column(0)).to_pylist()[0]["confidence"]

    assert spark.sparkContext.parallelize([0], 1).map(confidence).collect() == [90]
