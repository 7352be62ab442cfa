"""The store filled from a scan's alert tables equals the store ``upsert_alerts`` fills from
the same alerts as Python objects, column by column."""

from __future__ import annotations

import json

import duckdb
import pytest

import flowwarden.alerts.tablequery as tablequery
import flowwarden.alerts.tablestore as tablestore
from flowwarden.alerts.delivery import OutputSpec, deliver
from flowwarden.alerts.groupstore import AlertTable
from flowwarden.alerts.store import AlertStore, upsert_alerts
from flowwarden.alerts.tablequery import QueriedAlerts
from flowwarden.alerts.tablestore import store_rows
from tests.alerts.tablecase import AWKWARD, flows_file, odd_pack, scan


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("tablestore")


@pytest.fixture(scope="module")
def pack(folder):
    return odd_pack(folder)


def rows(path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT * FROM alerts ORDER BY id").fetchall()
    finally:
        con.close()


def python_store(alerts, path) -> None:
    store = AlertStore(path)
    try:
        upsert_alerts(store.con, list(alerts))
    finally:
        store.close()


@pytest.mark.parametrize(("engine", "max_samples", "parquet"), [
    ("duckdb", 3, True), ("python", 3, True), ("duckdb", 0, False), ("duckdb", 12, True),
    ("python", 1, False)])
def test_the_store_from_the_query_equals_the_store_from_alerts(
        pack, folder, engine, max_samples, parquet):
    alerts = scan(pack, flows_file(folder, parquet=parquet), engine, max_samples)
    assert isinstance(alerts, AlertTable) and isinstance(alerts, QueriedAlerts)
    assert len({a.rule_id for a in alerts}) >= 3
    name = f"{engine}-{max_samples}-{parquet}"
    queried, walked = folder / f"q-{name}.duckdb", folder / f"w-{name}.duckdb"
    deliver(alerts, OutputSpec(output_dir=str(folder / name), store=str(queried)), "x",
            scan_files=("scan-1", []))
    python_store(alerts, walked)
    got, want = rows(queried), rows(walked)
    assert len(got) == len(alerts) > 50
    assert got == want
    odd = [row for row in got if row[1] == "Test.Odd"]
    contexts = [json.loads(row[17]) for row in odd]
    # every awkward value in a context (text lines cannot hold the ones with white space)
    awkward = set(AWKWARD) if parquet else {"plain", "🙂\x7f"}
    assert {c["iface"] for c in contexts} >= awkward
    assert all(c["nested"]["none"] is None and c["nested"]["deep"]["ctl"] == "\x00\x1f"
               for c in contexts)
    if max_samples:
        assert {s["interfaceId"] for row in odd for s in json.loads(row[19])} >= awkward
        assert any("🙂" in row[19] for row in odd)  # written raw, not escaped
    else:
        assert {row[19] for row in got} == {"[]"}


def test_an_alert_already_stored_is_replaced_and_others_are_kept(pack, folder):
    alerts = scan(pack, flows_file(folder))
    path = folder / "replace.duckdb"
    store = AlertStore(path)
    try:  # an older version of one alert, and an alert of another scan
        older = alerts[0]
        older.event_count, older.title = 1, "older"
        upsert_alerts(store.con, [older])
        store.con.execute("INSERT INTO alerts (id, rule_id) VALUES ('other', 'R')")
    finally:
        store.close()
    deliver(alerts, OutputSpec(output_dir=str(folder / "out"), store=str(path)), "x",
            scan_files=("scan-2", [
        {"source": "s", "read": 1, "parsed": 1, "rejected": 0}]))
    got = rows(path)
    assert len(got) == len(alerts) + 1
    by_id = {row[0]: row for row in got}
    assert by_id[alerts[0].id][3] == alerts[0].title != "older"
    assert by_id["other"][1] == "R"
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT scan_id, records_read FROM scan_files").fetchall() == [
        ("scan-2", 1)]
    con.close()


def test_store_rows_are_read_a_chunk_of_alerts_at_a_time(pack, folder, monkeypatch):
    alerts = scan(pack, flows_file(folder, parquet=True), "duckdb", 3)
    whole = store_rows(alerts).read_all()
    queries = []
    real = tablequery.read_batches

    def counted(con, sql, *rows):
        queries.append(sql)
        return real(con, sql, *rows)

    monkeypatch.setattr(tablequery, "read_batches", counted)
    monkeypatch.setattr(tablestore, "STORE_CHUNK", 7)
    parts = store_rows(alerts).read_all()
    assert len(alerts) > 50 and len(queries) == -(-len(alerts) // 7)
    assert parts.sort_by("id").equals(whole.sort_by("id")) and parts.num_rows == len(alerts)
