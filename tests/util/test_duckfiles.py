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


def cached_mb(con) -> int:  # type: ignore[no-untyped-def]
    found = con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) // 1000000 "
                        "FROM duckdb_memory() WHERE tag = 'BASE_TABLE'").fetchone()
    return int(found[0])


def test_shedding_the_cache_gives_back_committed_pages_and_keeps_the_limit(
        tmp_path: Path) -> None:
    con = duckfiles.connect_file(str(tmp_path / "x.duckdb"))
    before = limit(con)
    con.execute("CREATE TABLE t (i BIGINT, s VARCHAR)")
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO t SELECT range, md5(range::VARCHAR) || md5(range::VARCHAR) "
                "FROM range(3000000)")
    con.execute("COMMIT")
    assert cached_mb(con) > 2 * duckfiles.SHED_MB  # the committed pages, still in memory
    duckfiles.shed_cache(con)
    assert cached_mb(con) <= duckfiles.SHED_MB
    assert limit(con) == before
    assert con.execute("SELECT count(*), max(i) FROM t").fetchone() == (3000000, 2999999)
    con.close()
