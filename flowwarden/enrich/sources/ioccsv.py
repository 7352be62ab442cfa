"""IOC lists as CSV: a header row, an indicator column of addresses or CIDRs, any other columns.

Rows are keyed by the indicator's network (longest prefix wins): the indicator column holds
its canonical text (a host as its address, a network in CIDR), ``confidence`` (if the file has
the column) is an integer from 0 to 100 (``low``/``medium``/``high`` read as STIX's 15/50/85),
every other column is text, an empty cell null. Lines starting with ``#`` are comments. The
indicator column is the ``column`` option, or the first of ``INDICATOR_COLUMNS`` in the header.
A network listed twice keeps its most confident row (the first among equals).

Feeds run to hundreds of thousands of lines, so the file is read by Arrow's CSV reader and
checked column by column; Python sees only the lines that need a closer look.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from flowwarden.enrich.sources.files import option_text, read_text
from flowwarden.enrich.sources.indicators import parse_confidence
from flowwarden.enrich.sources.notation import network_keys
from flowwarden.enrich.sources.problems import LookupSourceError, Problems
from flowwarden.enrich.sources.rowtable import SourceLookup, SourceTable
from flowwarden.errors import Location

DEFAULT_NAME = "ioc_list"
CONFIDENCE = "confidence"
INDICATOR_COLUMNS = ("indicator", "ip", "ip_address", "ipaddress", "address", "cidr", "network",
                     "value", "ioc")
LINE, RANK = "__flowwarden_line", "__flowwarden_rank"  # working columns, dropped at the end


def load(path: str, options: Mapping[str, Any]) -> SourceLookup:
    """The ``ioc-csv`` kind: ``path`` is a CSV file with a header row."""
    column = options.get("column")
    if column is not None:
        column = option_text(options, "column", "")
    return read_table(path, option_text(options, "name", DEFAULT_NAME), column).lookup()


def read_table(path: str, name: str, column: str | None = None) -> SourceTable:
    problems = Problems(path)
    numbers, lines = _numbered(read_text(path))
    if not lines:
        key = column or INDICATOR_COLUMNS[0]
        return SourceTable(name, pa.schema([(key, pa.string())]).empty_table(), key, problems)
    header_line = int(numbers[0])
    header = _header(path, header_line, lines[0])
    key = _indicator_column(path, header_line, header, column)
    confidence = next((cell for cell in header if cell.lower() == CONFIDENCE), None)
    found: list[tuple[int, str]] = []  # (line, problem), reported in the file's order
    cells = _cells(path, numbers, lines, header, found)
    lines_of_rows = cells.column(LINE).to_numpy()
    columns = {cell: _text(cells.column(cell)) for cell in header}
    indicators, keys = columns[key], network_keys(columns[key])
    for position in np.flatnonzero(_nulls(keys)).tolist():
        shown = indicators[position].as_py()
        found.append((int(lines_of_rows[position]), f"{key} is empty" if shown is None
                      else f"{key} {shown!r} is not an address or CIDR"))
    columns[key] = keys
    if confidence is not None:
        columns[confidence] = _confidences(columns[confidence], lines_of_rows, found)
    columns[LINE] = cells.column(LINE).combine_chunks()
    for line, message in sorted(found):
        problems.add(message, line)
    table = pa.table(columns).filter(keys.is_valid())
    return SourceTable(name, _most_confident(table, key, confidence), key, problems)


def _numbered(text: str) -> tuple[np.ndarray, list[str]]:
    """The file's lines that are not blank or comments, and their line numbers.

    Feeds run to hundreds of thousands of lines: only lines starting with ``#`` or white space
    (or empty) get a closer look.

    >>> numbers, lines = _numbered("a,b\\n\\n# note\\n  # indented\\n 1,2\\n3,4\\n")
    >>> numbers.tolist(), lines
    ([1, 5, 6], ['a,b', ' 1,2', '3,4'])
    """
    lines = text.splitlines()
    firsts = pc.utf8_slice_codeunits(pa.array(lines, pa.string()), 0, 1)
    doubtful = [c for c in pc.unique(firsts).to_pylist() if c in ("", "#") or c.isspace()]
    numbers = np.arange(1, len(lines) + 1, dtype=np.int64)
    if not doubtful:
        return numbers, lines
    dropped = [position for position in np.flatnonzero(np.asarray(pc.is_in(
        firsts, value_set=pa.array(doubtful, pa.string())).to_numpy(zero_copy_only=False),
        dtype=bool)).tolist() if _comment_or_blank(lines[position])]
    keep = np.ones(len(lines), dtype=bool)
    keep[dropped] = False
    return numbers[keep], [line for line, kept in zip(lines, keep.tolist(), strict=True) if kept]


def _comment_or_blank(line: str) -> bool:
    stripped = line.lstrip()
    return not stripped or stripped.startswith("#")


def _header(path: str, line: int, text: str) -> list[str]:
    try:
        header = [cell.strip() for cell in next(csv.reader([text], strict=True))]
    except csv.Error as exc:
        raise LookupSourceError(f"the header is not CSV: {exc}", Location(path, line)) from None
    if any(not cell for cell in header):
        raise LookupSourceError("the header has an empty column name", Location(path, line))
    repeated = sorted({cell for cell in header if header.count(cell) > 1})
    if repeated:
        raise LookupSourceError(f"the header repeats {', '.join(repeated)}", Location(path, line))
    return header


def _indicator_column(path: str, line: int, header: list[str], column: str | None) -> str:
    if column is not None:
        if column not in header:
            raise LookupSourceError(f"no column {column!r} in the header {header}",
                                    Location(path, line))
        return column
    lowered = {cell.lower(): cell for cell in header}
    for candidate in INDICATOR_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    raise LookupSourceError(
        f"no indicator column in the header {header}: name one with the 'column' option "
        f"or call it one of {', '.join(INDICATOR_COLUMNS)}", Location(path, line))


def _cells(path: str, numbers: np.ndarray, lines: list[str], header: list[str],
           found: list[tuple[int, str]]) -> pa.Table:
    """Every data line's cells as text, and its line number; a line of the wrong width is
    counted and skipped."""
    skipped: list[int] = []

    def bad_width(row: Any) -> str:
        line = int(numbers[row.number])  # row numbers count the data lines from 1
        found.append((line, f"{row.actual_columns} fields where the header has "
                            f"{row.expected_columns}"))
        skipped.append(row.number)
        return "skip"

    types = {cell: pa.string() for cell in header}
    if len(lines) == 1:
        cells = pa.schema(types).empty_table()
    else:
        data = "\n".join(lines[1:]).encode("utf-8")
        try:
            cells = pa_csv.read_csv(
                io.BytesIO(data),
                read_options=pa_csv.ReadOptions(column_names=header, use_threads=False),
                parse_options=pa_csv.ParseOptions(invalid_row_handler=bad_width),
                convert_options=pa_csv.ConvertOptions(column_types=types,
                                                      strings_can_be_null=False))
        except pa.ArrowInvalid as exc:
            raise LookupSourceError(f"not CSV: {exc}", Location(path)) from None
    kept = np.ones(len(numbers), dtype=bool)
    kept[0] = False
    kept[skipped] = False
    return cells.append_column(LINE, pa.array(numbers[kept], pa.int64()))


def _text(values: pa.ChunkedArray) -> pa.Array:
    """Cells trimmed, an empty one null."""
    trimmed = pc.utf8_trim_whitespace(values.combine_chunks())
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _nulls(values: pa.Array) -> np.ndarray:
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _confidences(values: pa.Array, lines: np.ndarray, found: list[tuple[int, str]]) -> pa.Array:
    """Each distinct cell parsed once, then mapped back to the rows holding it."""
    distinct = pc.unique(values)
    texts = distinct.to_pylist()
    parsed = [parse_confidence(text) for text in texts]
    reasons = {text: reason for text, (_, reason) in zip(texts, parsed, strict=True) if reason}
    if reasons:
        bad = pc.is_in(values, value_set=pa.array(list(reasons), pa.string()))
        for position in np.flatnonzero(pc.fill_null(bad, False).to_numpy(zero_copy_only=False)).tolist():
            found.append((int(lines[position]), reasons[values[position].as_py()]))
    numbers = pa.array([number for number, _ in parsed], pa.int64())
    return numbers.take(pc.index_in(values, value_set=distinct))


def _most_confident(table: pa.Table, key: str, confidence: str | None) -> pa.Table:
    """One row per key, the most confident (the first among equals), in the file's order."""
    if pc.count_distinct(table.column(key)).as_py() == len(table):  # the usual feed: as it is
        return table.drop_columns([LINE])
    rank = pc.fill_null(table.column(confidence), -1) if confidence else \
        pa.array(np.zeros(len(table), dtype=np.int64))
    ordered = table.append_column(RANK, rank).sort_by(
        [(key, "ascending"), (RANK, "descending"), (LINE, "ascending")])
    keys = ordered.column(key).to_numpy(zero_copy_only=False)
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    kept = ordered.filter(pa.array(first)).sort_by(LINE)
    return kept.drop_columns([RANK, LINE])
