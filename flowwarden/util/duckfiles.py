"""DuckDB databases flowwarden keeps (the alert store, the ``--state`` file, the scan's group
database): each may hold millions of alerts, so each gets a bounded share of memory, and DuckDB
spills the rest to disk (beside a database file, or to the directory it is given) instead of
growing until the kernel stops the process. DuckDB's own default is 80% of the machine's RAM.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from flowwarden.util.scratch import scratch_directory

MEMORY_MB = 1000  # DuckDB's "1GB"
MEMORY_LIMIT = f"{MEMORY_MB}MB"
SHED_MB = 32  # what ``shed_cache`` leaves a database for a moment


def connect_file(path: str) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the database file ``path``, within ``MEMORY_LIMIT``.

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     con = connect_file(os.path.join(folder, "x.duckdb"))
    ...     print(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
    ...     con.close()
    953.6 MiB
    """
    return duckdb.connect(path, config={"memory_limit": MEMORY_LIMIT})


@contextmanager
def spilling_database(prefix: str, memory_mb: int) -> Iterator[duckdb.DuckDBPyConnection]:
    """A new in-memory database within ``memory_mb`` that spills to a temporary directory named
    ``prefix``..., both gone after the block: for work that grows with the alerts.

    >>> with spilling_database("flowwarden-doctest-", 64) as con:
    ...     print(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
    ...     print("flowwarden-doctest-" in con.execute(
    ...         "SELECT current_setting('temp_directory')").fetchone()[0])
    61.0 MiB
    True
    """
    with scratch_directory(prefix) as folder:
        con = duckdb.connect(config={"memory_limit": f"{memory_mb}MB",
                                     "temp_directory": str(folder)})
        try:
            yield con
        finally:
            con.close()


def shed_cache(con: duckdb.DuckDBPyConnection, memory_mb: int = MEMORY_MB) -> None:
    """Give back the blocks ``con``'s database keeps cached: a file's pages that a transaction
    wrote stay in memory after it commits, up to the memory limit, where whatever runs next
    (another database's queries) would stack its own memory on them. The limit lowered to
    ``SHED_MB`` evicts them (they are on disk); then it is ``memory_mb`` again."""
    try:
        con.execute(f"SET memory_limit = '{SHED_MB}MB'")
    finally:
        con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
