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
