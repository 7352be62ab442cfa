"""Reading a lookup table's data file into Arrow rows: CSV (with a header line), JSON lines or
Parquet, chosen by the file name (``.gz`` allowed for the text forms), local or ``s3://``.

CSV columns of integers, decimals or booleans get those types (as a schema would give them),
others stay text; JSON lines keep their JSON types, nested objects becoming structs. Any problem is a
``LookupTableError`` naming the file and, for text, the line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flowwarden.errors import FlowwardenError, Location
from flowwarden.util.s3 import S3, S3_SCHEME, split_s3

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet"}


class LookupTableError(FlowwardenError):
    """A lookup table's data or definition cannot be used."""


def table_format(path: str) -> str:
    """``csv``, ``jsonl`` or ``parquet``, from the file name.

    >>> table_format("s3://b/luts/asn.csv.gz"), table_format("x.jsonl")
    ('csv', 'jsonl')
    """
    name = path.lower().removesuffix(".gz")
    for suffix, kind in FORMATS.items():
        if name.endswith(suffix):
            return kind
    known = ", ".join(FORMATS)
    raise LookupTableError(f"cannot tell the table's format from its name (known: {known}, "
                           "optionally .gz)", Location(path))


def read_table_file(path: str, s3: S3 | None = None) -> pa.Table:
    """The rows of one table file."""
    data = _read_bytes(path, s3)
    if path.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise LookupTableError(f"not a gzip file: {exc}", Location(path)) from None
    kind = table_format(path)
    if kind == "parquet":
        try:
            return pq.read_table(io.BytesIO(data))
        except (pa.ArrowException, OSError) as exc:
            raise LookupTableError(f"not a readable Parquet file: {exc}", Location(path)) from None
    text = _text(data, path)
    return _csv_table(text, path) if kind == "csv" else _jsonl_table(text, path)


def _read_bytes(path: str, s3: S3 | None) -> bytes:
    if path.startswith(S3_SCHEME):
        bucket, key = split_s3(path)
        try:
            body = (s3 or S3()).client.get_object(Bucket=bucket, Key=key)["Body"]
            return bytes(body.read())
        except Exception as exc:  # boto3's errors have no common base worth importing here
            raise LookupTableError(f"cannot read the table from S3: {exc}", Location(path)) \
                from None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise LookupTableError(f"cannot read the table file: {exc.strerror}", Location(path)) \
            from None


def _text(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LookupTableError(f"not UTF-8 text: byte 0x{data[exc.start]:02x}",
                               Location(path, line)) from None


def _csv_table(text: str, path: str) -> pa.Table:
    header = _check_csv_rows(text, path)  # pyarrow's own errors do not say which line
    # Only an empty cell is null: "NA" is Namibia and "null" may be a name.
    options = pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()),
                                   strings_can_be_null=True, null_values=[""])
    try:
        table = pacsv.read_csv(io.BytesIO(text.encode("utf-8")), convert_options=options)
    except pa.ArrowException as exc:
        raise LookupTableError(f"CSV: {exc}", Location(path)) from None
    return pa.table({name: _typed(table.column(name)) for name in header})


def _typed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column as integers, else decimals (where each value is written as the number
    writes back: no leading zeros), else booleans where every value is one; dates and the rest stay text, as JSON would give them."""
    for kind in (pa.int64(), pa.float64(), pa.bool_()):
        try:
            typed = column.cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        # an account id such as 012345678901 is a name, not a number: keep what would change
        if kind == pa.bool_() or typed.cast(pa.string()).equals(column):
            return typed
    return column


def _check_csv_rows(text: str, path: str) -> list[str]:
    """Every row as wide as the header, or an error naming the line that is not; the header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(header):
            raise LookupTableError("CSV: no header line naming the columns", Location(path, 1))
        if len(set(header)) != len(header) or not all(header):
            raise LookupTableError("CSV: the header line names a column twice or not at all",
                                   Location(path, 1))
        for row in reader:
            if row and len(row) != len(header):
                raise LookupTableError(f"CSV: {len(row)} fields where the header has "
                                       f"{len(header)}", Location(path, reader.line_num))
    except csv.Error as exc:
        raise LookupTableError(f"CSV: {exc}", Location(path, reader.line_num)) from None
    return header


def _jsonl_rows(text: str, path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LookupTableError(f"JSON: {exc.msg}", Location(path, number, exc.colno)) \
                from None
        if not isinstance(row, dict):
            raise LookupTableError("JSON: each line must be an object", Location(path, number))
        yield number, row


def _jsonl_table(text: str, path: str) -> pa.Table:
    numbered = list(_jsonl_rows(text, path))
    rows = [row for _, row in numbered]
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowException, OverflowError) as exc:
        column, line = _first_conflict(numbered)
        where = Location(path, line) if line else Location(path)
        what = f"column {column!r} holds values of different types" if column else str(exc)
        raise LookupTableError(f"JSON: {what}", where) from None


def _first_conflict(numbered: list[tuple[int, dict[str, Any]]]) -> tuple[str | None, int | None]:
    """The first column, and the line, whose value cannot share a type with the lines before."""
    columns = dict.fromkeys(k for _, row in numbered for k in row)
    for column in columns:
        values = [row.get(column) for _, row in numbered]
        try:
            pa.array(values)
        except (pa.ArrowException, OverflowError):
            for end in range(1, len(values) + 1):
                try:
                    pa.array(values[:end])
                except (pa.ArrowException, OverflowError):
                    return column, numbered[end - 1][0]
    return None, None
