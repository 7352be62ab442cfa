"""Rows of a local Parquet file by position, read by DuckDB: phase 2's complete records.

A projected read hands the scanners a few columns; the rows they keep (matches, rows run in
Python) need the others. pyarrow decodes a column chunk whole, so a few hundred rows spread
over a file cost a full decode of every remaining column (at 0.5% of rows matching, a third of
a rare-match scan). DuckDB's reader filters on the row number as it decodes: about three times
less time for sparse rows, the same for dense ones.

Only where the result is exactly pyarrow's: a local file, top-level columns of plain types
(integers, floats, booleans, UTF-8 strings, dictionaries of strings) whose names DuckDB tells
apart (it folds case), none called ``file_row_number``. A query that fails (bytes DuckDB will
not decode, say) hands the request back, and the caller reads with pyarrow, whose errors are
the reader's; it is not asked again for that file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden.errors import Location, LogFormatError
from flowwarden.logs.common import kept_rows

ROW_NUMBER = "file_row_number"
WANTED = "flowwarden_wanted_rows"
MEMORY = "256MB"  # beyond it the query fails, and pyarrow reads the rows


def _plain(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        return pa.types.is_string(dtype.value_type)
    return (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
            or pa.types.is_boolean(dtype) or pa.types.is_string(dtype))


class PositionReader:
    """Rows at given positions of some columns of the Parquet file at ``path``.

    >>> import pyarrow.parquet as pq, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = f"{folder}/t.parquet"
    ...     pq.write_table(pa.table({"a": range(10), "b": list("abcdefghij")}), path,
    ...                    row_group_size=4)
    ...     reader = PositionReader.of(path, pq.ParquetFile(path).schema_arrow, ["b"])
    ...     reader.rows(np.array([1, 5, 9])).column("b").to_pylist()
    ['b', 'f', 'j']
    """

    def __init__(self, path: str, indexes: Sequence[int], schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self._select = ", ".join(f"#{index + 1}" for index in indexes)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self.failed = False

    @classmethod
    def of(cls, path: str, file_schema: pa.Schema, columns: Sequence[str]
           ) -> PositionReader | None:
        """A reader of ``columns`` of the file at ``path`` (Arrow schema ``file_schema``), or
        None where DuckDB's rows might differ from pyarrow's."""
        folded = [name.lower() for name in file_schema.names]
        if (not os.path.isfile(path) or len(set(folded)) != len(folded)
                or ROW_NUMBER in folded):
            return None
        fields = [file_schema.field(name) for name in columns]
        if not fields or not all(_plain(f.type) for f in fields):
            return None
        indexes = [file_schema.get_field_index(name) for name in columns]
        return cls(path, indexes, pa.schema(fields))

    def rows(self, at: np.ndarray) -> pa.Table | None:
        """The rows at file positions ``at`` (increasing, no repeats), or None when DuckDB
        did not read them (and will not be asked again)."""
        with self._lock:
            if self.failed:
                return None
            try:
                found = self._query(at)
            except (duckdb.Error, pa.ArrowException):
                found = None
            if found is None:
                self.failed = True
                self.close()
            return found

    def _query(self, at: np.ndarray) -> pa.Table | None:
        if self._con is None:  # a batch's rows at most: a bound, not DuckDB's 80% of memory
            self._con = duckdb.connect(config={"memory_limit": MEMORY})
        con = self._con
        con.register(WANTED, pa.table({"p": pa.array(at, pa.int64())}))
        try:
            # the range lets DuckDB skip the row groups before and after the wanted rows
            table = con.sql(
                f"SELECT {self._select}, {ROW_NUMBER} FROM read_parquet($path, "
                f"{ROW_NUMBER} = true) WHERE {ROW_NUMBER} BETWEEN $low AND $high "
                f"AND {ROW_NUMBER} IN (SELECT p FROM {WANTED}) ORDER BY {ROW_NUMBER}",
                params={"path": self.path, "low": int(at[0]), "high": int(at[-1])},
            ).to_arrow_table()
        finally:
            con.unregister(WANTED)
        numbers = table.column(table.num_columns - 1).to_numpy()
        if not np.array_equal(numbers, at):
            return None
        table = table.drop_columns([table.column_names[-1]])
        for index, (got, want) in enumerate(zip(table.schema, self.schema, strict=True)):
            exact = got.type == want.type or (
                pa.types.is_dictionary(want.type) and got.type == want.type.value_type)
            if not exact:
                return None
            table = table.set_column(index, want, table.column(index).cast(want.type))
        return table

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class LateRows:
    """Rows of some columns of a local Parquet file by file row, read again at any time while
    the scan runs (``LogBatch.late``): the file is opened anew for each request, and a file
    that changed since it was first read is an error rather than other rows
    (``tests/logs/test_parquet_rows.py``)."""

    def __init__(self, path: str, file_schema: pa.Schema, columns: Sequence[str],
                 stamp: tuple[int, int]) -> None:
        self.path, self.file_schema, self.columns = path, file_schema, list(columns)
        self.stamp = stamp

    @classmethod
    def of(cls, path: str, file_schema: pa.Schema, columns: Sequence[str]) -> LateRows | None:
        """A late reader of ``columns`` (Arrow types as in ``file_schema``) of the file at
        ``path``, or None where it is not a local file (an object store's, a stream's spool)."""
        if not os.path.isfile(path) or not columns:
            return None
        return cls(path, file_schema, columns, _stamp(path))

    def batch(self, first: int, ok: pa.Array | None, positions: pa.Array) -> pa.RecordBatch:
        """The rows at ``positions`` of the good rows ``ok`` (None: all) of a raw batch whose
        first row is file row ``first``, with the reader's columns in order."""
        at = first + np.asarray(kept_rows(ok, positions).to_numpy(zero_copy_only=False),
                                dtype=np.int64)
        table = self.rows(at)
        return pa.RecordBatch.from_arrays([table.column(n).combine_chunks() for n in self.columns],
                                          names=self.columns)

    def rows(self, at: np.ndarray) -> pa.Table:
        """The rows at file rows ``at`` (any order, repeats allowed), in that order."""
        try:
            changed = _stamp(self.path) != self.stamp
        except OSError as exc:
            raise LogFormatError(f"the file cannot be read again for the records of its "
                                 f"matches: {exc.strerror or exc}", Location(self.path)) from exc
        if changed:
            raise LogFormatError("the file changed while it was scanned: the records of its "
                                 "matches cannot be read again", Location(self.path))
        wanted = np.unique(at)
        reader = PositionReader.of(self.path, self.file_schema, self.columns)
        found = None
        if reader is not None and len(wanted):
            try:
                found = reader.rows(wanted)
            finally:
                reader.close()
        if found is None:  # DuckDB would not read them: pyarrow, a row group at a time
            found = _row_groups(self.path, pa.schema([self.file_schema.field(n)
                                                      for n in self.columns]), wanted)
        if np.array_equal(wanted, at):
            return found
        return found.take(pa.array(np.searchsorted(wanted, at), type=pa.int64()))


def _stamp(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


def _row_groups(path: str, schema: pa.Schema, at: np.ndarray) -> pa.Table:
    """The rows at file rows ``at`` (increasing) of the columns of ``schema``, read by pyarrow
    from their row groups (as dictionaries where ``schema`` says so)."""
    try:
        file = pq.ParquetFile(path, read_dictionary=[
            f.name for f in schema if pa.types.is_dictionary(f.type)])
        meta = file.metadata
        starts = np.cumsum([0, *(meta.row_group(i).num_rows for i in range(meta.num_row_groups))])
        groups = np.searchsorted(starts, at, side="right") - 1
        parts = [file.read_row_group(int(g), columns=schema.names).take(
                     pa.array(at[groups == g] - starts[g], type=pa.int64()))
                 for g in np.unique(groups)]
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts, promote_options="permissive").cast(schema)
    except (OSError, EOFError, pa.ArrowException, ValueError) as exc:
        raise LogFormatError(f"Parquet read failed when its matches' records were read again: "
                             f"{exc}", Location(path)) from exc
