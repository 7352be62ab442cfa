"""Projected reads (``ReadOptions.columns``): the same records, statistics and rejections as a
full read, only fewer columns built; ``LogBatch.full_rows`` gives the complete records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowwarden.logs import ReadOptions, read
from flowwarden.logs import parquet as parquet_module
from flowwarden.logs.common import Names
from flowwarden.logs.fields import BY_PANTHER
from flowwarden.logs.formats.vpcflow_parquet import FAILS, INERT, REJECTS, conversion
from flowwarden.logs.parquet import RowRanges
from tests.flowgen.generate import generate_flows, write_parquet, write_text
from tests.logs.helpers import corrupt_column_chunk, parquet_with_text_numbers

COLUMN_SETS = {
    "rule-columns": ("srcAddr", "dstAddr", "dstPort", "dst_endpoint", "src_endpoint"),
    "one": ("status",),
    "nothing": (),
    "computed": ("p_event_time", "p_any_ip_addresses", "action"),
    "indicators": ("p_any_aws_account_ids", "p_any_aws_instance_ids", "dstPort"),
    "ocsf": ("dst_endpoint", "src_endpoint", "action", "status_code", "connection_info"),
    "absent": ("noSuchColumn", "pktSrcAwsService"),
    # rules find keys in any case (Panther's event): a projected read keeps those columns
    "other-case": ("dstport", "SRCADDR", "Dst_Endpoint", "p_event_TIME"),
}
SAMPLE_FILES = [
    "parquet/flowlogs_reader_tests_flows.parquet",
    "parquet/synthetic_v8_aws_doc_types.parquet",
    "ocsf/aws/VPC_FLOW/2.0/region=ap-southeast-2/accountId=123456789012/eventDay=20210326/"
    "vpcflow_ocsf_1.1.0.parquet",
    "s3-text/awsdocs_default_v2_examples.log",
    "s3-text/awsdocs_transit_gateway_custom.log",
    "ocsf/vpcflow_ocsf_1.1.0.jsonl",
    "cloudwatch/otel_valid_vpc_flow_cw.json",
]


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "p_parse_time"} for r in rows]


def assert_same_as_full(paths: list[str], columns: tuple[str, ...], **options: Any) -> int:
    """Projected rows are the full rows' chosen columns; complete rows and stats are equal."""
    full = read(paths, ReadOptions(**options))
    full_rows = [row for item in full for row in item.batch.to_pylist()]
    projected = read(paths, ReadOptions(columns=columns, **options))
    rows: list[dict[str, Any]] = []
    complete: list[dict[str, Any]] = []
    for item in projected:
        rows.extend(item.batch.to_pylist())
        backwards = list(range(item.batch.num_rows))[::-1]  # any order, repeated calls
        complete.extend(item.full_rows(backwards).to_pylist()[::-1])
        assert item.full_rows([]).num_rows == 0
    assert projected.stats.to_json() == full.stats.to_json()
    keep = Names(columns)  # p_log_type too only when asked: each item names its log type
    assert _plain(rows) == _plain([{k: v for k, v in r.items() if k in keep} for r in full_rows])
    assert {item.log_type for item in projected} == {r["p_log_type"] for r in full_rows}
    assert _plain(complete) == _plain(full_rows)
    return len(full_rows)


@pytest.mark.parametrize("name", SAMPLE_FILES)
@pytest.mark.parametrize("columns", list(COLUMN_SETS.values()), ids=list(COLUMN_SETS))
def test_samples_read_projected_equal_full(samples: Path, name: str, columns: tuple[str, ...]):
    path = str(samples / name)
    assert assert_same_as_full([path], columns) > 0
    assert_same_as_full([path], columns, batch_size=2)


@pytest.fixture(scope="module")
def bad_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated flows with numbers written as text and bad values in read and unread columns."""
    return parquet_with_text_numbers(
        tmp_path_factory.mktemp("bad") / "bad.parquet", 6000, 5, 1000, spoil_seed=11, spoiled=60,
        bad=["abc", "-", "None", "", "12x", "99999999999999999999"], row_group_size=1500)


@pytest.mark.parametrize("columns", list(COLUMN_SETS.values()), ids=list(COLUMN_SETS))
@pytest.mark.parametrize("batch_size", [700, 65536])
def test_bad_values_are_rejected_as_in_a_full_read(bad_parquet: Path, columns, batch_size):
    assert assert_same_as_full([str(bad_parquet)], columns, batch_size=batch_size) < 6000
    reader = read([str(bad_parquet)], ReadOptions(columns=("srcAddr",)))
    list(reader)
    stats = reader.stats.files[str(bad_parquet)]
    reasons = " ".join(r.reason for r in stats.rejections)
    assert "bytes (bytes)" in reasons and "start (start)" in reasons  # columns not asked for
    assert stats.read == stats.parsed + stats.rejected == 6000


def test_time_window_applies_to_projected_reads(bad_parquet: Path):
    since, until = datetime(2024, 1, 1, 0, 10, tzinfo=UTC), datetime(2024, 1, 1, 0, 40, tzinfo=UTC)
    for columns in (("dstPort",), ("dstPort", "p_event_time")):
        kept = assert_same_as_full([str(bad_parquet)], columns, since=since, until=until,
                                   batch_size=500)
        assert 0 < kept < 5000
    reader = read([str(bad_parquet)], ReadOptions(columns=("dstPort",), since=since))
    assert all(item.batch.schema.names == ["dstPort"] and item.log_type == "AWS.VPCFlow"
               for item in reader)
    asked = read([str(bad_parquet)], ReadOptions(columns=("dstPort", "p_log_type"), since=since))
    assert all(item.batch.schema.names == ["dstPort", "p_log_type"] for item in asked)


def test_text_with_bad_lines_is_projected_exactly(tmp_path: Path):
    path = tmp_path / "flows.log"
    write_text(generate_flows(3000, seed=2, batch_size=1000), str(path), gzip=False)
    lines = path.read_text().splitlines()
    lines[10] = lines[10].replace(" ACCEPT ", " MAYBE ")
    lines[20] += " extra"
    lines[30] = lines[30].replace(" 6 ", " six ", 1)
    path.write_text("\n".join(lines) + "\n")
    assert assert_same_as_full([str(path)], ("dstPort", "srcAddr"), batch_size=512) == 2997


def test_strings_arrive_dictionary_encoded(bad_parquet: Path):
    items = iter(read([str(bad_parquet)], ReadOptions(columns=("srcAddr", "dstPort"))))
    item = next(items)  # complete rows load while the reader is open, at this batch
    assert pa.types.is_dictionary(item.batch.schema.field("srcAddr").type)
    assert item.full_rows([0]).schema.field("srcAddr").type == pa.string()


def test_conversion_kinds_decide_what_phase_one_reads():
    port, account, start = BY_PANTHER["dstPort"], BY_PANTHER["account"], BY_PANTHER["start"]
    assert conversion(pa.uint16(), port) == INERT  # always in 0..65535
    assert conversion(pa.int32(), port) == REJECTS  # may be negative or above 65535
    assert conversion(pa.string(), port) == REJECTS
    assert conversion(pa.uint64(), port) == REJECTS
    assert conversion(pa.float64(), port) == REJECTS  # NaN, inf, 1e30, 22.5
    assert conversion(pa.timestamp("s"), start) == REJECTS  # may be before 1970 or after 9999
    assert conversion(pa.timestamp("ms"), start) == REJECTS
    assert conversion(pa.uint32(), start) == INERT
    assert conversion(pa.dictionary(pa.int32(), pa.string()), account) == INERT
    assert conversion(pa.int64(), account) == INERT
    assert conversion(pa.binary(), account) == FAILS


def test_a_column_arrow_cannot_cast_means_a_full_read_rejecting_rows(tmp_path: Path):
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"srcaddr": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
                             "dstport": [22, 53, 80], "log_status": ["OK", "OK", "OK"],
                             "account_id": pa.array([b"1", b"\xff2", b"3"]),  # not UTF-8
                             "bytes": pa.array([[1], None, None]),  # nested
                             "packets": pa.array([1, 2, 2**63 + 5], pa.uint64())}), path)
    assert conversion(pa.binary(), BY_PANTHER["account"]) == FAILS
    full = read([str(path)])
    rows = [row for item in full for row in item.batch.to_pylist()]
    assert [r["account"] for r in rows] == ["\ufffd2"]  # replaced, as in text input
    reasons = [r["reason"] for r in full.stats.to_json()["files"][0]["rejections"]]
    assert reasons == ['bytes (bytes): cannot read "[1]"',
                       "packets (packets): 9223372036854775813 is out of range "
                       "(0..999999999999999999)"]
    projected = read([str(path)], ReadOptions(columns=("dstPort",)))
    assert [item.batch.num_rows for item in projected] == [1]
    assert projected.stats.to_json() == full.stats.to_json()


def test_row_ranges_skip_row_groups_and_restart(tmp_path: Path, monkeypatch):
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"a": range(100), "b": [f"v{i}" for i in range(100)]}), path,
                   row_group_size=10)
    ranges = RowRanges(pq.ParquetFile(path), ["b"], batch_size=4, source=str(path))
    opened: list[list[int]] = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        opened.append(list(kwargs["row_groups"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(parquet_module.pq.ParquetFile, "iter_batches", spy)
    assert ranges.read(3, 9).column("b").to_pylist() == [f"v{i}" for i in range(3, 9)]
    assert ranges.read(5, 12).column("b").to_pylist() == [f"v{i}" for i in range(5, 12)]
    assert ranges.read(12, 12).num_rows == 0
    assert ranges.read(75, 77).column("b").to_pylist() == ["v75", "v76"]
    assert ranges.read(2, 3).column("b").to_pylist() == ["v2"]  # backwards: a fresh reader
    assert [groups[0] for groups in opened] == [0, 7, 0]


def test_stats_count_only_the_batches_handed_on(bad_parquet: Path):
    """Decoding runs ahead in a thread, but a reader stopped early counts what it yielded."""
    counts = []
    for options in (ReadOptions(batch_size=500), ReadOptions(batch_size=500, columns=("dstPort",))):
        reader = read([str(bad_parquet)], options)
        items = iter(reader)
        for _ in range(3):
            next(items)
        counts.append(reader.stats.to_json())
        del items
    assert counts[0] == counts[1] and 1500 <= counts[0]["totals"]["read"] < 1600


def test_a_corrupt_column_fails_where_a_full_read_fails(tmp_path: Path):
    path = tmp_path / "corrupt.parquet"
    write_parquet(generate_flows(4000, seed=4, batch_size=1000), str(path))
    corrupt_column_chunk(path, "dstport", 2)
    full = read([str(path)], ReadOptions(batch_size=1000))
    assert sum(item.batch.num_rows for item in full) == 2000
    projected = read([str(path)], ReadOptions(batch_size=1000, columns=("dstPort",)))
    assert sum(item.batch.num_rows for item in projected) == 2000
    assert projected.stats.to_json() == full.stats.to_json()
    stats = full.stats.files[str(path)]
    assert (stats.read, stats.parsed, stats.rejected) == (4000, 2000, 2000)  # every row counted
    assert stats.rejections[-1].line == 2001
    assert stats.rejections[-1].reason.startswith("Parquet read failed at row 2,001: ")
    assert stats.rejections[-1].reason.endswith("; rows 2,001-4,000 not read")


def test_normalized_parquet_with_p_columns(tmp_path: Path, bad_parquet: Path, samples: Path):
    from flowwarden.logs.convert import write_normalized

    for source, name in ((bad_parquet, "vpc.parquet"),
                         (samples / "ocsf/vpcflow_ocsf_1.1.0.jsonl", "ocsf.parquet")):
        target = tmp_path / name
        write_normalized(read([str(source)]), "parquet", str(target))
        assert "p_event_time" in pq.ParquetFile(target).schema_arrow.names
        for columns in COLUMN_SETS.values():
            assert_same_as_full([str(target)], columns, batch_size=1000)


EXIT_WHILE_READING = """
import sys
from flowwarden.logs import ReadOptions, read
items = iter(read([sys.argv[1]], ReadOptions(columns=("srcAddr",), batch_size=256)))
next(items)  # the decoding thread is still reading ahead when the interpreter exits
"""


def test_exit_with_a_reader_open_does_not_hang(bad_parquet: Path):
    import subprocess
    import sys

    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", EXIT_WHILE_READING, str(bad_parquet)],
                              timeout=60, capture_output=True)
        assert done.returncode == 0, done.stderr


def test_numbers_proven_in_range_by_statistics_are_left_to_phase_two(tmp_path: Path):
    from flowwarden.logs.formats.vpcflow_parquet import _plan, _unknown

    path = tmp_path / "ports.parquet"
    pq.write_table(pa.table({"srcaddr": ["10.0.0.1", "10.0.0.2"], "dstport": [22, 53],
                             "srcport": [40000, 40001], "log_status": ["OK", "OK"],
                             "bytes": [-5, 10]}), path)
    file = pq.ParquetFile(path)
    keep = frozenset({"dstPort", "p_log_type"})
    plan = _plan(file.schema_arrow, _unknown(file.schema_arrow), keep, file.metadata)
    assert plan is not None and plan.read == ("dstport", "bytes")  # bytes may reject: -5
    assert "srcport" in plan.rest
    blind = _plan(file.schema_arrow, _unknown(file.schema_arrow), keep)
    assert blind is not None and blind.read == ("dstport", "srcport", "bytes")
    full, projected = read([str(path)]), read([str(path)], ReadOptions(columns=tuple(keep)))
    assert [len(list(full)), len(list(projected))] == [1, 1]
    assert full.stats.to_json() == projected.stats.to_json()
    assert full.stats.totals()["rejected"] == 1
