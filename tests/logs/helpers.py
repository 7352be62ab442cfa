"""Shared helpers for the log reader tests."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden.logs import LogReader, ReadOptions, read
from tests.flowgen.generate import generate_flows, write_parquet


def read_rows(paths: list[str | Path], **options: Any) -> tuple[list[dict[str, Any]], LogReader]:
    """All rows read from ``paths`` (as dicts) and the reader, for its stats."""
    reader = read([str(p) for p in paths], ReadOptions(**options))
    rows: list[dict[str, Any]] = []
    for item in reader:
        rows.extend(item.batch.to_pylist())
    return rows, reader


def non_null(row: dict[str, Any]) -> dict[str, Any]:
    """The row without null values and without the parse time (which changes every run)."""
    return {k: v for k, v in row.items() if v is not None and k != "p_parse_time"}


def check_invariant(reader: LogReader) -> None:
    for stats in reader.stats.files.values():
        assert stats.read == stats.parsed + stats.rejected, stats


def without_source(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the columns that depend on where and when they were read."""
    return [
        {k: v for k, v in r.items() if k not in ("p_source_file", "p_parse_time")} for r in rows
    ]


def parquet_with_text_numbers(path: Path, records: int, seed: int, batch_size: int, *,
                              spoil_seed: int, spoiled: int, bad: Sequence[str],
                              row_group_size: int) -> Path:
    """Generated flows with ``dstport``, ``bytes`` and ``start`` written as text, ``spoiled``
    values of each replaced by one of ``bad`` (columns rules read and columns they do not)."""
    clean = path.with_name(f"clean-{path.name}")
    write_parquet(generate_flows(records, seed=seed, batch_size=batch_size), str(clean))
    table = pq.read_table(clean)
    rng = random.Random(spoil_seed)
    for name in ("dstport", "bytes", "start"):
        values = [None if v is None else str(v) for v in table.column(name).to_pylist()]
        for index in rng.sample(range(len(values)), spoiled):
            values[index] = rng.choice(list(bad))
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values))
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def corrupt_column_chunk(path: Path, column: str, row_group: int) -> None:
    """Overwrite 64 bytes in the middle of one column chunk of a Parquet file."""
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(row_group).column(meta.schema.names.index(column))
    data = bytearray(path.read_bytes())
    middle = chunk.data_page_offset + chunk.total_compressed_size // 2
    data[middle:middle + 64] = bytes(range(64))
    path.write_bytes(bytes(data))
