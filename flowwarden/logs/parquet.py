"""Parquet row ranges for the second phase of a projected read.

A projected read streams only the columns the rules need; the complete records of the few rows
that need more are then fetched by row range from the remaining columns. Ranges are asked in
increasing order, so one sequential reader serves them, restarted at a later row group when a
request skips whole row groups (those are never decoded). A local file's rows are read by
position instead where DuckDB reads them as pyarrow does (``parquet_rows``).

Bytes that cannot be decoded in a column that is only read here are found only if a range
covering them is asked for; that is then a ``LogFormatError`` (a full read would have counted
the rest of the file as one rejection).

A Parquet file's reader is not safe to use from two threads at once, and the first phase may
read ahead in a background thread: both phases take the ranges' ``lock`` (see ``locked``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden.errors import Location, LogFormatError
from flowwarden.logs.parquet_rows import PositionReader

READ_FAILURES = (OSError, EOFError, pa.ArrowException, ValueError)


class RowRanges:
    """Rows ``[start, stop)`` of some columns of a Parquet file, asked for in increasing order.

    >>> import io
    >>> buffer = io.BytesIO()
    >>> pq.write_table(pa.table({"a": range(10), "b": list("abcdefghij")}), buffer,
    ...                row_group_size=4)
    >>> ranges = RowRanges(pq.ParquetFile(buffer), ["b"], batch_size=3, source="mem")
    >>> ranges.read(2, 5).column("b").to_pylist(), ranges.read(9, 10).column("b").to_pylist()
    (['c', 'd', 'e'], ['j'])
    """

    def __init__(self, file: pq.ParquetFile, columns: Sequence[str], batch_size: int,
                 source: str) -> None:
        self.file = file
        # rows by position through DuckDB where it reads them as pyarrow does (a local file)
        self.positions = PositionReader.of(source, file.schema_arrow, columns)
        self.source = source
        self.columns = list(columns)
        self.batch_size = max(batch_size, 1)
        meta = file.metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.group_starts = np.cumsum([0, *sizes])
        self.schema = pa.schema([file.schema_arrow.field(n) for n in self.columns])
        self._batches: Iterator[pa.RecordBatch] | None = None
        self._held: list[pa.RecordBatch] = []
        self._held_start = 0  # file row of the first held row
        self._next = 0  # file row of the next batch the reader yields
        self.lock = threading.Lock()

    def read(self, start: int, stop: int) -> pa.Table:
        """The rows ``[start, stop)`` (``start`` no earlier than the previous call's)."""
        try:
            with self.lock:
                return self._read(start, stop)
        except READ_FAILURES as exc:
            self._batches = None
            raise LogFormatError(f"Parquet read failed in rows {start + 1}-{stop}: {exc}",
                                 Location(self.source)) from exc

    def at(self, rows: np.ndarray) -> pa.Table | None:
        """The file rows ``rows`` (in any order, repeats allowed) read by position, or None
        where that cannot be done (then ``read`` ranges)."""
        if self.positions is None or not len(rows):
            return None
        wanted = np.unique(rows)
        found = self.positions.rows(wanted)  # its own file handle: phase 1 reads on meanwhile
        if found is None or np.array_equal(wanted, rows):
            return found
        return found.take(pa.array(np.searchsorted(wanted, rows)))

    def _read(self, start: int, stop: int) -> pa.Table:
        group = int(np.searchsorted(self.group_starts, start, side="right")) - 1
        if (self._batches is None or start < self._held_start
                or self.group_starts[group] > self._next):
            self._restart(group)
        while self._held and self._held_start + self._held[0].num_rows <= start:
            self._held_start += self._held.pop(0).num_rows
        while self._next < stop:
            batch = next(self._batches)  # type: ignore[arg-type]
            if not self._held and self._next + batch.num_rows <= start:
                self._next += batch.num_rows
                self._held_start = self._next
                continue
            self._held.append(batch)
            self._next += batch.num_rows
        return self._held_rows(start, stop)

    def _held_rows(self, start: int, stop: int) -> pa.Table:
        """Rows ``[start, stop)``, all held, after dropping the held rows before ``start``."""
        while self._held and self._held_start + self._held[0].num_rows <= start:
            self._held_start += self._held.pop(0).num_rows
        table = pa.Table.from_batches(self._held, schema=self.schema)
        return table.slice(start - self._held_start, stop - start)

    def _restart(self, group: int) -> None:
        groups = range(group, self.file.metadata.num_row_groups)
        self._batches = self.file.iter_batches(
            batch_size=self.batch_size, row_groups=groups, columns=self.columns
        )
        self._held = []
        self._held_start = self._next = int(self.group_starts[group])


def locked(batches: Iterator[pa.RecordBatch],
           ranges: RowRanges | None) -> Iterator[pa.RecordBatch]:
    """``batches`` of the same file as ``ranges``, each read while holding the ranges' lock."""
    if ranges is None:
        yield from batches
        return
    while True:
        with ranges.lock:
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def complete_rows(raw: pa.RecordBatch, first: int, positions: pa.Array, names: Sequence[str],
                  rest: RowRanges | None) -> pa.RecordBatch:
    """The rows at ``positions`` of a projected read's raw batch ``raw`` (whose first row is
    file row ``first``) with all the columns ``names``, in that order: ``raw``'s own, the
    others read from ``rest``."""
    columns = dict(zip(raw.schema.names, raw.take(positions).columns, strict=True))
    if rest is not None:
        table = _rest_rows(rest, first, raw.num_rows, positions)
        columns.update((n, c.combine_chunks())
                       for n, c in zip(table.column_names, table.columns, strict=True))
    return pa.RecordBatch.from_arrays([columns[n] for n in names], names=list(names))


def _rest_rows(rest: RowRanges, first: int, rows: int, positions: pa.Array) -> pa.Table:
    """The rows at ``positions`` of ``rest``'s columns, of the ``rows`` from file row ``first``.

    Read by position where ``rest`` can (``RowRanges.at``). Otherwise increasing positions (the
    usual case) are read a window of ``rest.batch_size`` rows at a time, from the first position
    in it to the last: what is held at once does not grow with the batch, and row groups holding
    none of them are never decoded.
    """
    at = np.asarray(positions.to_numpy(zero_copy_only=False), dtype=np.int64)
    found = rest.at(first + at)
    if found is not None:
        return found
    if len(at) < 2 or (np.diff(at) < 0).any():
        return take_rows(rest.read(first, first + rows), positions)
    window = at // rest.batch_size
    parts = []
    for run in np.split(at, np.flatnonzero(np.diff(window)) + 1):
        low = int(run[0])
        part = rest.read(first + low, first + int(run[-1]) + 1)
        parts.append(take_rows(part, pa.array(run - low)))
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def take_rows(table: pa.Table, positions: pa.Array) -> pa.Table:
    """``table.take(positions)``, batch by batch: a take across the batches of a table joins
    each string column's chunks first, all of them for a few rows.

    >>> table = pa.Table.from_batches([pa.record_batch({"s": ["a", "b"]}),
    ...                                pa.record_batch({"s": ["c", "d"]})])
    >>> take_rows(table, pa.array([3, 0, 2])).column("s").to_pylist()
    ['d', 'a', 'c']
    """
    batches = table.to_batches()
    if len(batches) <= 1:
        return table.take(positions)
    wanted = np.asarray(positions.to_numpy(zero_copy_only=False), dtype=np.int64)
    starts = np.cumsum([0, *(b.num_rows for b in batches)])
    which = np.searchsorted(starts, wanted, side="right") - 1
    order = np.argsort(which, kind="stable")  # by batch, in the asked order within each
    pieces = [batches[i].take(pa.array(wanted[order][which[order] == i] - starts[i]))
              for i in np.unique(which)]
    taken = pa.Table.from_batches(pieces, schema=table.schema)
    if np.array_equal(order, np.arange(len(order))):
        return taken
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return taken.take(pa.array(back))  # a few rows: joining them is cheap


def coalesced(batches: Iterator[pa.RecordBatch], size: int | Callable[[], int]
              ) -> Iterator[pa.RecordBatch]:
    """Batches of ``size`` rows (the last may be shorter), cut as a full read cuts them;
    ``size`` may be a function, asked as each batch begins.

    Dictionary-encoded columns make Parquet end a batch at every row group; the pieces are
    joined again (their dictionaries unified), so batch sizes do not depend on the file layout.

    >>> sizes = iter([2, 3, 1, 5])
    >>> [b.num_rows for b in coalesced(iter([pa.record_batch({"a": range(8)})]),
    ...                                lambda: next(sizes))]
    [2, 3, 1, 2]
    """
    def wanted() -> int:
        return max(size() if callable(size) else size, 1)

    pending: list[pa.RecordBatch] = []
    count, target = 0, wanted()
    for batch in batches:
        while batch.num_rows:
            take = min(target - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == target:
                yield _joined(pending)
                pending, count, target = [], 0, wanted()
    if pending:
        yield _joined(pending)


def _joined(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(pieces) == 1:
        return pieces[0]
    concat = getattr(pa, "concat_batches", None)  # pyarrow >= 19: a third less time
    if concat is not None:
        return concat(pieces)  # dictionaries unified, as combine_chunks does
    return pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]
