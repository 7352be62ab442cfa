"""write_normalized: JSONL and Parquet output that reads back the same."""

from __future__ import annotations

import io
import json
from pathlib import Path

from flowwarden.logs import read
from flowwarden.logs.convert import write_normalized
from tests.logs.helpers import non_null, read_rows, without_source


def test_jsonl_roundtrip(samples: Path, tmp_path: Path) -> None:
    source = [str(samples / "s3-text"), str(samples / "ocsf/vpcflow_ocsf_1.1.0.jsonl")]
    out = tmp_path / "out.jsonl"
    write_normalized(read(source), "jsonl", str(out))
    lines = out.read_text().splitlines()
    assert len(lines) == 38 + 17  # the s3-text records plus the OCSF file
    first = json.loads(lines[0])
    assert first["p_event_time"].endswith("Z") and first["start"].endswith("Z")
    before, _ = read_rows(source)
    after, reader = read_rows([out])
    assert reader.stats.totals()["rejected"] == 0
    assert without_source([non_null(r) for r in after]) == without_source(
        [non_null(r) for r in before]
    )


def test_jsonl_to_text_stream(samples: Path) -> None:
    buffer = io.StringIO()
    write_normalized(read([str(samples / "cloudwatch")]), "jsonl", buffer)
    assert [json.loads(x)["dstPort"] for x in buffer.getvalue().splitlines()] == [22, 3389]


def test_parquet_per_log_type(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "norm.parquet"
    write_normalized(
        read([str(samples / "parquet"), str(samples / "ocsf/aws")]), "parquet", str(out)
    )
    written = sorted(p.name for p in tmp_path.glob("*.parquet"))
    assert written == ["norm.OCSF.NetworkActivity.parquet", "norm.parquet"]
    rows, reader = read_rows([out])
    assert len(rows) == 14 and rows[0]["p_log_type"] == "AWS.VPCFlow"  # one has protocol 8080
    rows, _ = read_rows([tmp_path / "norm.OCSF.NetworkActivity.parquet"])
    assert len(rows) == 17 and rows[0]["dst_endpoint"]["ip"] is not None
