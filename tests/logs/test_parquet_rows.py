"""Rows by position through DuckDB (``flowwarden.logs.parquet_rows``): exactly pyarrow's rows,
or no answer at all."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowwarden.errors import LogFormatError
from flowwarden.logs.parquet import RowRanges, complete_rows
from flowwarden.logs.parquet_rows import LateRows, PositionReader

ROWS = 1000


def _table() -> pa.Table:
    rng = np.random.default_rng(7)
    numbers = rng.integers(-2**40, 2**40, ROWS)
    text = [None if i % 7 == 0 else f"v{i}-ü\u2028\"" for i in range(ROWS)]
    return pa.table({
        "i8": pa.array(numbers % 100, pa.int8()),
        "i32": pa.array(numbers % 2**20, pa.int32()),
        "u32": pa.array(np.abs(numbers) % 2**32, pa.uint32()),
        "i64": pa.array([None if i % 11 == 0 else int(n) for i, n in enumerate(numbers)],
                        pa.int64()),
        "f64": pa.array(rng.normal(size=ROWS)),
        "f32": pa.array(rng.normal(size=ROWS), pa.float32()),
        "flag": pa.array([i % 3 == 0 for i in range(ROWS)]),
        "text": pa.array(text, pa.string()),
        "region": pa.array([["us-east-1", "eu-west-1", None][i % 3] for i in range(ROWS)]),
    })


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rows") / "flat.parquet"
    pq.write_table(_table(), path, row_group_size=128)
    return path


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(0, ROWS - 1), min_size=1, max_size=200))
def test_rows_by_position_are_pyarrows_rows(flat, wanted) -> None:
    file = pq.ParquetFile(flat, read_dictionary=["region"])
    columns = file.schema_arrow.names
    reader = PositionReader.of(str(flat), file.schema_arrow, columns)
    assert reader is not None
    at = np.array(sorted(wanted), dtype=np.int64)
    found = reader.rows(at)
    expected = file.read(columns=columns).take(pa.array(at))
    assert found is not None and found.schema == expected.schema
    for name in columns:  # a dictionary may hold other entries: its values are the same
        got, want = found.column(name), expected.column(name)
        if pa.types.is_dictionary(want.type):
            got, want = got.cast(want.type.value_type), want.cast(want.type.value_type)
        assert got.equals(want), name


def test_complete_rows_take_positions_in_any_order_and_repeated(flat) -> None:
    file = pq.ParquetFile(flat)
    raw = file.read(columns=["i8"]).slice(300, 500).to_batches()[0]  # file rows 300-799
    positions = [499, 3, 3, 250, 0]
    ranges = RowRanges(file, ["text", "i64"], batch_size=64, source=str(flat))
    assert ranges.positions is not None
    rows = complete_rows(raw, 300, pa.array(positions), ["i8", "text", "i64"], ranges)
    assert rows.to_pylist() == _table().select(["i8", "text", "i64"]).take(
        pa.array([300 + p for p in positions])).to_pylist()


def test_without_a_local_plain_file_there_is_no_reader(tmp_path, flat) -> None:
    schema = pq.ParquetFile(flat).schema_arrow
    assert PositionReader.of("s3://bucket/flat.parquet", schema, ["i8"]) is None
    assert PositionReader.of(str(flat), schema, []) is None
    odd = {"when": pa.array([0], pa.timestamp("us", "UTC")), "raw": pa.array([b"x"]),
           "items": pa.array([[1]]), "file_row_number": pa.array([1]),
           "Name": pa.array([1]), "name": pa.array([2])}
    for columns in (["when"], ["raw"], ["items"], ["file_row_number"], ["Name"]):
        path = tmp_path / f"{columns[0]}.parquet"
        table = pa.table({n: odd[n] for n in (["Name", "name"] if columns == ["Name"] else columns)})
        pq.write_table(table, path)
        assert PositionReader.of(str(path), table.schema, columns) is None, columns
    in_memory = io.BytesIO()
    pq.write_table(_table(), in_memory)
    assert RowRanges(pq.ParquetFile(in_memory), ["i8"], 64, "mem").positions is None


def test_a_failed_query_hands_the_rows_back_to_pyarrow(tmp_path) -> None:
    path = tmp_path / "gone.parquet"
    pq.write_table(_table(), path, row_group_size=128)
    with open(path, "rb") as handle:  # an open handle outlives the name
        file = pq.ParquetFile(handle)
        ranges = RowRanges(file, ["text"], batch_size=64, source=str(path))
        raw = file.read(columns=["i8"]).to_batches()[0]
        os.remove(path)  # DuckDB opens the file by name: its query fails
        rows = complete_rows(raw, 0, pa.array([5, 900]), ["i8", "text"], ranges)
    assert rows.column("text").to_pylist() == ["v5-ü\u2028\"", "v900-ü\u2028\""]
    assert ranges.positions is not None and ranges.positions.failed
    assert ranges.at(np.array([1])) is None  # not asked again


def test_bytes_duckdb_will_not_decode_are_read_as_pyarrow_reads_them(tmp_path) -> None:
    # Invalid UTF-8 in a string column: DuckDB refuses it, pyarrow hands the bytes on (what the
    # scan then does with them is the projected read's, as before).
    path = tmp_path / "bad.parquet"
    schema = pa.schema([("i", pa.int64()), ("s", pa.string())])
    pq.write_table(pa.table({"i": [1, 2], "s": ["ok", "zz"]}, schema=schema), path,
                   compression="none", use_dictionary=False)
    path.write_bytes(path.read_bytes().replace(b"zz", b"\xff\xfe"))
    file = pq.ParquetFile(path)
    ranges = RowRanges(file, ["s"], batch_size=64, source=str(path))
    raw = file.read(columns=["i"]).to_batches()[0]
    rows = complete_rows(raw, 0, pa.array([1]), ["i", "s"], ranges)
    assert rows.column("s").equals(file.read(columns=["s"]).column("s").chunk(0).slice(1))
    assert ranges.positions is not None and ranges.positions.failed


def test_late_rows_are_the_files_rows_in_the_order_asked(flat) -> None:
    file = pq.ParquetFile(flat)
    late = LateRows.of(str(flat), file.schema_arrow, ["text", "i64", "region"])
    assert late is not None
    at = np.array([999, 3, 3, 500, 0, 128], dtype=np.int64)
    expected = _table().select(["text", "i64", "region"]).take(pa.array(at))
    assert late.rows(at).to_pylist() == expected.to_pylist()
    assert late.rows(np.array([], dtype=np.int64)).num_rows == 0


def test_late_rows_fall_back_to_pyarrow_where_duckdb_will_not_decode(tmp_path) -> None:
    path = tmp_path / "bad.parquet"
    schema = pa.schema([("i", pa.int64()), ("s", pa.string())])
    pq.write_table(pa.table({"i": [1, 2, 3], "s": ["ok", "zz", "no"]}, schema=schema), path,
                   compression="none", use_dictionary=False, row_group_size=2)
    path.write_bytes(path.read_bytes().replace(b"zz", b"\xff\xfe"))
    late = LateRows.of(str(path), pq.ParquetFile(path).schema_arrow, ["i", "s"])
    assert late is not None
    found = late.rows(np.array([2, 1], dtype=np.int64))
    whole = pq.read_table(path)
    assert found.column("i").to_pylist() == [3, 2]
    assert found.column("s").equals(whole.column("s").take(pa.array([2, 1])))


def test_late_rows_of_a_file_changed_since_are_an_error(tmp_path) -> None:
    path = tmp_path / "changing.parquet"
    pq.write_table(_table(), path, row_group_size=128)
    late = LateRows.of(str(path), pq.ParquetFile(path).schema_arrow, ["text"])
    assert late is not None
    pq.write_table(_table().slice(0, 10), path)  # rewritten while the scan ran
    with pytest.raises(LogFormatError, match="changed while it was scanned"):
        late.rows(np.array([1], dtype=np.int64))


def test_late_rows_of_a_file_removed_since_are_an_error(tmp_path) -> None:
    path = tmp_path / "gone.parquet"
    pq.write_table(_table(), path, row_group_size=128)
    late = LateRows.of(str(path), pq.ParquetFile(path).schema_arrow, ["text"])
    assert late is not None
    os.remove(path)
    with pytest.raises(LogFormatError, match="cannot be read again.*No such file"):
        late.rows(np.array([1], dtype=np.int64))


def test_there_are_late_rows_only_of_a_local_file(flat) -> None:
    schema = pq.ParquetFile(flat).schema_arrow
    assert LateRows.of("s3://bucket/flat.parquet", schema, ["i8"]) is None
    assert LateRows.of("-", schema, ["i8"]) is None


def test_late_rows_of_columns_duckdb_does_not_read_are_pyarrows(tmp_path) -> None:
    # nested columns (OCSF's endpoints) and timestamps: read by pyarrow, a row group at a time
    path = tmp_path / "nested.parquet"
    table = pa.table({
        "when": pa.array(range(0, 50), pa.timestamp("us", "UTC")),
        "endpoint": pa.array([{"ip": f"10.0.0.{i}", "port": i} for i in range(50)]),
        "region": pa.array([["us-east-1", None][i % 2] for i in range(50)])})
    pq.write_table(table, path, row_group_size=8)
    file = pq.ParquetFile(path, read_dictionary=["region"])
    late = LateRows.of(str(path), file.schema_arrow, ["endpoint", "when", "region"])
    assert late is not None
    found = late.rows(np.array([41, 2, 41, 17], dtype=np.int64))
    assert found.schema == pa.schema([file.schema_arrow.field(n)
                                      for n in ("endpoint", "when", "region")])
    assert found.to_pylist() == table.select(["endpoint", "when", "region"]).take(
        pa.array([41, 2, 41, 17])).to_pylist()
