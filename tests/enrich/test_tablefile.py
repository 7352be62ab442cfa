from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowwarden.enrich.tablefile import LookupTableError, read_table_file, table_format
from flowwarden.errors import Location


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_columns_get_inferred_types_and_empty_cells_are_null(tmp_path) -> None:
    path = write(tmp_path, "t.csv", "ip,confidence,note,active\n192.0.2.1,90,\"a, b\",true\n"
                                    "192.0.2.2,,,false\n")
    table = read_table_file(path)
    assert table.schema.field("confidence").type == pa.int64()
    assert table.schema.field("active").type == pa.bool_()
    assert table.to_pylist() == [
        {"ip": "192.0.2.1", "confidence": 90, "note": "a, b", "active": True},
        {"ip": "192.0.2.2", "confidence": None, "note": None, "active": False}]


def test_csv_text_that_would_change_as_a_number_or_a_date_stays_text(tmp_path) -> None:
    path = write(tmp_path, "t.csv", "account,country,seen,n\n012345678901,NA,2024-01-02,7\n"
                                    "123456789012,null,2024-01-03,8\n")
    table = read_table_file(path)
    assert [table.schema.field(n).type for n in table.column_names] == [
        pa.string(), pa.string(), pa.string(), pa.int64()]
    assert table.column("account").to_pylist() == ["012345678901", "123456789012"]
    assert table.column("country").to_pylist() == ["NA", "null"]


def test_json_lines_keep_nested_objects_and_gzip_is_read(tmp_path) -> None:
    text = '{"ip": "192.0.2.1", "meta": {"asn": 64500}}\n\n{"ip": "192.0.2.2"}\n'
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert read_table_file(str(path)).to_pylist() == [
        {"ip": "192.0.2.1", "meta": {"asn": 64500}}, {"ip": "192.0.2.2", "meta": None}]


def test_parquet_is_read(tmp_path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"cidr": ["10.0.0.0/8"], "n": [1]}), path)
    assert read_table_file(str(path)).to_pylist() == [{"cidr": "10.0.0.0/8", "n": 1}]


@pytest.mark.parametrize(("name", "text", "message", "line"), [
    ("t.csv", "ip,note\n192.0.2.1,a\n192.0.2.2,b,c\n", "CSV: 3 fields where the header has 2", 3),
    ("t.csv", "ip,ip\n1,2\n", "names a column twice", 1),
    ("t.csv", "", "no header line", 1),
    ("t.jsonl", '{"ip": "a"}\n{"ip": \n', "JSON: Expecting value", 2),
    ("t.jsonl", '{"ip": "a"}\n[1]\n', "each line must be an object", 2),
    ("t.jsonl", '{"n": 1}\n{"n": 2}\n{"n": "three"}\n', "column 'n' holds values of different", 3),
], ids=["csv-width", "csv-header", "csv-empty", "json-syntax", "json-array", "json-types"])
def test_bad_rows_are_errors_with_file_and_line(tmp_path, name: str, text: str, message: str,
                                                line: int) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(LookupTableError) as caught:
        read_table_file(path)
    assert message in caught.value.message
    assert caught.value.location is not None
    assert (caught.value.location.path, caught.value.location.line) == (path, line)


def test_missing_files_unknown_formats_and_bad_bytes_are_errors(tmp_path) -> None:
    with pytest.raises(LookupTableError, match="cannot read the table file"):
        read_table_file(str(tmp_path / "none.csv"))
    with pytest.raises(LookupTableError, match="cannot tell the table's format"):
        table_format("table.xlsx")
    (tmp_path / "bad.csv").write_bytes(b"ip\n\xff\n")
    with pytest.raises(LookupTableError) as caught:
        read_table_file(str(tmp_path / "bad.csv"))
    assert caught.value.location == Location(str(tmp_path / "bad.csv"), 2)
    (tmp_path / "bad.parquet").write_bytes(b"nope")
    with pytest.raises(LookupTableError, match="not a readable Parquet file"):
        read_table_file(str(tmp_path / "bad.parquet"))
