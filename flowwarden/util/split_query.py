"""One statement over an Arrow table, the table cut into parts that run side by side.

DuckDB ran a query over a registered Arrow table of tens of thousands of rows on one thread,
however many the connection has (prepared or not, in one record batch or many; a 1M-row table
it splits): rendering a batch of samples as JSON, a tenth of a 10M-record seed scan, ran on
one core of two. Each part here is registered on a cursor of its own; the first runs in the
calling thread, the others in threads kept for the next calls (DuckDB releases the GIL), and
the results are joined in the table's order.

>>> con = duckdb.connect()
>>> split = SplitQuery(con, "v", least_rows=2)
>>> split.column("SELECT n * 10 AS m FROM v", pa.table({"n": range(5)})).to_pylist()
[0, 10, 20, 30, 40]
>>> split.parts(5), split.parts(3)
(2, 1)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

import duckdb
import pyarrow as pa

from flowwarden.util.prepared import Prepared
from flowwarden.util.registered import registered

LEAST_ROWS = 4_096  # samples: about 12 ms of work, against 0.1 ms to start a thread


class SplitQuery:
    """Runs statements over tables registered as ``view``, in up to the connection's thread
    count of parts of at least ``least_rows`` rows each."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, view: str,
                 least_rows: int = LEAST_ROWS) -> None:
        self.connection, self.view, self.least_rows = connection, view, max(least_rows, 1)
        [(threads,)] = connection.execute("SELECT current_setting('threads')").fetchall()
        self.threads = max(int(threads), 1)
        self._cursors: list[tuple[duckdb.DuckDBPyConnection, Prepared]] = []
        self._pool: ThreadPoolExecutor | None = None

    def parts(self, rows: int) -> int:
        """How many parts a table of ``rows`` rows is cut into."""
        return max(1, min(self.threads, rows // self.least_rows))

    def column(self, sql: str, table: pa.Table | pa.RecordBatch) -> pa.Array:
        """The first column of ``sql``'s result over ``table``, one row per row of it."""
        count = self.parts(table.num_rows)
        while len(self._cursors) < count:
            cursor = self.connection.cursor()
            self._cursors.append((cursor, Prepared(cursor)))
        size = max(-(-table.num_rows // count), 1)
        pieces = [table.slice(start, size) for start in range(0, table.num_rows, size)] or [table]
        if len(pieces) == 1:
            return self._run(0, sql, pieces[0])
        if self._pool is None:
            # the same threads for every call: a new thread gets new allocator caches in
            # DuckDB, and a scan's peak grew by a quarter with a thread per part per call
            self._pool = ThreadPoolExecutor(self.threads - 1, "flowwarden-split")
        others = [self._pool.submit(self._run, i, sql, pieces[i]) for i in range(1, len(pieces))]
        try:
            first = self._run(0, sql, pieces[0])
        finally:
            wait(others)  # no cursor is still busy when this call ends, however it ends
        return pa.concat_arrays([first, *(other.result() for other in others)])

    def _run(self, index: int, sql: str, piece: pa.Table | pa.RecordBatch) -> pa.Array:
        cursor, prepared = self._cursors[index]
        with registered(cursor, self.view, piece):
            return prepared.sql(sql).to_arrow_table().column(0).combine_chunks()
