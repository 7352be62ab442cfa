"""Panther's indicator fields (``p_any_*``) in every reader: which fields feed them, distinct
values sorted byte-wise, empty lists where a record has none, and only built when asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowwarden.logs import ReadOptions, indicators, read
from flowwarden.logs.common import STANDARD_NAMES
from tests.logs.helpers import read_rows

IPS, ACCOUNTS, INSTANCES = indicators.NAMES
HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
          "start end action log-status instance-id pkt-srcaddr pkt-dstaddr")
LINES = [
    # NAT: the packet addresses differ from the interface's; srcaddr repeats as pkt-srcaddr
    "3 123456789012 eni-1 10.0.1.5 10.0.0.220 4431 443 6 5 500 1700000000 1700000060 ACCEPT OK "
    "i-0abc 10.0.1.5 203.0.113.5",
    # an AWS service's interface: no account, no instance
    "3 unknown eni-2 52.95.1.1 10.0.0.9 443 5000 6 5 500 1700000000 1700000060 ACCEPT OK "
    "- 52.95.1.1 10.0.0.9",
    "3 123456789012 eni-3 - - - - - - - 1700000000 1700000060 - NODATA - - -",
]
EXPECTED = [
    {IPS: ["10.0.0.220", "10.0.1.5", "203.0.113.5"], ACCOUNTS: ["123456789012"],
     INSTANCES: ["i-0abc"]},
    {IPS: ["10.0.0.9", "52.95.1.1"], ACCOUNTS: [], INSTANCES: []},
    {IPS: [], ACCOUNTS: ["123456789012"], INSTANCES: []},
]


def _indicators(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{name: row[name] for name in indicators.NAMES} for row in rows]


def _reference(columns: list[list[Any]], drop: tuple[str, ...]) -> list[list[str]]:
    """What Panther's set gives per row: distinct values, sorted as Go sorts strings (bytes)."""
    out = []
    for row in zip(*columns, strict=True):
        found: set[str] = set()
        for value in row:
            for item in value if isinstance(value, list) else [value]:
                if item is not None and item not in drop:
                    found.add(item)
        out.append(sorted(found, key=str.encode))
    return out


VALUES = st.one_of(st.none(), st.sampled_from(["10.0.0.1", "10.0.0.10", "9.9.9.9", "unknown",
                                                "::1", "Z", "é", ""]), st.text(max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_values_matches_a_per_row_reference(data: st.DataObject) -> None:
    rows = data.draw(st.integers(0, 12))
    width = data.draw(st.integers(1, 5))
    lists = data.draw(st.lists(st.booleans(), min_size=width, max_size=width))
    drop = data.draw(st.sampled_from([(), ("unknown",)]))
    columns: list[list[Any]] = []
    for is_list in lists:
        item = st.one_of(st.none(), st.lists(VALUES, max_size=3)) if is_list else VALUES
        columns.append(data.draw(st.lists(item, min_size=rows, max_size=rows)))
    arrays = [pa.array(c, pa.list_(pa.string()) if is_list else pa.string())
              for c, is_list in zip(columns, lists, strict=True)]
    assert indicators.any_values(arrays, drop).to_pylist() == _reference(columns, drop)


def test_dictionary_columns_give_the_same_values() -> None:
    plain = [pa.array(["b", None, "a"]), pa.array(["a", "c", None])]
    encoded = [c.dictionary_encode() for c in plain]
    assert indicators.any_values(encoded).to_pylist() == [["a", "b"], ["c"], ["a"]]
    assert indicators.any_values(plain).to_pylist() == [["a", "b"], ["c"], ["a"]]


def test_flow_log_text_fills_every_vpcflow_indicator(tmp_path: Path) -> None:
    path = tmp_path / "flows.log"
    path.write_text("\n".join([HEADER, *LINES]) + "\n")
    rows, _ = read_rows([path])
    assert _indicators(rows) == EXPECTED
    assert rows[1]["account"] == "unknown"  # the field keeps what AWS wrote


def test_flow_log_parquet_fills_every_vpcflow_indicator(tmp_path: Path) -> None:
    text = tmp_path / "flows.log"
    text.write_text("\n".join([HEADER, *LINES]) + "\n")
    names = [n.replace("-", "_") for n in HEADER.split()]
    values = [[None if v == "-" else v for v in line.split()] for line in LINES]
    table = pa.table({n: [row[i] for row in values] for i, n in enumerate(names)})
    table = table.set_column(names.index("version"), "version",
                             table.column("version").cast(pa.int32()))
    pq.write_table(table, tmp_path / "flows.parquet")
    rows, reader = read_rows([tmp_path / "flows.parquet"])
    assert reader.stats.totals()["rejected"] == 0
    assert _indicators(rows) == EXPECTED


def test_panther_json_vpcflow_and_other_log_types(tmp_path: Path) -> None:
    lines = [
        {"p_log_type": "AWS.VPCFlow", "account": "123456789012", "instanceId": "i-9",
         "srcAddr": "10.0.0.2", "dstAddr": "10.0.0.1", "start": 1700000000},
        {"p_log_type": "Custom.X", "a": 1, "p_any_aws_account_ids": ["111111111111"]},
        {"p_log_type": "Custom.X", "a": 2},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows, _ = read_rows([path])
    by_type = {(r["p_log_type"], r.get("a")): r for r in rows}
    vpc = by_type["AWS.VPCFlow", None]
    assert _indicators([vpc]) == [{IPS: ["10.0.0.1", "10.0.0.2"], ACCOUNTS: ["123456789012"],
                                   INSTANCES: ["i-9"]}]
    # other log types carry their indicator fields as given; absent ones are empty
    assert by_type["Custom.X", 1][ACCOUNTS] == ["111111111111"]
    assert _indicators([by_type["Custom.X", 2]]) == [dict.fromkeys(indicators.NAMES, [])]


OCSF_EVENTS = [
    {"class_uid": 4001, "time": 1700000000000,
     "cloud": {"account": {"uid": "123456789012"}, "provider": "AWS"},
     "src_endpoint": {"ip": "10.0.0.5", "instance_uid": "i-0src",
                      "intermediate_ips": ["100.64.0.1", "10.0.0.5"]},
     "dst_endpoint": {"ip": "8.8.8.8", "instance_uid": "-"}},
    # OCSF 1.0.0-rc.2: the account is flat
    {"class_uid": 4001, "time": 1700000000000, "cloud": {"account_uid": "210987654321"},
     "src_endpoint": {"ip": "-"}, "dst_endpoint": {"ip": "10.0.0.7", "instance_uid": "i-0dst"}},
    {"class_uid": 4001, "time": 1700000000000, "status_code": "NODATA"},
]
OCSF_EXPECTED = [
    {IPS: ["10.0.0.5", "100.64.0.1", "8.8.8.8"], ACCOUNTS: ["123456789012"],
     INSTANCES: ["i-0src"]},  # "-" is no value
    {IPS: ["10.0.0.7"], ACCOUNTS: ["210987654321"], INSTANCES: ["i-0dst"]},
    dict.fromkeys(indicators.NAMES, []),
]


def test_ocsf_json_lines_fill_every_indicator(tmp_path: Path) -> None:
    path = tmp_path / "ocsf.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in OCSF_EVENTS))
    rows, _ = read_rows([path])
    assert _indicators(rows) == OCSF_EXPECTED


def test_ocsf_parquet_fills_every_indicator(tmp_path: Path) -> None:
    path = tmp_path / "ocsf.parquet"
    pq.write_table(pa.Table.from_pylist(OCSF_EVENTS), path)
    rows, reader = read_rows([path])
    assert reader.stats.totals()["rejected"] == 0
    assert _indicators(rows) == OCSF_EXPECTED


def test_security_lake_sample_accounts(samples: Path) -> None:
    rows, _ = read_rows([samples / "ocsf/vpcflow_ocsf_1.0.0-rc.2.jsonl"])
    assert rows and all(r[ACCOUNTS] == [r["cloud"]["account_uid"]] for r in rows)


# The readers that project (text, Parquet); JSON lines are built whole and then projected, their
# per-line JSON parsing being what costs there.
@pytest.mark.parametrize("name", [
    "s3-text/awsdocs_nat_gateway_custom.log",
    "parquet/synthetic_v8_aws_doc_types.parquet",
    "ocsf/aws/VPC_FLOW/2.0/region=ap-southeast-2/accountId=123456789012/eventDay=20210326/"
    "vpcflow_ocsf_1.1.0.parquet",
])
def test_a_projection_builds_only_the_indicators_it_names(
        samples: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(samples / name)
    full = [r for item in read([path], ReadOptions()) for r in item.batch.to_pylist()]
    calls: list[int] = []
    real = indicators.any_values

    def counted(columns: Any, drop: Any = ()) -> pa.ListArray:
        calls.append(len(columns))
        return real(columns, drop)

    monkeypatch.setattr(indicators, "any_values", counted)
    for item in read([path], ReadOptions(columns=("dstPort", "dst_endpoint"))):
        assert not set(item.batch.schema.names) & STANDARD_NAMES - {"p_log_type"}
    assert calls == []
    projected = [r for item in read([path], ReadOptions(columns=(ACCOUNTS,)))
                 for r in item.batch.to_pylist()]
    assert [r[ACCOUNTS] for r in projected] == [r[ACCOUNTS] for r in full]
    assert all(IPS not in r and INSTANCES not in r for r in projected)
