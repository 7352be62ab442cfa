"""OCSF.NetworkActivity: JSON lines (1.1.0, rc.2, Security Lake preview) and Parquet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tests.logs.helpers import read_rows

OCSF = "ocsf"


def test_ocsf_110_jsonl(samples: Path) -> None:
    rows, reader = read_rows([samples / OCSF / "vpcflow_ocsf_1.1.0.jsonl"])
    assert len(rows) == 17 and {r["p_log_type"] for r in rows} == {"OCSF.NetworkActivity"}
    first = rows[0]
    assert first["dst_endpoint"]["ip"] == "172.31.16.21" and first["dst_endpoint"]["port"] == 22
    assert first["src_endpoint"]["interface_uid"] == "eni-1235b8ca123456789"
    assert first["cloud"]["account"]["uid"] == "123456789010"
    assert first["cloud"]["account_uid"] == "123456789010"  # filled from the 1.1.0 shape
    assert first["p_event_time"] == datetime.fromtimestamp(1418530010, UTC)
    assert first["p_any_ip_addresses"] == ["172.31.16.139", "172.31.16.21"]
    assert first["traffic"]["bytes"] == 4249 and first["action_id"] == 1
    batch = next(iter(reader)).batch
    assert pa.types.is_struct(batch.schema.field("dst_endpoint").type)
    assert pc.struct_field(batch.column("dst_endpoint"), "ip")[1].as_py() == "172.31.9.12"


def test_rc2_account_uid(samples: Path) -> None:
    rows, _ = read_rows([samples / OCSF / "vpcflow_ocsf_1.0.0-rc.2.jsonl"])
    assert len(rows) == 17
    assert rows[0]["cloud"]["account_uid"] == "123456789010"
    assert rows[0]["cloud"]["account"]["uid"] == "123456789010"  # filled from the rc.2 shape
    assert rows[0]["metadata"]["version"] == "1.0.0-rc.2"
    assert rows[0]["action_id"] is None


def test_security_lake_preview_dash_ips(samples: Path) -> None:
    rows, reader = read_rows([samples / OCSF / "vpcflow_securitylake_preview.jsonl"])
    assert len(rows) == 17 and reader.stats.totals()["rejected"] == 0
    nodata = [r for r in rows if r["status_code"] == "NODATA"]
    assert nodata and all(r["src_endpoint"]["ip"] is None for r in nodata)
    assert all(r["dst_endpoint"]["ip"] is None for r in nodata)
    assert all(r["p_any_ip_addresses"] == [] for r in nodata)
    assert {r["cloud"]["account"]["uid"] for r in rows} == {"123456789010", "123456789012"}


def test_security_lake_parquet_layout(samples: Path) -> None:
    root = samples / OCSF / "aws"
    rows, reader = read_rows([root])
    assert len(rows) == 17 and len(reader.stats.files) == 7
    s3 = [r for r in rows if r["src_endpoint"]["svc_name"] == "S3"]
    assert s3 and s3[0]["src_endpoint"]["ip"] == "52.95.128.179"
    assert (
        s3[0]["cloud"]["region"] == "ap-southeast-2"
        and s3[0]["cloud"]["account_uid"] == "123456789012"
    )
    assert s3[0]["connection_info"]["direction_id"] == 1


def test_json_and_parquet_share_one_schema(samples: Path) -> None:
    _, reader = read_rows([samples / OCSF])
    schemas = {b.batch.schema.remove_metadata() for b in reader}
    assert len(schemas) == 1


def test_ocsf_account_filter_by_partition(samples: Path) -> None:
    rows, reader = read_rows([samples / OCSF / "aws"], accounts=("123456789012",))
    assert len(reader.stats.files) == 1 and len(rows) == 2
