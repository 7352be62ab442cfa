"""Opening a ``--state`` file and telling a damaged one from a good one.

A state file can be anything a user points ``--state`` at: an empty file, another program's
DuckDB database, a copy cut short, a file another process holds. Each must end the run with one
line naming the file, before anything is read, never with a traceback deep in a query.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import duckdb

from flowwarden.alerts.store import first_line
from flowwarden.errors import Location, UsageError
from flowwarden.util.duckfiles import connect_file

P = ParamSpec("P")
R = TypeVar("R")
# What a damaged file raises when read: DuckDB's errors, and those of decoding a row's JSON.
DAMAGE = (duckdb.Error, ValueError, KeyError, TypeError, IndexError, AttributeError)


class HasPath(Protocol):
    path: str


S = TypeVar("S", bound=HasPath)


class DamagedState(UsageError):
    """A state file that cannot be read as one: never a sink's failure to take alerts."""


def damaged(path: str, exc: BaseException, what: str = "") -> DamagedState:
    """The one-line error for a state file that cannot be read as one."""
    detail = f"no {exc}" if isinstance(exc, KeyError) else first_line(exc) or type(exc).__name__
    where = f" ({what})" if what else ""
    return DamagedState(f"the state file is damaged{where}: {detail}; move it away to start "
                        "afresh", Location(path))


def guarded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A StateStore method whose reading errors become ``damaged`` (one line, exit 2)."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except DAMAGE as exc:
            raise damaged(self.path, exc) from None

    return wrapper


def writing(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A StateStore method that writes: DuckDB's errors (a full disk, a damaged file) become one
    line; anything else is a bug and keeps its traceback."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except duckdb.Error as exc:
            raise UsageError(f"cannot write the state file: {first_line(exc)}",
                             Location(self.path)) from None

    return wrapper


def other_version(path: str, found: str, version: str) -> UsageError:
    """The one-line error for a state file of another format than ``version``."""
    return UsageError(f"state format {found}, this flowwarden reads {version}; move it away "
                      "to start afresh", Location(path))


def open_state(path: str, schema: Sequence[str], version: str
               ) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """A connection to ``path`` with ``schema`` (CREATE TABLE statements) in place, and whether
    the file is new. A file holding other tables, or ours with other columns, is refused (ours
    of another format ``version`` as such)."""
    if os.path.isdir(path):
        raise UsageError("--state: is a directory, not a file", Location(path))
    try:
        con = connect_file(path)
    except duckdb.Error as exc:
        raise UsageError(f"cannot open the state file: {first_line(exc)}", Location(path)) from None
    try:
        new = _check_tables(con, path, schema, version)
        if new:  # all tables or none: a kill here must not leave a file that looks damaged
            con.execute("BEGIN TRANSACTION")
            for statement in schema:
                con.execute(statement)
            con.execute("COMMIT")
    except UsageError:
        con.close()
        raise
    except duckdb.Error as exc:
        con.close()
        raise damaged(path, exc) from None
    return con, new


def _check_tables(con: duckdb.DuckDBPyConnection, path: str, schema: Sequence[str],
                  version: str) -> bool:
    expected = _columns(_scratch(schema))
    found = _columns(con)
    if not found:
        return True
    if "meta" not in found:
        names = ", ".join(sorted(found)[:5])
        raise UsageError(f"not a flowwarden state file: a DuckDB database with other tables "
                         f"({names})", Location(path))
    if found["meta"] == expected.get("meta"):  # the format first: its tables may differ
        rows = con.execute("SELECT value FROM meta WHERE key = 'version'").fetchall()
        if rows and rows[0][0] != version:
            raise other_version(path, rows[0][0], version)
    for table, columns in expected.items():
        if found.get(table) != columns:
            problem = "missing" if table not in found else "with other columns"
            raise damaged(path, ValueError(f"table {table} {problem}"))
    return False


def _scratch(schema: Sequence[str]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    for statement in schema:
        con.execute(statement)
    return con


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall()
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for table, column, kind in rows:
        tables.setdefault(table, []).append((column, kind))
    return tables
