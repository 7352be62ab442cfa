"""The reader's public data types: options, batches, per-file statistics and rejections."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from flowwarden.logs.limits import DEFAULT_MAX_LINE

MAX_REJECTIONS = 100
MAX_LINE_RUNS = 100_000  # a since/until window that cuts a file into more runs stops the map


@dataclass(frozen=True)
class ReadOptions:
    """How to read inputs: overrides, time and key pruning, batch size.

    ``log_type`` forces the log type (else it is detected from content); ``format`` gives the
    field order of headerless text (a header line, when present, wins). ``since``/``until``
    (naive means UTC) prune keys by their date folders or file-name stamp, then keep records
    with ``since <= p_event_time <= until`` (records without an event time are kept).
    ``accounts``/``regions`` prune keys whose layout names another account or region.
    ``batch_size`` caps the rows per batch; ``sizing``, when given, is asked for the size of
    each next batch of a projected Parquet read as it goes (at most ``batch_size``: the scan
    loop grows its batches while few rows match). ``max_line_bytes`` bounds one line of text
    (or one CloudWatch payload): a longer one is one rejection, and its bytes are skipped
    unread.

    ``columns`` (Panther column names; None reads everything) asks for a projected read: batches
    hold only these columns and ``p_log_type``, in the order a full read gives them, and a name
    a full read of that input would not have is left out. ``p_`` columns are computed when
    named. String columns may then arrive dictionary-encoded. Every record is still read and
    checked, so statistics, rejections and the records yielded are exactly a full read's;
    ``LogBatch.full_rows`` gives the complete records of chosen rows.
    """

    log_type: str | None = None
    format: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    batch_size: int = 65536
    sizing: Callable[[], int] | None = field(default=None, compare=False)
    columns: tuple[str, ...] | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE


DEFAULT_OPTIONS = ReadOptions()


@dataclass(frozen=True)
class Rejection:
    """One input record that could not be parsed, with its 1-based line (or record) number."""

    source: str
    line: int | None
    reason: str


# Complete rows (every column) at the given positions of a projected batch.
RowLoader = Callable[[pa.Array], pa.RecordBatch]


@dataclass
class LogBatch:
    """Arrow rows of one log type from one source.

    After a projected read (``ReadOptions.columns``) ``batch`` holds only the asked-for columns
    and ``complete`` loads whole rows; it works only while this batch is the reader's current
    one (before the next batch is asked for).
    """

    log_type: str
    source: str
    batch: pa.RecordBatch
    complete: RowLoader | None = field(default=None, repr=False, compare=False)
    # Complete rows at positions of ``batch`` that can still be loaded after the reader moved
    # on (until the scan ends), holding nothing of the batch: None where the input cannot be
    # read again by position (a stream, an object store, a text file).
    late: RowLoader | None = field(default=None, repr=False, compare=False)

    def full_rows(self, positions: Any) -> pa.RecordBatch:
        """The complete records at ``positions`` (row indices of ``batch``), as a full read
        gives them, in the order asked.

        >>> item = LogBatch("AWS.VPCFlow", "-", pa.record_batch({"dstPort": [22, 53]}))
        >>> item.full_rows([1]).to_pylist()
        [{'dstPort': 53}]
        """
        indices = pa.array(positions, type=pa.int64())
        if self.complete is None:
            return self.batch.take(indices)
        return self.complete(indices)


@dataclass
class FileStats:
    """Counts for one input: ``read == parsed + rejected`` always holds.

    ``filtered`` counts parsed records dropped by the since/until window (they are in ``parsed``).
    Only the first ``MAX_REJECTIONS`` rejections are kept; all are counted.
    """

    source: str
    log_type: str | None = None
    read: int = 0
    parsed: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    filtered: int = 0
    # What identifies the input's content besides its name: size and ETag or mtime
    # ("size:etag"), so that a report can tell one input read twice from two inputs.
    fingerprint: str | None = None
    # Where the records the reader yielded came from: runs of (first position, its line,
    # length) in which consecutive positions are consecutive lines. ``numbered_by`` says what
    # the numbers are: text lines, or (inputs without lines: Parquet, CloudWatch payloads) the
    # 1-based number of the record among those the input's format produced.
    line_runs: list[tuple[int, int, int]] = field(default_factory=list, repr=False,
                                                  compare=False)
    numbered_by: str = field(default="line", compare=False)

    def note_lines(self, position: int, lines: pa.Array) -> None:
        """Record that the records yielded from ``position`` on came from ``lines`` (1-based).

        >>> stats = FileStats("f.log")
        >>> stats.note_lines(0, pa.array([2, 3, 5]))
        >>> stats.note_lines(3, pa.array([6, 7]))
        >>> stats.note_run(5, 8, 4)
        >>> stats.line_runs, stats.line_at(2), stats.line_at(4), stats.line_at(8), stats.line_at(9)
        ([(0, 2, 2), (2, 5, 7)], 5, 7, 11, None)
        """
        values = np.asarray(lines.to_numpy(zero_copy_only=False), dtype=np.int64)
        if not len(values):
            return
        starts = [0, *(np.flatnonzero(np.diff(values) != 1) + 1).tolist()]
        for start, end in zip(starts, [*starts[1:], len(values)], strict=True):
            self.note_run(position + start, int(values[start]), end - start)

    def note_run(self, first: int, line: int, length: int) -> None:
        """Record that the ``length`` records yielded from ``first`` on came from consecutive
        lines from ``line`` on (records numbered by their order need no array)."""
        if length <= 0 or len(self.line_runs) >= MAX_LINE_RUNS:
            return  # past the cap, later records are named by their position instead
        if self.line_runs:
            at, was, count = self.line_runs[-1]
            if at + count == first and was + count == line:
                self.line_runs[-1] = (at, was, count + length)
                return
        self.line_runs.append((first, line, length))

    def line_at(self, position: int) -> int | None:
        """The line of the record the reader yielded at ``position`` (0-based), if known."""
        index = bisect_right(self.line_runs, position, key=lambda run: run[0]) - 1
        if index < 0:
            return None
        first, line, length = self.line_runs[index]
        return line + position - first if position < first + length else None

    def reject(self, line: int | None, reason: str) -> None:
        """Count one rejected record, keeping its details while under the cap."""
        self.read += 1
        self.rejected += 1
        if len(self.rejections) < MAX_REJECTIONS:
            self.rejections.append(Rejection(self.source, line, reason))

    def reject_lines(self, lines: list[int], reason: str) -> None:
        """Count one rejection per line of ``lines``, all for the same ``reason``."""
        for line in lines[:max(MAX_REJECTIONS - len(self.rejections), 0)]:
            self.rejections.append(Rejection(self.source, line, reason))
        self.read += len(lines)
        self.rejected += len(lines)

    def reject_run(self, line: int, count: int, reason: str) -> None:
        """Count ``count`` rejections of consecutive records from ``line`` on, kept as one."""
        self.read += count
        self.rejected += count
        if len(self.rejections) < MAX_REJECTIONS:
            self.rejections.append(Rejection(self.source, line, reason))

    def accept(self, count: int) -> None:
        """Count ``count`` records parsed."""
        self.read += count
        self.parsed += count

    def add(self, other: FileStats) -> None:
        """Add the counts and kept rejections of ``other`` (later records of the same input)."""
        self.read += other.read
        self.parsed += other.parsed
        self.rejected += other.rejected
        self.filtered += other.filtered
        room = MAX_REJECTIONS - len(self.rejections)
        self.rejections.extend(other.rejections[:max(room, 0)])

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict of these counts and the kept rejections."""
        return {
            "source": self.source,
            "log_type": self.log_type,
            "read": self.read,
            "parsed": self.parsed,
            "rejected": self.rejected,
            "filtered": self.filtered,
            "fingerprint": self.fingerprint,
            "rejections": [{"line": r.line, "reason": r.reason} for r in self.rejections],
        }


@dataclass
class ScanStats:
    """Statistics for every input of one read, keyed by source."""

    files: dict[str, FileStats] = field(default_factory=dict)

    def file(self, source: str) -> FileStats:
        """The stats for ``source``, created on first use."""
        if source not in self.files:
            self.files[source] = FileStats(source)
        return self.files[source]

    def totals(self) -> dict[str, int]:
        """Sums over all files."""
        keys = ("read", "parsed", "rejected", "filtered")
        out = {k: sum(getattr(f, k) for f in self.files.values()) for k in keys}
        out["files"] = len(self.files)
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict: totals and per-file stats."""
        return {"totals": self.totals(), "files": [f.to_json() for f in self.files.values()]}


@dataclass(frozen=True)
class InputObject:
    """One input file or object, with identity for checkpoints (``etag_or_mtime``)."""

    url: str
    size: int | None
    etag_or_mtime: str | None
