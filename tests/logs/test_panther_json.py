"""Panther JSON lines: known log types cast to the native schema, others inferred."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.logs.helpers import check_invariant, read_rows

SPEC_EVENTS = [
    {"dstPort": 53, "dstAddr": "1.1.1.1", "srcAddr": "10.0.0.1", "p_log_type": "AWS.VPCFlow"},
    {
        "dst_endpoint": {"ip": "1.1.1.1", "port": 53},
        "src_endpoint": {"ip": "10.0.0.1"},
        "p_log_type": "OCSF.NetworkActivity",
    },
]


def write_lines(tmp_path: Path, lines: list[Any], name: str = "p.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_spec_events_group_by_log_type(tmp_path: Path) -> None:
    _, reader = read_rows([write_lines(tmp_path, SPEC_EVENTS * 2)])
    batches = list(reader)
    assert sorted(b.log_type for b in batches) == ["AWS.VPCFlow", "OCSF.NetworkActivity"]
    vpc = next(b.batch for b in batches if b.log_type == "AWS.VPCFlow")
    assert vpc.num_rows == 2 and vpc.schema.field("dstPort").type == pa.int64()
    assert vpc.column("dstPort").to_pylist() == [53, 53] and vpc.column("srcPort").null_count == 2
    ocsf = next(b.batch for b in batches if b.log_type == "OCSF.NetworkActivity")
    assert ocsf.to_pylist()[0]["dst_endpoint"]["port"] == 53
    # sorted byte-wise, as Panther serializes an indicator set
    assert ocsf.column("p_any_ip_addresses").to_pylist()[0] == ["1.1.1.1", "10.0.0.1"]


def test_known_type_uses_native_schema(tmp_path: Path, samples: Path) -> None:
    line = {
        "p_log_type": "AWS.VPCFlow",
        "srcAddr": "10.0.0.1",
        "dstPort": "22",
        "start": "2014-12-14 04:06:50.000000000",
        "end": 1418530070,
        "custom": {"a": 1},
    }
    _, reader = read_rows([write_lines(tmp_path, [line])])
    batch = next(iter(reader)).batch
    text = next(iter(read_rows([samples / "s3-text/awsdocs_default_v2_examples.log"])[1])).batch
    for name in text.schema.names:
        if name != "p_parse_time":
            assert batch.schema.field(name).type == text.schema.field(name).type, name
    row = batch.to_pylist()[0]
    assert row["dstPort"] == 22 and row["custom"] == {"a": 1}
    assert row["start"] == datetime.fromtimestamp(1418530010, UTC) == row["p_event_time"]
    assert row["end"] == datetime.fromtimestamp(1418530070, UTC)


def test_rejections(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path,
        [
            SPEC_EVENTS[0],
            "not json",
            {"dstPort": 53},
            {"p_log_type": "AWS.VPCFlow", "dstPort": "abc"},
            "[1, 2]",
            SPEC_EVENTS[0],
        ],
    )
    rows, reader = read_rows([path])
    stats = reader.stats.files[str(path)]
    assert len(rows) == 2 and stats.rejected == 4
    reasons = {r.line: r.reason for r in stats.rejections}
    assert set(reasons) == {2, 3, 4, 5}
    assert "not JSON" in reasons[2] and "p_log_type" in reasons[3]
    assert "dstPort" in reasons[4] and "abc" in reasons[4]
    check_invariant(reader)


def test_log_type_option_for_lines_without_one(tmp_path: Path) -> None:
    path = write_lines(tmp_path, [{"dstPort": 53, "dstAddr": "8.8.8.8"}])
    rows, _ = read_rows([path], log_type="AWS.VPCFlow")
    assert rows[0]["dstPort"] == 53 and rows[0]["p_log_type"] == "AWS.VPCFlow"
    rows, _ = read_rows([path], log_type="Custom.Thing")
    assert rows[0]["p_log_type"] == "Custom.Thing" and rows[0]["dstPort"] == 53


def test_unknown_type_keeps_conflicting_values(tmp_path: Path) -> None:
    lines = [
        {
            "p_log_type": "Custom.X",
            "a": 1,
            "b": {"c": [1, "x"]},
            "p_event_time": "2024-01-01T00:00:00Z",
        },
        {"p_log_type": "Custom.X", "a": "one", "b": None, "p_any_ip_addresses": ["10.1.1.1"]},
    ]
    rows, _ = read_rows([write_lines(tmp_path, lines)])
    assert rows[0]["a"] == 1 and rows[1]["a"] == "one"
    assert rows[0]["b"] == {"c": [1, "x"]} and rows[1]["b"] is None
    assert rows[0]["p_event_time"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert rows[1]["p_any_ip_addresses"] == ["10.1.1.1"] and rows[0]["p_any_ip_addresses"] == []


# Integers stay within a double's exact range: pyarrow infers int+float mixes as double.
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text("abcdef", min_size=1, max_size=3), inner, max_size=4),
    ),
    max_leaves=12,
)
KEYS = st.text("abcdefgh", min_size=1, max_size=4)


def without_nulls(value: Any) -> Any:
    """Nested objects with null members dropped: a struct column reports absent keys as null."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(objects=st.lists(st.dictionaries(KEYS, JSON_VALUES, max_size=5), min_size=1, max_size=8))
def test_unknown_types_roundtrip(tmp_path: Path, objects: list[dict[str, Any]]) -> None:
    lines = [{**obj, "p_log_type": "Custom.Prop"} for obj in objects]
    rows, reader = read_rows([write_lines(tmp_path, lines, "prop.jsonl")])
    assert reader.stats.totals()["rejected"] == 0 and len(rows) == len(objects)
    for obj, row in zip(objects, rows, strict=True):
        assert without_nulls({k: row[k] for k in obj}) == without_nulls(obj)
        assert all(row[k] is None for k in row if k not in obj and not k.startswith("p_"))
