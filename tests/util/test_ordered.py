"""Tables made in order in pieces where one sort does not fit the database's memory."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flowwarden.util.ordered import create_in_order

ROWS = 300_000  # with 80-character strings, too many to order at once in 16 MB (2 threads)


def _connection(tmp_path: Path, memory: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={
        "memory_limit": memory, "temp_directory": str(tmp_path), "threads": 2,
        "preserve_insertion_order": False})
    con.execute(f"CREATE TABLE src AS SELECT (hash(i) % 100000)::BIGINT AS k, "
                f"lpad(i::VARCHAR, 80, '0') AS s, i FROM range({ROWS}) t(i)")
    return con


def _numbered(where: str, before: int) -> str:
    return (f"SELECT {before} + row_number() OVER (ORDER BY k, i) - 1 AS n, * FROM src {where} "
            "ORDER BY n")


def _in_table_order(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[int, ...]]:
    """The rows as the table stores them (one thread, insertion order kept)."""
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = true")
    return con.execute(f"SELECT n, k, i FROM {table}").fetchall()


def test_a_sort_too_big_for_memory_is_made_in_pieces_with_the_same_rows_in_order(
        tmp_path: Path) -> None:
    con = _connection(tmp_path, "16MB")
    with pytest.raises(duckdb.OutOfMemoryException):
        con.execute(f"CREATE TABLE whole AS {_numbered('', 0)}")

    statements = create_in_order(con, "out", _numbered, "src", "k")

    assert statements > 1
    expected = duckdb.connect().execute(
        "SELECT row_number() OVER (ORDER BY k, i) - 1, k, i FROM ("
        f"SELECT (hash(i) % 100000)::BIGINT AS k, i FROM range({ROWS}) t(i)) ORDER BY k, i"
    ).fetchall()
    assert _in_table_order(con, "out") == expected


def test_a_sort_that_fits_is_one_statement(tmp_path: Path) -> None:
    con = _connection(tmp_path, "1GB")

    assert create_in_order(con, "out", _numbered, "src", "k") == 1
    rows = _in_table_order(con, "out")
    assert [n for n, _, _ in rows] == list(range(ROWS))
    assert [(k, i) for _, k, i in rows] == sorted((k, i) for _, k, i in rows)


def test_rows_of_one_key_that_do_not_fit_still_fail(tmp_path: Path) -> None:
    con = _connection(tmp_path, "16MB")
    con.execute("UPDATE src SET k = 7")

    with pytest.raises(duckdb.OutOfMemoryException):
        create_in_order(con, "out", _numbered, "src", "k")
