"""Shared helpers for the log reader tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowwarden.logs import LogReader, ReadOptions, read

# The shared folder sits beside the repository checkout (CI copies it there too).
SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


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
