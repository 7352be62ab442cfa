"""DuckDB databases flowwarden keeps (the alert store, the ``--state`` file, the scan's group
database): each may hold millions of alerts, so each gets a bounded share of memory, and DuckDB
spills the rest to disk (beside a database file, or to the directory it is given) instead of
growing until the kernel stops the process. DuckDB's own default is 80% of the machine's RAM.
"""

from __future__ import annotations

import duckdb

MEMORY_MB = 1000  # DuckDB's "1GB"
MEMORY_LIMIT = f"{MEMORY_MB}MB"


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
