"""The reader: list inputs, detect each one's format from its content (``formats.FORMATS``),
stream its batches."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowwarden.errors import Location, LogFormatError
from flowwarden.logs import formats
from flowwarden.logs.common import (
    Names,
    Numbered,
    Projected,
    kept_rows,
    printable,
    projection,
    window_mask,
)
from flowwarden.logs.formats.base import BatchIter, LogFormat
from flowwarden.logs.model import (
    DEFAULT_OPTIONS,
    FileStats,
    InputObject,
    LogBatch,
    ReadOptions,
    RowLoader,
    ScanStats,
)
from flowwarden.logs.parquet import READ_FAILURES
from flowwarden.logs.sources import S3, STDIN, list_inputs, open_seekable, open_stream
from flowwarden.logs.streams import PARQUET_MAGIC, Opened, open_content
from flowwarden.util.s3 import S3_SCHEME


class LogReader:
    """An iterable of ``LogBatch`` over all inputs; ``stats`` fills in as batches are read.

    Iterating again reads the inputs again and starts the statistics afresh.
    """

    def __init__(self, sources: Sequence[str], options: ReadOptions = DEFAULT_OPTIONS) -> None:
        self.sources = tuple(sources)
        self.options = options
        self.stats = ScanStats()
        self._s3 = S3()

    def projected(self, columns: Sequence[str], batch_size: int | None = None,
                  sizing: Callable[[], int] | None = None) -> LogReader:
        """A reader of the same inputs that builds only ``columns`` (``ReadOptions.columns``),
        optionally in batches of another size (chosen as it goes by ``sizing``, see
        ``ReadOptions``), and fills in this reader's ``stats``."""
        options = replace(self.options, columns=tuple(columns),
                          batch_size=batch_size or self.options.batch_size, sizing=sizing)
        reader = LogReader(self.sources, options)
        reader.stats, reader._s3 = self.stats, self._s3
        return reader

    def inputs(self) -> list[InputObject]:
        """The input objects this reader will read, after key pruning."""
        return list_inputs(self.sources, self.options, self._s3)

    def __iter__(self) -> Iterator[LogBatch]:
        self.stats.files.clear()
        keep = projection(self.options)
        for obj in self.inputs():
            stats = self.stats.file(obj.url)
            if obj.size is not None or obj.etag_or_mtime is not None:
                stats.fingerprint = f"{obj.size}:{obj.etag_or_mtime}"
            position = 0  # records yielded from this input so far
            made = 0  # records its format produced (before since/until)
            for produced in self._read_one(obj, stats):
                lines = produced.lines if isinstance(produced, Numbered) else None
                batch, complete, late = _projected(
                    produced.item if isinstance(produced, Numbered) else produced, keep)
                if not batch.num_rows:
                    continue
                if lines is None:  # no lines: number the records themselves, from 1
                    lines = made + 1
                    stats.numbered_by = "record"
                made += batch.num_rows
                log_type = str(batch.column("p_log_type")[0].as_py())
                stats.log_type = stats.log_type or log_type
                batch, (complete, late), lines = self._window(batch, (complete, late), lines,
                                                              stats)
                if isinstance(lines, int):
                    stats.note_run(position, lines, batch.num_rows)
                else:
                    stats.note_lines(position, lines)
                position += batch.num_rows
                size = max(self.options.batch_size, 1)
                for start in range(0, batch.num_rows, size):
                    piece = batch.slice(start, size)
                    yield LogBatch(log_type, obj.url, piece, _shifted(complete, start),
                                   _shifted(late, start))

    def _window(self, batch: pa.RecordBatch, loaders: tuple[RowLoader | None, RowLoader | None],
                lines: pa.Array | int, stats: FileStats
                ) -> tuple[pa.RecordBatch, tuple[RowLoader | None, RowLoader | None],
                           pa.Array | int]:
        """Apply since/until (to the rows, their loaders and their lines: an array, or the
        first of consecutive ones); a projected batch then drops ``p_event_time`` and
        ``p_log_type`` (which the reader reads for itself) unless asked for."""
        keep = window_mask(batch, self.options)
        if keep is not None:
            positions = pc.indices_nonzero(keep).cast(pa.int64())
            stats.filtered += batch.num_rows - len(positions)
            batch = batch.filter(keep)
            loaders = (_through(loaders[0], keep), _through(loaders[1], keep))
            lines = (pc.add(positions, lines) if isinstance(lines, int)
                     else lines.take(positions))
        columns = self.options.columns
        if columns is not None:
            asked = Names(columns)
            unasked = {n for n in ("p_event_time", "p_log_type") if n not in asked}
            batch = batch.select([n for n in batch.schema.names if n not in unasked])
        return batch, loaders, lines

    def _read_one(self, obj: InputObject, stats: FileStats) -> BatchIter:
        with open_stream(obj, self._s3) as raw:
            raw_head = raw.read(len(PARQUET_MAGIC))
            if raw_head == PARQUET_MAGIC and obj.url == STDIN:
                with tempfile.TemporaryFile() as spool:  # Parquet needs to seek: spool stdin
                    spool.write(raw_head)
                    shutil.copyfileobj(raw, spool)
                    spool.seek(0)
                    yield from self._parquet(obj, stats, spool)
                return
            if raw_head != PARQUET_MAGIC:
                opened = open_content(raw, raw_head)
                if not opened.head.strip():
                    if opened.error is not None:
                        stats.reject(1, f"truncated or corrupt input: {opened.error}")
                    return
                yield from self._text(opened, obj.url, stats)
                return
        with open_seekable(obj, self._s3) as handle:
            yield from self._parquet(obj, stats, handle)

    def _parquet(self, obj: InputObject, stats: FileStats, handle: BinaryIO) -> BatchIter:
        # Pre-buffering keeps every range it read until the file is closed: a read's memory
        # grew with the file (17 MB per 1M flow records). Only over S3, where it saves
        # requests, and an object's ranges are let go when the object is done.
        buffered = obj.url.startswith(S3_SCHEME)
        try:
            file = pq.ParquetFile(handle, pre_buffer=buffered)
        except READ_FAILURES as exc:
            stats.reject(None, f"unreadable Parquet: {exc}")
            return
        found = formats.parquet_format(file.schema_arrow, self.options)
        if found is None:
            names = file.schema_arrow.names[:8]
            self._unrecognised(obj.url, stats, f"Parquet columns {names}")
            return
        _recognised(stats, found)
        try:
            encoded = found.dictionary_columns(file.schema_arrow, self.options)
            if encoded:  # Parquet's dictionary pages hand over the distinct values for free
                file = pq.ParquetFile(handle, metadata=file.metadata, read_dictionary=encoded,
                                      pre_buffer=buffered)
            yield from found.read_parquet(file, obj.url, self.options, stats)
        except READ_FAILURES as exc:
            _unreadable_rows(stats, file.metadata.num_rows, exc)

    def _text(self, opened: Opened, source: str, stats: FileStats) -> BatchIter:
        found = formats.text_format(opened.head, self.options)
        if found is None:
            line = opened.head.split(b"\n", 1)[0]
            self._unrecognised(source, stats, f"first line {printable(line)}")
            return
        _recognised(stats, found)
        yield from found.read_text(opened, source, self.options, stats)

    def _unrecognised(self, source: str, stats: FileStats, what: str) -> None:
        """A forced log type that does not fit is an error; otherwise one rejection."""
        if self.options.log_type is not None:
            raise LogFormatError(
                f"input is not {self.options.log_type} in a supported form ({what})",
                Location(source),
            )
        stats.reject(1, f"not a recognised log format ({what})")


def _recognised(stats: FileStats, found: LogFormat) -> None:
    """Note the log type of a format of one log type, known even if every record is bad."""
    if len(found.log_types) == 1:
        stats.log_type = stats.log_type or found.log_types[0]


def _unreadable_rows(stats: FileStats, rows: int, exc: BaseException) -> None:
    """Count the rows of a Parquet file not read after a read failure (corrupt bytes) as
    rejected, in one entry naming them."""
    first = stats.read + 1
    if first > rows:
        stats.reject(None, f"Parquet read failed after its last row: {exc}")
        return
    stats.reject_run(first, rows - first + 1,
                     f"Parquet read failed at row {first:,}: {exc}; rows {first:,}-{rows:,} "
                     "not read")


def _projected(produced: pa.RecordBatch | Projected, keep: frozenset[str] | None
               ) -> tuple[pa.RecordBatch, RowLoader | None, RowLoader | None]:
    """(batch, loader of complete rows, late loader of them): formats without pushdown are
    projected here (their complete rows are the batch's, which a late loader would hold)."""
    if isinstance(produced, Projected):
        return produced.batch, produced.complete, produced.late
    if keep is None:
        return produced, None, None
    names = [n for n in produced.schema.names if n in keep]
    return produced.select(names), produced.take, None


def _through(loader: RowLoader | None, keep: pa.Array) -> RowLoader | None:
    """A loader for the rows ``keep`` keeps of what ``loader`` loads. It holds the mask (a bit a
    row), not the kept rows' positions: a late loader outlives its batch."""
    if loader is None:
        return None
    return lambda rows: loader(kept_rows(keep, rows))


def _shifted(complete: RowLoader | None, start: int) -> RowLoader | None:
    """A loader for the slice starting at ``start`` of what ``complete`` loads."""
    if complete is None or start == 0:
        return complete
    return lambda rows: complete(pc.add(rows, start))


def read(sources: Sequence[str], options: ReadOptions = DEFAULT_OPTIONS) -> LogReader:
    """Read flow logs from files, directories, globs, ``-`` (stdin) or ``s3://`` URLs.

    >>> reader = read(["/nonexistent-dir-for-doctest/*.log"])
    >>> list(reader), reader.stats.totals()["files"]
    ([], 0)
    """
    return LogReader(sources, options)
