"""One statement over a table cut into parts run side by side: the same rows, in order."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from flowwarden.util.split_query import SplitQuery

SQL = "SELECT n::VARCHAR || ':' || s AS line FROM v"


def table(rows: int) -> pa.Table:
    return pa.table({"n": range(rows), "s": [f"x{i % 7}" for i in range(rows)]})


def connection(threads: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    return con


def test_parts_are_at_least_least_rows_and_at_most_the_threads():
    split = SplitQuery(connection(4), "v", least_rows=100)
    assert [split.parts(rows) for rows in (0, 99, 199, 200, 399, 10_000)] == [1, 1, 1, 2, 3, 4]
    assert SplitQuery(connection(1), "v", least_rows=100).parts(10_000) == 1


@pytest.mark.parametrize("rows", [0, 1, 250, 1001])
def test_the_parts_give_the_rows_of_one_query_in_order(rows):
    data = table(rows)
    con = connection(3)
    con.register("v", data)
    whole = con.sql(SQL).to_arrow_table().column(0).combine_chunks()
    con.unregister("v")
    split = SplitQuery(con, "v", least_rows=100)
    assert split.column(SQL, data).equals(whole)
    assert split.column(SQL, data.to_batches()[0] if rows else data).equals(whole)


def test_a_failing_part_raises_and_leaves_no_view_behind():
    con = connection(2)
    split = SplitQuery(con, "v", least_rows=10)
    with pytest.raises(duckdb.Error):
        split.column("SELECT error('boom') AS b FROM v", table(100))
    # every cursor's view is gone: the next statement registers its own
    assert split.column(SQL, table(30)).to_pylist()[:2] == ["0:x0", "1:x1"]
