"""A committed run's alerts read back from the outbox: the lines the run wrote, in order."""

from __future__ import annotations

import json

import duckdb
import pytest

import flowwarden.alerts.grouping as grouping
import flowwarden.alerts.tablequery as tablequery
import flowwarden.runs.outbox as outbox
import flowwarden.runs.outboxalerts as outboxalerts
from flowwarden.alerts.delivery import OutputSpec
from flowwarden.errors import UsageError
from flowwarden.runs.state import StateStore
from tests.runs.test_checkpoint import flow_line, run, write_flows

ADMIN = ["AWS.VPC.InboundAdminPort"]


def _undelivered(default_pack, tmp_path, monkeypatch, engine="duckdb"):
    """A committed run of five alerts whose delivery failed (its alerts wait in the outbox)."""
    source, state = tmp_path / "in", tmp_path / "s.duckdb"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(m, src=f"45.33.32.{150 + m}") for m in range(5)])

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(outbox, "deliver", failing)
        result = run(default_pack, source, state, rule_ids=ADMIN, engine=engine)
    assert result.undelivered == [1] and len(result.alerts) == 5
    return state, result


def test_the_outbox_holds_the_lines_the_run_wrote(default_pack, tmp_path, monkeypatch):
    state, result = _undelivered(default_pack, tmp_path, monkeypatch)
    lines = b"".join(result.alerts.json_lines())
    store = StateStore(state)
    try:
        waiting = store.run_alerts(1)
        assert len(waiting) == 5 and b"".join(waiting.json_lines()) == lines
        assert b"".join(waiting[1:3].json_lines()) == b"".join(lines.splitlines(True)[1:3])
        assert [a.id for a in waiting] == [a.id for a in result.alerts]
        assert waiting[-1].dedup == list(result.alerts)[-1].dedup
    finally:
        store.close()


def test_the_outbox_is_read_a_chunk_of_lines_per_query(default_pack, tmp_path, monkeypatch):
    state, result = _undelivered(default_pack, tmp_path, monkeypatch)
    lines = b"".join(result.alerts.json_lines()).splitlines(True)
    queries = []

    def counted(con, sql, rows=tablequery.READ_ROWS):
        queries.append(sql)
        return read_batches(con, sql, rows)

    read_batches = tablequery.read_batches
    monkeypatch.setattr(tablequery, "read_batches", counted)
    monkeypatch.setattr(outboxalerts, "LINE_CHUNK", 2)
    store = StateStore(state)
    try:
        waiting = store.run_alerts(1)
        assert b"".join(waiting.json_lines()) == b"".join(lines) and len(queries) == 3
        assert b"".join(waiting[1:4].json_lines()) == b"".join(lines[1:4]) and len(queries) == 5
        assert [a.id for a in waiting[3:]] == [a.id for a in list(result.alerts)[3:]]
    finally:
        store.close()


def test_a_redelivered_run_writes_the_stored_lines(default_pack, tmp_path, monkeypatch):
    state, result = _undelivered(default_pack, tmp_path, monkeypatch)
    out = tmp_path / "alerts.jsonl"
    again = run(default_pack, tmp_path / "in", state, rule_ids=ADMIN, engine="duckdb",
                outputs=OutputSpec(output=str(out)))
    assert again.redelivered == [1] and again.run is None
    assert out.read_bytes() == b"".join(result.alerts.json_lines())


def test_an_outbox_line_that_is_no_alert_is_a_damaged_state(default_pack, tmp_path, monkeypatch):
    state, _ = _undelivered(default_pack, tmp_path, monkeypatch)
    con = duckdb.connect(str(state))
    con.execute("UPDATE run_alerts SET alert = '{\"not\": \"an alert\"}' || chr(10) WHERE seq = 3")
    con.close()
    ocsf = OutputSpec("ocsf", output=str(tmp_path / "findings.jsonl"))
    with pytest.raises(UsageError, match="the state file is damaged \\(an alert of run 1\\)"):
        run(default_pack, tmp_path / "in", state, rule_ids=ADMIN, engine="duckdb", outputs=ocsf)
    con = duckdb.connect(str(state))
    con.execute("UPDATE run_alerts SET alert = 'oops' || chr(10) WHERE seq = 3")
    con.close()
    with pytest.raises(UsageError, match="run 1's alert 3 is no alert"):
        run(default_pack, tmp_path / "in", state, rule_ids=ADMIN, engine="duckdb",
            outputs=OutputSpec(output=str(tmp_path / "alerts.jsonl")))


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_a_state_run_makes_no_python_object_per_group(default_pack, tmp_path, monkeypatch,
                                                       engine):
    def refused(*args, **kwargs):
        raise AssertionError("a group became a Python object")

    monkeypatch.setattr(grouping._Group, "__init__", refused)
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(1), flow_line(2, src="45.33.32.157")])
    first = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=ADMIN, engine=engine)
    write_flows(source / "b.log", [flow_line(3)])
    second = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=ADMIN, engine=engine)
    assert len(first.alerts) == 2 and [a.event_count for a in second.alerts] == [2]
    assert json.loads(next(iter(second.alerts.json_lines())))["event_count"] == 2
