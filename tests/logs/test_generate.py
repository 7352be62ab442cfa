"""The seeded generator and its AWS text / Parquet writers."""

from __future__ import annotations

import ipaddress
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.flowgen.generate import generate_flows, write_parquet, write_text
from tests.logs.helpers import read_rows

START = datetime(2024, 5, 1, tzinfo=UTC)


def rows_of(n: int, seed: int) -> list[dict]:
    return pa.Table.from_batches(list(generate_flows(n, seed, start=START))).to_pylist()


def test_seeded_and_deterministic() -> None:
    assert rows_of(3000, 11) == rows_of(3000, 11)
    assert rows_of(3000, 11) != rows_of(3000, 12)


def test_realistic_mix() -> None:
    rows = rows_of(60000, 5)
    status = Counter(r["status"] for r in rows)
    assert (
        status["OK"] > 55000
        and status["NODATA"] > 100
        and 0 < status["SKIPDATA"] < status["NODATA"] / 5
    )
    dns = [r for r in rows if r["dstPort"] == 53 and r["flowDirection"] == "egress"]
    resolvers = {r["dstAddr"] for r in dns}
    assert {"1.1.1.1", "8.8.8.8"} <= resolvers and len(resolvers - {"1.1.1.1", "8.8.8.8"}) >= 2
    assert any(r["dstAddr"] == "224.0.0.251" and r["dstPort"] == 5353 for r in rows)
    inbound = [
        r
        for r in rows
        if r["flowDirection"] == "ingress"
        and r["srcAddr"]
        and ipaddress.ip_address(r["srcAddr"]).is_global
        and ipaddress.ip_address(r["dstAddr"]).is_private
    ]
    ports = Counter(r["dstPort"] for r in inbound)
    assert ports[22] > 0 and ports[3389] > 0
    returns = [r for r in inbound if r["srcPort"] == 443 and r["dstPort"] >= 32768]
    assert len(returns) > 1000
    v6 = [r for r in rows if r["trafficType"] == "IPv6"]
    assert v6 and any(
        ipaddress.ip_address(r["srcAddr"]) in ipaddress.ip_network("2600:1f18::/40") for r in v6
    )
    nat = [r for r in rows if r["pktSrcAddr"] and r["pktSrcAddr"] != r["srcAddr"]]
    assert nat
    assert all(r["tcpFlags"] is not None and r["flowDirection"] for r in rows if r["protocol"] == 6)
    hosts = {r["srcAddr"] for r in rows} | {r["dstAddr"] for r in rows}
    assert 1000 < len(hosts) < 10000


def test_port_scan_burst() -> None:
    rows = rows_of(50000, 9)
    by_source = Counter(r["srcAddr"] for r in rows if r["action"] == "REJECT")
    scanner, _ = by_source.most_common(1)[0]
    scan = [r for r in rows if r["srcAddr"] == scanner and r["action"] == "REJECT"]
    assert len({r["dstAddr"] for r in scan if r["srcPort"] == 51515}) == 1
    assert len({r["dstPort"] for r in scan}) > 300
    times = [r["start"] for r in scan if r["srcPort"] == 51515]
    assert max(times) - min(times) <= timedelta(minutes=2)


def test_text_roundtrip(tmp_path: Path) -> None:
    batches = list(generate_flows(2000, 4, start=START, batch_size=500))
    path = tmp_path / "flows.log.gz"
    assert write_text(batches, str(path)) == 2000
    rows, reader = read_rows([path])
    original = pa.Table.from_batches(batches).to_pylist()
    assert reader.stats.totals()["rejected"] == 0 and len(rows) == 2000
    for got, want in zip(rows, original, strict=True):
        assert got["srcAddr"] == want["srcAddr"] and got["dstPort"] == want["dstPort"]
        assert got["start"] == want["start"] and got["status"] == want["status"]
        assert got["version"] == 2


def test_text_custom_fields(tmp_path: Path) -> None:
    fields = [
        "version",
        "srcaddr",
        "pkt-srcaddr",
        "tcp-flags",
        "flow-direction",
        "start",
        "log-status",
    ]
    path = tmp_path / "custom.log"
    write_text(generate_flows(300, 4, start=START), str(path), gzip=False, fields=fields)
    assert path.read_text().splitlines()[0] == " ".join(fields)
    rows, _ = read_rows([path])
    assert len(rows) == 300 and {r["version"] for r in rows} == {5}
    assert any(r["flowDirection"] == "egress" for r in rows) and rows[0]["dstPort"] is None


def test_parquet_as_aws_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "flows.log.parquet"
    write_parquet(generate_flows(1000, 4, start=START), str(path))
    schema = pq.ParquetFile(path).schema_arrow
    assert schema.field("log_status").type == pa.string()
    assert schema.field("srcport").type == pa.int32() and schema.field("bytes").type == pa.int64()
    assert schema.field("start").type == pa.int64() and "account_id" in schema.names
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "GZIP"
    rows, _ = read_rows([path])
    assert len(rows) == 1000 and rows[0]["version"] == 5
