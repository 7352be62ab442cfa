"""Arrow data registered with a DuckDB connection, or a temporary table, for a ``with`` block."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import duckdb


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, data: Any) -> Iterator[None]:
    """``data`` (an Arrow table or record-batch reader) as view ``name`` of ``con`` inside.

    A statement that fails inside a transaction aborts it, and unregistering then fails too:
    that second error would hide the first, so it is dropped while the first propagates.

    >>> import pyarrow as pa
    >>> con = duckdb.connect()
    >>> with registered(con, "t", pa.table({"a": [1, 2]})):
    ...     con.execute("SELECT sum(a) FROM t").fetchall()
    [(3,)]
    >>> _ = con.execute("BEGIN")
    >>> try:
    ...     with registered(con, "t", pa.table({"a": [1]})):
    ...         _ = con.execute("SELECT nothing FROM t")
    ... except duckdb.Error as exc:
    ...     print(type(exc).__name__)
    BinderException
    """
    con.register(name, data)
    with _undone(lambda: con.unregister(name)):
        yield


@contextmanager
def temporary_table(con: duckdb.DuckDBPyConnection, name: str, select: str) -> Iterator[None]:
    """Temporary table ``name`` of ``select``'s rows inside, dropped after (as ``registered``
    does, without hiding a failure inside).

    >>> con = duckdb.connect()
    >>> with temporary_table(con, "t", "SELECT 1 AS a"):
    ...     con.execute("SELECT a FROM t").fetchall()
    [(1,)]
    >>> con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'").fetchall()
    [(0,)]
    """
    con.execute(f"CREATE TEMP TABLE {name} AS {select}")
    with _undone(lambda: con.execute(f"DROP TABLE {name}")):
        yield


@contextmanager
def _undone(undo: Callable[[], object]) -> Iterator[None]:
    """``undo`` after the block; where the block failed, a failure of ``undo`` too (an aborted
    transaction refuses everything) is dropped, so the block's propagates."""
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):
            undo()
        raise
    undo()
