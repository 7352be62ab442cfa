"""Issue 15, the input side: every bad value is a counted rejection naming its field and line,
through both local engines, never a traceback; and an odd but readable input is read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowwarden.logs import ReadOptions
from tests.conftest import SAMPLES
from tests.logs.fuzzing import scan_stats

HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
          "bytes start end action log-status")
GOOD = ("2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
        "1418530010 1418530070 ACCEPT OK")
OCSF = (SAMPLES / "ocsf/vpcflow_ocsf_1.1.0.jsonl").read_text().splitlines()[0]
DEEP = "[" * 50_000 + "]" * 50_000


def scanned(pack: Any, path: Path, **options: Any) -> dict[str, Any]:
    """The file's stats after a scan with each engine (asserting they agree)."""
    duck = scan_stats(pack, "duckdb", path, ReadOptions(**options))
    python = scan_stats(pack, "python", path, ReadOptions(**options))
    assert duck[0] == python[0] and duck[2] == python[2]
    entry = duck[0]["files"][0]
    assert entry["read"] == entry["parsed"] + entry["rejected"]
    return entry


def rejections(entry: dict[str, Any]) -> list[tuple[int | None, str]]:
    return [(r["line"], r["reason"]) for r in entry["rejections"]]


def text_with(*lines: str) -> str:
    return "\n".join([HEADER, GOOD, *lines, GOOD]) + "\n"


def ocsf_with(**values: Any) -> str:
    return json.dumps({**json.loads(OCSF), **values})


def panther(**values: Any) -> str:
    row = {"p_log_type": "AWS.VPCFlow", "srcAddr": "1.2.3.4", "dstAddr": "10.0.0.1",
           "dstPort": 22, "srcPort": 5555, "protocol": 6, "start": 1418530010,
           "action": "ACCEPT"}
    return json.dumps({**row, **values})


@pytest.mark.parametrize(("line", "reason"), [
    (GOOD.replace("1418530010", "300000000000000"),
     "start (start): 300000000000000 is out of range (a time in 1970-01-01..9999-12-31)"),
    (GOOD.replace(" 22 ", " ٣٤ "), 'dstPort (dstport): not an integer: "٣٤"'),
    (GOOD.replace(" 20 ", " ²³ "), 'packets (packets): not an integer: "²³"'),
    (GOOD.replace(" 22 ", " 65536 "), "dstPort (dstport): 65536 is out of range (0..65535)"),
    (GOOD.replace(" 6 ", " 256 "), "protocol (protocol): 256 is out of range (0..255)"),
    (GOOD.replace(" 22 ", " -0 "), 'dstPort (dstport): not an integer: "-0"'),
    (GOOD.replace(" 4249 ", " " + "9" * 19 + " "),
     'bytes (bytes): not an integer: "9999999999999999999"'),
])
def test_text_values_out_of_range_or_not_digits(default_pack, tmp_path: Path, line: str,
                                                reason: str) -> None:
    path = tmp_path / "bad.log"
    path.write_text(text_with(line))
    entry = scanned(default_pack, path)
    assert entry["parsed"] == 2 and rejections(entry) == [(3, reason)]


@pytest.mark.parametrize(("line", "reason"), [
    (ocsf_with(time=9300000000000000),
     "time: 9300000000000000 is out of range (a time in 1970-01-01..9999-12-31)"),
    (ocsf_with(time=-1), "time: -1 is out of range (a time in 1970-01-01..9999-12-31)"),
    (ocsf_with(dst_endpoint={"ip": "10.0.0.1", "port": 70000}),
     "dst_endpoint.port: 70000 is out of range (0..65535)"),
    (ocsf_with(connection_info={"protocol_num": 300}),
     "connection_info.protocol_num: 300 is out of range (0..255)"),
    ('{"class_uid": 4001, "x": ' + DEEP + "}", "nested deeper than 100 levels"),
])
def test_ocsf_json_values_out_of_range(default_pack, tmp_path: Path, line: str,
                                       reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([OCSF, line, OCSF]) + "\n")
    entry = scanned(default_pack, path)
    assert entry["parsed"] == 2 and rejections(entry) == [(2, reason)]


@pytest.mark.parametrize(("line", "reason"), [
    (panther(start=1e300), "start: 1e+300 is out of range (a time in 1970-01-01..9999-12-31)"),
    (panther(start=253402300800000),
     "start: 253402300800000 is out of range (a time in 1970-01-01..9999-12-31)"),
    (panther(start="9999-12-31T23:00:00-05:00"),
     'start: "9999-12-31T23:00:00-05:00" is out of range (a time in 1970-01-01..9999-12-31)'),
    (panther(dstPort=70000), "dstPort: 70000 is out of range (0..65535)"),
    (panther(dstPort=-1), "dstPort: -1 is out of range (0..65535)"),
    (panther(protocol=1e30), "protocol: 1e+30 is out of range (0..255)"),
    (json.dumps({"p_log_type": "Custom.Thing", "p_event_time": 1e300}),
     "p_event_time: 1e+300 is out of range (a time in 1970-01-01..9999-12-31)"),
    ('{"p_log_type": "AWS.VPCFlow", "x": ' + DEEP + "}", "nested deeper than 100 levels"),
])
def test_panther_json_values_out_of_range(default_pack, tmp_path: Path, line: str,
                                          reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([panther(), line, panther()]) + "\n")
    entry = scanned(default_pack, path)
    assert entry["parsed"] == 2 and rejections(entry) == [(2, reason)]


def test_panther_json_unicode_digits_are_not_numbers(default_pack, tmp_path: Path) -> None:
    path = tmp_path / "digits.jsonl"
    path.write_text("\n".join([panther(dstPort="٣٤"), panther(packets="²³"), panther()]) + "\n")
    entry = scanned(default_pack, path)
    assert entry["parsed"] == 1 and [line for line, _ in rejections(entry)] == [1, 2]
    assert all(reason.startswith(("dstPort:", "packets:")) for _, reason in rejections(entry))


def flow_parquet(tmp_path: Path, column: str, values: list[Any],
                 type_: pa.DataType | None = None) -> Path:
    table = pq.read_table(SAMPLES / "parquet/synthetic_v8_aws_doc_types.parquet")
    array = pa.array(values, type_ or table.schema.field(column).type)
    path = tmp_path / f"{column}.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, array), path)
    return path


@pytest.mark.parametrize(("column", "value", "type_", "reason"), [
    ("start", 9 * 10**18, None,
     "start (start): 9000000000000000000 is out of range (a time in 1970-01-01..9999-12-31)"),
    ("start", -5, None, "start (start): -5 is out of range (a time in 1970-01-01..9999-12-31)"),
    ("start", 253402300800, pa.timestamp("s"),  # Parquet keeps it in milliseconds
     "start (start): 253402300800000 is out of range (a time in 1970-01-01..9999-12-31)"),
    ("srcport", -1, None, "srcPort (srcport): -1 is out of range (0..65535)"),
    ("dstport", 70000, None, "dstPort (dstport): 70000 is out of range (0..65535)"),
    ("srcport", float("nan"), pa.float64(), 'srcPort (srcport): cannot read "nan"'),
    ("srcport", float("inf"), pa.float64(), 'srcPort (srcport): cannot read "inf"'),
    ("srcport", 1e30, pa.float64(), "srcPort (srcport): 1e+30 is out of range (0..65535)"),
    ("protocol", 300, None, "protocol (protocol): 300 is out of range (0..255)"),
    ("dstport", "٣٤", pa.string(), 'dstPort (dstport): cannot read "٣٤"'),
])
def test_parquet_values_out_of_range_reject_their_row_only(
        default_pack, tmp_path: Path, column: str, value: Any, type_: pa.DataType | None,
        reason: str) -> None:
    good = pq.read_table(SAMPLES / "parquet/synthetic_v8_aws_doc_types.parquet").column(column)
    values = good.to_pylist() if type_ is None or type_ == pa.float64() else None
    if values is None:
        values = [str(v) if type_ == pa.string() else v for v in good.to_pylist()]
    values[1] = value
    path = flow_parquet(tmp_path, column, values, type_)
    for options in ({}, {"batch_size": 2}):
        entry = scanned(default_pack, path, **options)
        assert entry["parsed"] == 5 and rejections(entry) == [(2, reason)]


def test_ocsf_parquet_time_out_of_range(default_pack, tmp_path: Path) -> None:
    source = next((SAMPLES / "ocsf/aws").rglob("eventDay=20190826/*.parquet"))
    table = pq.read_table(source)
    times = table.column("time").to_pylist()
    times[0] = 9300000000000000
    path = tmp_path / "ocsf.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("time"), "time",
                                    pa.array(times, table.schema.field("time").type)), path)
    entry = scanned(default_pack, path)
    assert entry["parsed"] == len(times) - 1 and rejections(entry) == [
        (1, "time: 9300000000000000 is out of range (a time in 1970-01-01..9999-12-31)")]


def test_cloudwatch_deep_payload_bad_payload_and_odd_events(default_pack,
                                                            tmp_path: Path) -> None:
    def payload(*events: Any) -> str:
        return json.dumps({"messageType": "DATA_MESSAGE", "logEvents": list(events)})

    path = tmp_path / "cw.json"
    path.write_text("\n".join([
        payload({"message": GOOD}),
        '{"messageType": "DATA_MESSAGE", "logEvents": [}',  # broken
        '{"messageType": "DATA_MESSAGE", "logEvents": [], "x": ' + DEEP + "}",
        payload(1, "x", {"message": 5}, {"message": GOOD}),
    ]) + "\n")
    entry = scanned(default_pack, path)
    assert entry["parsed"] == 2  # the payloads after the bad ones are read
    assert rejections(entry) == [
        (None, "payload on line 2: not JSON: Expecting value"),
        (None, "payload on line 3: nested deeper than 100 levels"),
        (2, 'log event is not a JSON object: "int"'),
        (3, 'log event is not a JSON object: "str"'),
        (4, 'log event has no message text: "5"'),
    ]


def test_a_bom_and_cr_line_ends_read_as_any_text(default_pack, tmp_path: Path) -> None:
    text = "\n".join([HEADER, GOOD, GOOD]) + "\n"
    bom = tmp_path / "bom.log"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    cr = tmp_path / "cr.log"
    cr.write_text(text.replace("\n", "\r"), newline="")
    for path in (bom, cr):
        entry = scanned(default_pack, path)
        assert (entry["read"], entry["parsed"], entry["log_type"]) == (2, 2, "AWS.VPCFlow")


def test_an_ocsf_file_whose_first_line_is_not_ocsf(default_pack, tmp_path: Path) -> None:
    path = tmp_path / "ocsf.jsonl"
    path.write_text("\n".join(["hello", OCSF, OCSF]) + "\n")
    entry = scanned(default_pack, path)
    assert entry["log_type"] == "OCSF.NetworkActivity" and entry["parsed"] == 2
    assert rejections(entry) == [(1, "not JSON: Expecting value: line 1 column 1 (char 0)")]


def test_text_junk_before_the_header_is_rejected_line_by_line(default_pack,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "junk.log"
    path.write_text("\n".join(["exported by a tool", HEADER, GOOD]) + "\n")
    entry = scanned(default_pack, path)
    assert entry["parsed"] == 1 and rejections(entry) == [
        (1, 'before the header line 2: not a flow log record: "exported by a tool"')]


def test_a_header_naming_a_field_twice_rejects_its_records(default_pack, tmp_path: Path) -> None:
    path = tmp_path / "dup.log"
    path.write_text("\n".join([HEADER.replace("log-status", "srcaddr"), GOOD, "", GOOD]) + "\n")
    entry = scanned(default_pack, path)
    reason = "the header line 1 names srcaddr more than once, so its records cannot be read"
    assert entry["parsed"] == 0 and rejections(entry) == [(2, reason), (4, reason)]


def test_panther_json_integers_arrow_cannot_hold(default_pack, tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    rows = [{"p_log_type": "Custom.Thing", "n": n, "s": "x"} for n in (1, 10**40, 2**64)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    entry = scanned(default_pack, path)
    assert entry["parsed"] == 2 and [line for line, _ in rejections(entry)] == [2]
    assert rejections(entry)[0][1].startswith("n: cannot hold 1000000000000000000000000000000")


def test_parquet_strings_that_are_not_utf8_are_replaced(default_pack, tmp_path: Path) -> None:
    """Corrupt pages can hand over strings that are not UTF-8, which Python cannot read."""
    table = pq.read_table(SAMPLES / "parquet/synthetic_v8_aws_doc_types.parquet")
    bad = pa.array([b"eni-\xff1", *[b"eni-ok"] * (table.num_rows - 1)]).cast(pa.string(),
                                                                             safe=False)
    path = tmp_path / "latin.parquet"
    index = table.schema.get_field_index("interface_id")
    pq.write_table(table.set_column(index, "interface_id", bad), path)
    entry = scanned(default_pack, path)
    assert entry["parsed"] == table.num_rows and entry["rejected"] == 0
    source = tmp_path / "ocsf.parquet"
    ocsf = pq.read_table(next((SAMPLES / "ocsf/aws").rglob("eventDay=20190826/*.parquet")))
    status = pa.array([b"O\xffK", *[b"OK"] * (ocsf.num_rows - 1)]).cast(pa.string(), safe=False)
    pq.write_table(ocsf.set_column(ocsf.schema.get_field_index("status_code"), "status_code",
                                   status), source)
    assert scanned(default_pack, source)["parsed"] == ocsf.num_rows
