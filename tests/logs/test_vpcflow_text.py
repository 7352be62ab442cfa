"""AWS.VPCFlow text: samples, custom formats, bad lines, gzip, and property tests."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowwarden.logs import fields as F
from flowwarden.logs.formats.vpcflow_header import detect, header_fields
from flowwarden.logs.limits import int_range
from tests.logs.helpers import check_invariant, non_null, read_rows, without_source


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_default_v2_examples(samples: Path) -> None:
    rows, reader = read_rows([samples / "s3-text/awsdocs_default_v2_examples.log"])
    assert len(rows) == 7
    ssh = non_null(rows[0])
    assert ssh["srcAddr"] == "172.31.16.139" and ssh["dstPort"] == 22 and ssh["protocol"] == 6
    assert ssh["account"] == "123456789010" and ssh["bytes"] == 4249 and ssh["packets"] == 20
    assert ssh["start"] == utc(1418530010) and ssh["end"] == utc(1418530070)
    assert ssh["p_event_time"] == utc(1418530010)
    assert ssh["p_any_ip_addresses"] == ["172.31.16.139", "172.31.16.21"]
    assert ssh["p_log_type"] == "AWS.VPCFlow" and ssh["version"] == 2
    assert rows[1]["action"] == "REJECT" and rows[1]["dstPort"] == 3389
    for nodata in rows[2:4]:
        assert nodata["srcAddr"] is None and nodata["dstPort"] is None
        assert nodata["action"] is None and nodata["p_any_ip_addresses"] == []
    assert [r["status"] for r in rows[2:4]] == ["NODATA", "SKIPDATA"]
    assert rows[4]["protocol"] == 1 and rows[4]["srcPort"] == 0
    assert rows[6]["srcAddr"] == "2001:db8:1234:a100:8d6e:3477:df66:f105"
    assert reader.stats.totals() == {
        "read": 7,
        "parsed": 7,
        "rejected": 0,
        "filtered": 0,
        "files": 1,
    }


def test_types_follow_panther(samples: Path) -> None:
    rows, reader = read_rows([samples / "s3-text/awsdocs_v5_service_path_direction.log"])
    batch = next(iter(reader)).batch
    schema = batch.schema
    for name in ("srcPort", "dstPort", "protocol", "tcpFlags", "trafficPath", "version", "bytes"):
        assert schema.field(name).type == pa.int64(), name
    assert schema.field("start").type == pa.timestamp("s", tz="UTC")
    assert schema.field("p_event_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("p_any_ip_addresses").type == pa.list_(pa.string())
    assert rows[1]["trafficPath"] == 8 and rows[0]["trafficPath"] is None
    assert rows[0]["pktSrcAwsService"] == "S3" and rows[1]["pktDstAwsService"] == "S3"
    assert rows[0]["flowDirection"] == "ingress" and rows[0]["azId"] == "apse2-az3"
    assert rows[0]["sublocationType"] is None and rows[0]["tcpFlags"] == 19


def test_double_space_is_one_separator(samples: Path) -> None:
    rows, reader = read_rows([samples / "s3-text/awsdocs_v3_tcp_flag_sequence_custom.log"])
    assert len(rows) == 8 and reader.stats.totals()["rejected"] == 0
    last = rows[-1]
    assert last["srcPort"] == 5001 and last["dstPort"] == 43638
    assert last["pktSrcAddr"] == "10.0.0.62" and last["tcpFlags"] == 19
    assert [r["tcpFlags"] for r in rows[:2]] == [2, 18]


def test_nat_format_without_version(samples: Path) -> None:
    rows, _ = read_rows([samples / "s3-text/awsdocs_nat_gateway_custom.log"])
    assert len(rows) == 6
    assert rows[0]["instanceId"] is None and rows[0]["version"] is None
    assert rows[0]["pktDstAddr"] == "203.0.113.5" and rows[0]["dstAddr"] == "10.0.0.220"
    assert rows[0]["p_any_ip_addresses"] == ["10.0.0.220", "10.0.1.5", "203.0.113.5"]  # sorted
    assert rows[0]["p_event_time"] is None  # the format has no start or end
    assert rows[4]["instanceId"] == "i-01234567890123456"


def test_transit_gateway_and_otel_samples(samples: Path) -> None:
    rows, _ = read_rows([samples / "s3-text/awsdocs_transit_gateway_custom.log"])
    assert len(rows) == 4 and rows[2]["instanceId"] is None
    assert rows[2]["srcAddr"] == "10.40.1.175" and rows[2]["pktSrcAddr"] == "10.20.33.164"
    rows, _ = read_rows([samples / "s3-text/otel_valid_vpc_flow_log_multi.log"])
    assert [r["action"] for r in rows] == ["ACCEPT", "REJECT"]  # no trailing newline
    rows, _ = read_rows([samples / "s3-text/otel_valid_vpc_flow_log_nodata.log"])
    assert len(rows) == 1 and rows[0]["account"] == "12345678910" and rows[0]["status"] == "NODATA"


def test_ecs_fields(samples: Path) -> None:
    rows, _ = read_rows([samples / "s3-text/otel_valid_vpc_flow_log_ecs.log"])
    assert len(rows) == 1
    assert rows[0]["ecsClusterName"] == "my-cluster" and rows[0]["ecsTaskId"] == "abcdef1234567890"
    assert rows[0]["ecsSecondContainerId"] == "container-2"


def test_gzip_sample_under_key_layout(samples: Path) -> None:
    path = next((samples / "s3-text/AWSLogs").rglob("*.log.gz"))
    rows, reader = read_rows([path])
    assert len(rows) == 7 and rows[0]["dstPort"] == 22
    assert reader.stats.files[str(path)].log_type == "AWS.VPCFlow"


def test_gzip_detected_by_magic_not_name(tmp_path: Path, samples: Path) -> None:
    target = tmp_path / "flows.txt"
    target.write_bytes(
        gzip.compress((samples / "s3-text/awsdocs_default_v2_examples.log").read_bytes())
    )
    rows, _ = read_rows([target])
    assert len(rows) == 7
    plain = tmp_path / "plain.log.gz"
    plain.write_bytes((samples / "s3-text/awsdocs_default_v2_examples.log").read_bytes())
    assert len(read_rows([plain])[0]) == 7


HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
GOOD = "2 123456789010 eni-1 10.0.0.1 8.8.8.8 5555 53 17 1 70 1418530010 1418530070 ACCEPT OK"


def write(tmp_path: Path, *lines: str, name: str = "f.log") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_lines_are_rejected_with_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        GOOD,
        GOOD.replace(" 53 ", " abc "),
        GOOD.rsplit(" ", 1)[0],
        GOOD.replace("ACCEPT", "MAYBE"),
        "",
        GOOD,
    )
    rows, reader = read_rows([path])
    stats = reader.stats.files[str(path)]
    assert len(rows) == 2 and stats.parsed == 2 and stats.rejected == 3 and stats.read == 5
    by_line = {r.line: r.reason for r in stats.rejections}
    assert set(by_line) == {3, 4, 5}
    assert "dstPort" in by_line[3] and '"abc"' in by_line[3]
    assert by_line[4] == "expected 14 fields, found 13"
    assert "MAYBE" in by_line[5]
    assert all(r.source == str(path) for r in stats.rejections)


def test_headerless_default_and_custom_format(tmp_path: Path) -> None:
    rows, _ = read_rows([write(tmp_path, GOOD, GOOD)])
    assert len(rows) == 2 and rows[0]["dstAddr"] == "8.8.8.8"
    custom = write(tmp_path, "10.0.0.9 443 ACCEPT", "10.0.0.8 - REJECT", name="c.log")
    rows, _ = read_rows([custom], format="${srcaddr} ${dstport} ${action}")
    assert [(r["srcAddr"], r["dstPort"], r["action"]) for r in rows] == [
        ("10.0.0.9", 443, "ACCEPT"),
        ("10.0.0.8", None, "REJECT"),
    ]


def test_unknown_newer_fields_are_kept_as_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "srcaddr dstport encryption-status next-hop-vpc-id", "10.0.0.1 443 1 -")
    rows, reader = read_rows([path])
    batch = next(iter(reader)).batch
    assert batch.schema.field("encryptionStatus").type == pa.string()
    assert rows[0]["encryptionStatus"] == "1" and rows[0]["nextHopVpcId"] is None
    assert rows[0]["dstPort"] == 443


def test_millisecond_timestamps_and_repeated_header(tmp_path: Path) -> None:
    ms = GOOD.replace("1418530010 1418530070", "1418530010000 1418530070000")
    rows, reader = read_rows([write(tmp_path, HEADER, ms, HEADER, GOOD)])
    assert [r["start"] for r in rows] == [utc(1418530010)] * 2
    assert reader.stats.totals()["rejected"] == 0


@pytest.mark.parametrize("batch_size", [65536, 500])  # one block, or many (fast path)
def test_truncated_gzip_keeps_records_before_it(tmp_path: Path, batch_size: int) -> None:
    body = "\n".join([HEADER] + [GOOD.replace(" 5555 ", f" {i} ") for i in range(20000)]) + "\n"
    data = gzip.compress(body.encode())
    path = tmp_path / "cut.log.gz"
    path.write_bytes(data[: len(data) // 2])
    rows, reader = read_rows([path], batch_size=batch_size)
    stats = reader.stats.files[str(path)]
    assert 0 < len(rows) < 20000
    assert [r["srcPort"] for r in rows] == list(range(len(rows)))
    assert stats.rejected == 1 and "truncated" in stats.rejections[0].reason
    assert stats.rejections[0].line == len(rows) + 2
    check_invariant(reader)


def test_detect_header_and_data() -> None:
    assert detect(HEADER.encode() + b"\n")
    assert detect(GOOD.encode())
    assert not detect(b"# a markdown file\n")
    assert header_fields("eni-123 10.0.0.1") is None
    assert header_fields("instance-id interface-id") is not None


def test_many_rejections_counted_but_capped(tmp_path: Path) -> None:
    rows, reader = read_rows([write(tmp_path, HEADER, *["x y z"] * 250, GOOD)])
    stats = next(iter(reader.stats.files.values()))
    assert len(rows) == 1 and stats.rejected == 250 and len(stats.rejections) == 100


# --- property tests -------------------------------------------------------------------------

IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
TOKEN = st.text("abcdefghijklmnopqrstuvwxyz0123456789-:/", min_size=1, max_size=12).filter(
    lambda s: s != "-"
)
KNOWN = [f for f in F.FIELDS]


def value_for(field: F.Field) -> st.SearchStrategy[object]:
    if field.type == F.TIME:
        value: st.SearchStrategy[object] = st.integers(0, 4_000_000_000)
    elif field.type == F.INT:
        value = st.integers(*int_range(field.panther)).filter(lambda v: v <= 2**40)
    elif field.panther == "action":
        value = st.sampled_from(["ACCEPT", "REJECT"])
    elif "addr" in field.aws:
        value = IPV4
    else:
        value = TOKEN
    return st.one_of(st.none(), value)


@st.composite
def records(draw: st.DrawFn) -> tuple[list[F.Field], list[dict[str, object]]]:
    chosen = draw(st.lists(st.sampled_from(KNOWN), min_size=1, max_size=12, unique=True))
    rows = draw(
        st.lists(
            st.fixed_dictionaries({f.panther: value_for(f) for f in chosen}),
            min_size=1,
            max_size=20,
        )
    )
    return chosen, rows


def render(value: object) -> str:
    return "-" if value is None else str(value)


def expected(field: F.Field, value: object) -> object:
    if value is None or field.type != F.TIME:
        return value
    return utc(int(value))  # type: ignore[call-overload]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=records())
def test_roundtrip_random_custom_formats(
    tmp_path: Path, data: tuple[list[F.Field], list[dict[str, object]]]
) -> None:
    fields, rows = data
    lines = [" ".join(f.aws for f in fields)]
    lines += ["  ".join(render(r[f.panther]) for f in fields) for r in rows]
    got, reader = read_rows([write(tmp_path, *lines, name="prop.log")])
    assert reader.stats.totals()["rejected"] == 0
    assert [{f.panther: g[f.panther] for f in fields} for g in got] == [
        {f.panther: expected(f, r[f.panther]) for f in fields} for r in rows
    ]


GARBAGE = st.one_of(
    st.text(
        alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=["Cs"]),
        min_size=1,
        max_size=80,
    ),
    st.just(GOOD.replace(" 53 ", " x53 ")),
    st.just(GOOD + " extra"),
).filter(lambda s: s.strip() != "")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.lists(st.tuples(st.integers(0, 30), GARBAGE), min_size=1, max_size=10))
def test_garbage_lines_are_each_reported(tmp_path: Path, garbage: list[tuple[int, str]]) -> None:
    lines = [GOOD] * 30
    bad_at: list[int] = []
    for position, text in garbage:
        lines.insert(position, text)
    for index, line in enumerate(lines):
        if line not in (GOOD,):
            bad_at.append(index + 2)  # the header is line 1
    got, reader = read_rows([write(tmp_path, HEADER, *lines, name="garbage.log")])
    stats = next(iter(reader.stats.files.values()))
    check_invariant(reader)
    rejected_lines = sorted(r.line for r in stats.rejections if r.line is not None)
    assert stats.parsed == len(got)
    # Every garbage line is reported, by its own line number.
    assert rejected_lines == bad_at
    assert stats.parsed + stats.rejected == len(lines)
    assert len(got) >= 30


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_batch_size_bounds_batches(tmp_path: Path, size: int) -> None:
    path = write(tmp_path, HEADER, *[GOOD] * 2500)
    _, reader = read_rows([path], batch_size=size)
    batches = [b.batch.num_rows for b in reader]
    assert sum(batches) == 2500 and max(batches) <= size


def test_fast_and_general_paths_agree(tmp_path: Path) -> None:
    from tests.flowgen.generate import generate_flows, write_text

    fields = [f.aws for f in F.FIELDS if f.version <= 5]
    fast = tmp_path / "fast.log"
    write_text(generate_flows(3000, 8), str(fast), gzip=False, fields=fields)
    slow = tmp_path / "slow.log"
    slow.write_text(fast.read_text().replace(" ", "  "))  # runs of spaces force the general path
    fast_rows, fast_reader = read_rows([fast])
    slow_rows, slow_reader = read_rows([slow])
    assert len(fast_rows) == 3000 and without_source(fast_rows) == without_source(slow_rows)
    assert fast_reader.stats.totals() == slow_reader.stats.totals()
