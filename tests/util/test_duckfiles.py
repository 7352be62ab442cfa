from __future__ import annotations

import doctest
from pathlib import Path

from flowwarden.alerts.store import AlertStore
from flowwarden.runs.statefile import open_state
from flowwarden.util import duckfiles


def test_doctests() -> None:
    assert doctest.testmod(duckfiles).failed == 0


def limit(con) -> str:  # type: ignore[no-untyped-def]
    return str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])


def test_the_store_and_the_state_file_have_bounded_memory(tmp_path: Path) -> None:
    # DuckDB's default is 80% of the machine's RAM: a store of millions of alerts would take it
    bounded = limit(duckfiles.connect_file(str(tmp_path / "scratch.duckdb")))
    assert bounded.endswith("MiB") and float(bounded.split()[0]) < 1024
    assert limit(AlertStore(tmp_path / "alerts.duckdb").con) == bounded
    con, _ = open_state(str(tmp_path / "state.duckdb"),
                        ["CREATE TABLE IF NOT EXISTS t (a INT)"], "1")
    assert limit(con) == bounded
