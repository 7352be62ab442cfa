"""A committed run's alerts read back from the outbox: the lines the run wrote, in order."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import duckdb
import pyarrow.parquet as pq
import pytest

import flowwarden.alerts.grouping as grouping
import flowwarden.alerts.tablequery as tablequery
import flowwarden.runs.outbox as outbox
import flowwarden.runs.outboxalerts as outboxalerts
from flowwarden.alerts.delivery import OutputSpec, deliver
from flowwarden.alerts.formats import ALERT_FORMATS, ocsftable
from flowwarden.alerts.formats.securitylake import write_security_lake
from flowwarden.errors import UsageError
from flowwarden.runs.state import StateStore
from tests.flowgen.generate import generate_flows, write_text
from tests.runs.test_checkpoint import flow_line, run, write_flows

ADMIN = ["AWS.VPC.InboundAdminPort"]


def _undelivered(default_pack, tmp_path, monkeypatch, engine="duckdb"):
    """A committed run of five alerts whose delivery failed (its alerts wait in the outbox)."""
    source, state = tmp_path / "in", tmp_path / "s.duckdb"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(m, src=f"45.33.32.{150 + m}") for m in range(5)])
    result = _committed(default_pack, source, state, monkeypatch, rule_ids=ADMIN, engine=engine)
    assert result.undelivered == [1] and len(result.alerts) == 5
    return state, result


def _committed(pack, source, state, monkeypatch, **kwargs):
    """A run over ``source`` committed to ``state``, its delivery failed (its alerts wait)."""
    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(outbox, "deliver", failing)
        return run(pack, source, state, **kwargs)


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


def _tree(root):
    """Every file under ``root``: Parquet as its table's rows, other files as their bytes."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = str(path.relative_to(root))
        found[key] = (pq.read_table(path).to_pylist() if path.suffix == ".parquet"
                      else path.read_bytes())
    return found


def _stored(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT * FROM alerts ORDER BY id").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("fmt", ["ocsf-parquet", "ocsf", "jsonl"])
def test_a_fresh_run_is_delivered_from_its_tables_as_the_outbox_would(default_pack, tmp_path,
                                                                      monkeypatch, fmt):
    source = tmp_path / "in"
    source.mkdir()
    batches = generate_flows(3000, seed=11, batch_size=1000, duration=timedelta(hours=2))
    for index, batch in enumerate(batches):
        write_text([batch], str(source / f"part-{index}.log.gz"))
    state = tmp_path / "s.duckdb"
    result = _committed(default_pack, source, state, monkeypatch, engine="duckdb")
    assert result.undelivered == [1] and len(result.alerts) > 100
    assert len(result.alerts.count_by_rule()) >= 3

    def sinks(name):  # OCSF and JSONL are appended to --output too, a half at a time
        return OutputSpec(fmt, output_dir=str(tmp_path / name),
                          store=str(tmp_path / f"{name}.duckdb"),
                          output=None if fmt == "ocsf-parquet" else str(tmp_path / f"{name}.out"))

    store = StateStore(state)
    try:
        with monkeypatch.context() as patched:  # delivered from the outbox, left pending
            patched.setattr(StateStore, "mark_delivered", lambda self, run: None)
            assert outbox.deliver_pending(store, sinks("walked")).delivered == [1]

        def refused(line):
            raise AssertionError("an alert was made of an outbox line")

        monkeypatch.setattr(outboxalerts, "alert_from_json", refused)
        done = outbox.deliver_pending(store, sinks("fresh"), fresh=(1, result.alerts))
        assert done.delivered == [1] and store.pending_runs() == []
    finally:
        store.close()
    walked, fresh = _tree(tmp_path / "walked"), _tree(tmp_path / "fresh")
    assert fresh == walked and len(fresh) >= 1
    if fmt != "ocsf-parquet":
        appended = (tmp_path / "fresh.out").read_bytes()
        assert appended == (tmp_path / "walked.out").read_bytes()
        assert appended.count(b"\n") == len(result.alerts)
    assert _stored(tmp_path / "fresh.duckdb") == _stored(tmp_path / "walked.duckdb")
    assert len(_stored(tmp_path / "fresh.duckdb")) == len(result.alerts)


def test_a_fresh_run_s_tables_must_be_its_outbox_s_alerts(default_pack, tmp_path, monkeypatch):
    state, result = _undelivered(default_pack, tmp_path, monkeypatch)
    store = StateStore(state)
    try:
        with pytest.raises(ValueError, match="run 1: 5 alerts scanned, 3 in the outbox"):
            outboxalerts.FreshRun(result.alerts, store.run_alerts(1)[:3])
    finally:
        store.close()


@pytest.mark.parametrize("redone", [False, True])
def test_a_part_of_a_fresh_run_is_written_as_the_outbox_s_part(default_pack, tmp_path,
                                                               monkeypatch, redone):
    """``redone``: every third finding left to Python, read 4 alerts a query."""
    if redone:
        real = ocsftable.finding_sql

        def every_third(max_samples, seqs=None):
            return (f"SELECT * REPLACE (exotic OR seq % 3 = 0 AS exotic, exotic_parquet OR "
                    f"seq % 5 = 0 AS exotic_parquet) FROM ({real(max_samples, seqs)})")

        monkeypatch.setattr(ocsftable, "finding_sql", every_third)
        monkeypatch.setattr(ocsftable, "CHUNK", 4)
    source = tmp_path / "in"
    source.mkdir()
    lines = [flow_line(m, src=f"45.33.32.{100 + m}", dport=(22, 3389, 53)[m % 3])
             for m in range(60)]
    write_flows(source / "a.log", lines)
    state = tmp_path / "s.duckdb"
    result = _committed(default_pack, source, state, monkeypatch, engine="duckdb")
    assert len(result.alerts) >= 40
    store = StateStore(state)
    try:
        whole = outboxalerts.FreshRun(result.alerts, store.run_alerts(1))
        part, walked = whole[7:33], list(store.run_alerts(1)[7:33])
        assert isinstance(part, tablequery.QueriedAlerts) and part.seqs == range(7, 33)
        assert [a.id for a in part] == [a.id for a in walked] and len(part) == 26
        assert isinstance(part[2:4], outboxalerts.FreshRun) and part[2:4].seqs == range(9, 11)
        for fmt in ("ocsf", "ocsf-parquet", "jsonl"):
            written = {}
            for name, alerts in (("part", part), ("walked", walked)):
                out = io.BytesIO()
                assert ALERT_FORMATS[fmt].write(alerts, out) == 26
                written[name] = out.getvalue()
            if fmt == "ocsf-parquet":
                tables = {k: pq.read_table(io.BytesIO(v)) for k, v in written.items()}
                assert tables["part"].equals(tables["walked"])
            else:
                assert written["part"] == written["walked"] and written["part"].count(b"\n") == 26
        for name, alerts in (("part", part), ("walked", walked)):
            write_security_lake(alerts, str(tmp_path / name), name="same")
            deliver(alerts, OutputSpec(store=str(tmp_path / f"{name}.duckdb")), "same")
    finally:
        store.close()
    assert _tree(tmp_path / "part") == _tree(tmp_path / "walked")
    stored = _stored(tmp_path / "part.duckdb")
    assert stored == _stored(tmp_path / "walked.duckdb") and len(stored) == 26
