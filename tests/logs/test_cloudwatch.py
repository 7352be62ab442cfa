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


def test_payloads_split_anywhere_across_blocks_read_the_same(tmp_path: Path,
                                                             monkeypatch) -> None:
    from flowwarden.logs.formats import cloudwatch

    path = tmp_path / "p.json"
    good = json.dumps(payload(RECORD, RECORD.replace("eni-1", "eni-é"))).encode()
    path.write_bytes(good + b"\n" + b'{"logEvents": [}\n' + good + good + b"\n"
                     + json.dumps(payload(RECORD)).encode())
    whole, reader = read_rows([path])
    whole_stats = reader.stats.to_json()["files"][0]
    original = cloudwatch.blocks

    def tiny(opened, size=1 << 23):  # 7-byte blocks: every payload is cut, "é" too
        data = b"".join(block for block, _ in original(opened, size))
        for start in range(0, len(data), 7):
            yield data[start:start + 7], None

    monkeypatch.setattr(cloudwatch, "blocks", tiny)
    cut, reader = read_rows([path])
    assert [r["interfaceId"] for r in cut] == [r["interfaceId"] for r in whole]
    assert len(cut) == 7 and "eni-é" in [r["interfaceId"] for r in cut]
    stats = reader.stats.to_json()["files"][0]
    assert stats == whole_stats and stats["rejected"] == 1
    assert stats["rejections"][0]["reason"] == "payload on line 2: not JSON: Expecting value"


def test_payloads_over_the_bound_are_one_rejection_each(tmp_path: Path) -> None:
    big = json.dumps(payload(*[RECORD] * 50))
    bomb = base64.b64encode(gzip.compress(b" " * 100_000 + json.dumps(payload(RECORD)).encode()))
    path = tmp_path / "p.json"
    path.write_text("\n".join([json.dumps(payload(RECORD)), big, bomb.decode(),
                               json.dumps(payload(RECORD))]) + "\n")
    rows, reader = read_rows([path], max_line_bytes=2000)
    assert len(rows) == 2
    stats = next(iter(reader.stats.files.values()))
    assert [(r.line, r.reason) for r in stats.rejections] == [
        (None, "payload on line 2 longer than 2,000 characters"),
        (None, "payload on line 3: payload inflates to more than 2,000 bytes"),
    ]
    check_invariant(reader)


def test_a_payload_over_the_bound_across_blocks_is_one_rejection(tmp_path: Path,
                                                                 monkeypatch) -> None:
    from flowwarden.logs.formats import cloudwatch

    original = cloudwatch.blocks

    def tiny(opened, size=1 << 23):  # 100-byte blocks: the long payload spans many
        data = b"".join(block for block, _ in original(opened, size))
        for start in range(0, len(data), 100):
            yield data[start:start + 100], None

    monkeypatch.setattr(cloudwatch, "blocks", tiny)
    short = json.dumps(payload(RECORD))
    path = tmp_path / "p.json"
    path.write_text("\n".join([short, json.dumps(payload(*[RECORD] * 20)), short]) + "\n")
    rows, reader = read_rows([path], max_line_bytes=400)
    stats = next(iter(reader.stats.files.values()))
    assert len(rows) == 2 and [(r.line, r.reason) for r in stats.rejections] == [
        (None, "payload on line 2: payload longer than 400 characters")]
