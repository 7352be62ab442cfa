"""CloudWatch Logs subscription payloads."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

from tests.logs.helpers import check_invariant, read_rows

RECORD = "2 123456789010 eni-1 10.0.0.1 8.8.8.8 5555 53 17 1 70 1418530010 1418530070 ACCEPT OK"


def payload(*messages: str, kind: str = "DATA_MESSAGE") -> dict[str, object]:
    return {
        "messageType": kind,
        "owner": "123456789010",
        "logGroup": "/aws/vpc/flowlogs",
        "logStream": "eni-1",
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": str(i), "timestamp": 0, "message": m} for i, m in enumerate(messages)],
    }


def test_sample_payload(samples: Path) -> None:
    rows, reader = read_rows([samples / "cloudwatch/otel_valid_vpc_flow_cw.json"])
    assert [r["dstPort"] for r in rows] == [22, 3389]
    assert rows[0]["interfaceId"] == "eni-1235b8ca123456789" and rows[1]["action"] == "REJECT"
    assert next(iter(reader.stats.files.values())).log_type == "AWS.VPCFlow"


def test_control_messages_are_skipped(tmp_path: Path) -> None:
    control = payload("CWL CONTROL MESSAGE: Checking health of destination", kind="CONTROL_MESSAGE")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(control) + json.dumps(payload(RECORD, RECORD)))  # concatenated
    rows, reader = read_rows([path])
    assert len(rows) == 2 and reader.stats.totals()["rejected"] == 0


def test_gzip_and_base64_payloads(tmp_path: Path) -> None:
    raw = gzip.compress(json.dumps(payload(RECORD)).encode())
    gz = tmp_path / "p.gz"
    gz.write_bytes(raw)
    b64 = tmp_path / "p.b64"
    b64.write_text(base64.b64encode(raw).decode() + "\n" + base64.b64encode(raw).decode() + "\n")
    assert len(read_rows([gz])[0]) == 1
    rows, _ = read_rows([b64])
    assert len(rows) == 2 and rows[1]["dstAddr"] == "8.8.8.8"


def test_custom_format_and_bad_message(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(payload("10.0.0.1 443", "10.0.0.2 abc", "10.0.0.3 80")))
    rows, reader = read_rows([path], format="${srcaddr} ${dstport}")
    assert [r["dstPort"] for r in rows] == [443, 80]
    stats = next(iter(reader.stats.files.values()))
    assert stats.rejected == 1 and stats.rejections[0].line == 2
    check_invariant(reader)
