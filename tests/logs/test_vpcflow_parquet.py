"""AWS.VPCFlow Parquet: AWS's types, quirky producers, streaming."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowwarden.logs.formats.vpcflow_parquet import detect
from tests.flowgen.generate import generate_flows, write_parquet
from tests.logs.helpers import check_invariant, read_rows


@pytest.mark.parametrize(
    "name", ["synthetic_v8_aws_doc_types.parquet", "synthetic_v8_aws_doc_types_parquetv1.parquet"]
)
def test_synthetic_v8(samples: Path, name: str) -> None:
    rows, reader = read_rows([samples / "parquet" / name])
    assert len(rows) == 6
    first = rows[0]
    assert (
        first["srcAddr"] == "52.95.128.179" and first["srcPort"] == 80 and first["dstPort"] == 34210
    )
    assert first["start"] == datetime.fromtimestamp(1616729292, UTC)
    assert first["status"] == "OK" and first["pktSrcAwsService"] == "S3"
    assert rows[1]["trafficPath"] == 8 and rows[1]["flowDirection"] == "egress"
    assert rows[2]["rejectReason"] == "BPA" and rows[2]["action"] == "REJECT"
    assert rows[3]["dstAddr"] == "8.8.4.4" and rows[3]["protocol"] == 17
    assert rows[4]["ecsClusterName"] == "DEMOGO-ECS" and rows[4]["ecsSecondContainerId"] is None
    assert (
        rows[5]["status"] == "NODATA" and rows[5]["srcAddr"] is None and rows[5]["packets"] is None
    )
    batch = next(iter(reader)).batch
    assert batch.schema.field("protocol").type == pa.int64()
    assert batch.schema.field("start").type == pa.timestamp("s", tz="UTC")
    assert batch.schema.field("account").type == pa.string()


def test_flowlogs_reader_quirky_types(samples: Path) -> None:
    rows, reader = read_rows([samples / "parquet/flowlogs_reader_tests_flows.parquet"])
    assert len(rows) == 2
    assert rows[0]["account"] == "123456789010"  # written as int64
    assert rows[0]["srcPort"] == 443 and rows[0]["bytes"] == 840  # written as strings
    assert rows[1]["srcAddr"] is None and rows[1]["srcPort"] is None  # "-" and "None"
    assert rows[1]["action"] is None and rows[1]["packets"] is None
    stats = next(iter(reader.stats.files.values()))  # its third row has protocol 8080
    assert [(r.line, r.reason) for r in stats.rejections] == [
        (3, 'protocol (protocol): "8080" is out of range (0..255)')]
    check_invariant(reader)


def test_bad_values_reject_rows(tmp_path: Path) -> None:
    table = pa.table(
        {
            "srcaddr": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
            "dstport": ["22", "abc", "-"],
            "log_status": ["OK", "OK", "OK"],
            "start": [1, 2, 3],
        }
    )
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    rows, reader = read_rows([path])
    stats = reader.stats.files[str(path)]
    assert [r["dstPort"] for r in rows] == [22, None]
    assert stats.rejected == 1 and stats.rejections[0].line == 2
    assert "abc" in stats.rejections[0].reason


def test_unicode_digits_reject_rows_not_the_file(tmp_path: Path) -> None:
    """``"²"`` and ``"٣"`` are digits to Unicode, not integers to a cast: rows, not the file."""
    table = pa.table({"srcaddr": ["a", "b", "c", "d"], "dstaddr": ["e", "f", "g", "h"],
                      "dstport": ["22", "²", "٣", "1٣"]})
    path = tmp_path / "digits.parquet"
    pq.write_table(table, path)
    rows, reader = read_rows([path])
    stats = reader.stats.files[str(path)]
    assert [r["dstPort"] for r in rows] == [22]
    assert [r.line for r in stats.rejections] == [2, 3, 4]


def test_streams_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "gen.log.parquet"
    write_parquet(generate_flows(5000, seed=3, batch_size=1000), str(path))
    assert pq.ParquetFile(path).metadata.num_row_groups == 5
    rows, reader = read_rows([path], batch_size=700)
    sizes = [b.batch.num_rows for b in reader]
    assert sum(sizes) == 5000 and max(sizes) <= 700
    assert pq.ParquetFile(path).schema_arrow.field("protocol").type == pa.int32()


def test_detect() -> None:
    assert detect(
        pa.schema([("srcaddr", pa.string()), ("dstaddr", pa.string()), ("log_status", pa.string())])
    )
    assert not detect(pa.schema([("class_uid", pa.int64()), ("srcaddr", pa.string())]))
    assert not detect(pa.schema([("a", pa.string())]))
