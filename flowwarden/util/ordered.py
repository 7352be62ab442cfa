"""Inserting rows in order, in pieces when one sort does not fit the database's memory.

DuckDB spills a sort to disk, but its merge still holds a block of every sorted run at once, so
what a sort needs grows with the bytes it orders: with a 256 MB limit and two threads, ordering
the 10.3M alerts of a 30M-record scan (about 250 bytes a row) ran out of memory. The rows of one
part of the ordering key's range are a sort of their own, and the parts, inserted one after
another in key order, are the whole ordered table. So the statement runs once over every row,
and only where DuckDB runs out of memory again over each half of the key's range (split at its
approximate median, halved again where a half still does not fit): the usual case pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

# ``select(where, offset)``: the ordered rows ``where`` picks (a WHERE clause on the key column
# of the source table, empty for every row), ``offset`` the number of rows before them in order.
Select = Callable[[str, int], str]


def create_in_order(con: duckdb.DuckDBPyConnection, table: str, select: Select, source: str,
                    column: str) -> int:
    """Create ``table`` of ``select``'s rows over every row of the table ``source``, ordered
    on its integer ``column`` (whose range the pieces split); returns how many statements
    inserted the rows.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE t AS SELECT (i * 7) % 10 AS k FROM range(10) r(i)")
    >>> create_in_order(con, "o", lambda where, offset: "SELECT "
    ...     f"{offset} + row_number() OVER (ORDER BY k) - 1 AS n, k FROM t {where} ORDER BY k",
    ...     "t", "k")
    1
    >>> con.execute("SELECT list(n ORDER BY n) = list(k ORDER BY n) FROM o").fetchone()[0]
    True
    """
    try:
        con.execute(f"CREATE TABLE {table} AS {select('', 0)}")
        return 1
    except duckdb.OutOfMemoryException:
        bounds = con.execute(f"SELECT min({column}), max({column}) FROM {source}").fetchone()
        if bounds is None or bounds[0] is None or bounds[0] == bounds[1]:
            raise  # one key value: nothing to split
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM ({select('', 0)}) WHERE false")

    def insert(where: str, offset: int) -> str:
        return f"INSERT INTO {table} {select(where, offset)}"

    return _halves(con, insert, source, column, int(bounds[0]), int(bounds[1]) + 1, 0)


def _halves(con: duckdb.DuckDBPyConnection, insert: Select, source: str, column: str,
            low: int, high: int, offset: int) -> int:
    """Insert the rows of ``low <= column < high`` (which did not fit at once) half by half."""
    inside = _between(column, low, high)
    found = con.execute(f"SELECT approx_quantile({column}, 0.5) FROM {source} {inside}"
                        ).fetchone()
    middle = int(found[0]) if found and found[0] is not None else low
    middle = min(max(middle, low + 1), high - 1)  # each half keeps at least one key value
    before = con.execute(f"SELECT count(*) FROM {source} {_between(column, low, middle)}"
                         ).fetchone()
    statements = 0
    for start, end, rows_before in ((low, middle, offset),
                                    (middle, high, offset + int(before[0] if before else 0))):
        try:
            con.execute(insert(_between(column, start, end), rows_before))
            statements += 1
        except duckdb.OutOfMemoryException:
            if end - start <= 1:
                raise
            statements += _halves(con, insert, source, column, start, end, rows_before)
    return statements


def _between(column: str, low: int, high: int) -> str:
    return f"WHERE {column} >= {int(low)} AND {column} < {int(high)}"
