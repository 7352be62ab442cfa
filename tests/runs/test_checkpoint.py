from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from flowwarden.alerts.delivery import OutputSpec
from flowwarden.alerts.formats.jsonl import alert_json
from flowwarden.alerts.store import AlertStore
from flowwarden.engine.engines import LocalEngine
from flowwarden.engine.scan import Scanner
from flowwarden.errors import UsageError
from flowwarden.logs import read
from flowwarden.runs import checkpoint
from flowwarden.runs.checkpoint import run_checkpointed, run_stateless
from tests.flowgen.generate import generate_flows, write_text
from tests.runs.statefiles import stored_groups

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
          "start end action log-status")


def flow_line(minute: float, src="45.33.32.156", dst="10.0.0.8", sport=40000, dport=22,
              action="ACCEPT") -> str:
    start = int((T0 + timedelta(minutes=minute)).timestamp())
    return (f"2 123456789012 eni-1 {src} {dst} {sport} {dport} 6 1 40 {start} {start + 5} "
            f"{action} OK")


def write_flows(path, lines) -> str:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return str(path)


def comparable(alert_or_json) -> dict:
    """An alert as JSON without what differs between any two reads (parse time, file path)."""
    data = json.loads(alert_or_json if isinstance(alert_or_json, str) else alert_json(alert_or_json))
    for sample in data["samples"]:
        sample.pop("p_parse_time", None)
        sample.pop("p_source_file", None)
    return data


def run(pack, source, state, **kwargs):
    kwargs.setdefault("engine", "python")
    return run_checkpointed(pack, [str(source)], str(state), **kwargs)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Four files of generated flows over two hours, in order."""
    root = tmp_path_factory.mktemp("generated")
    batches = generate_flows(3200, seed=5, batch_size=800, duration=timedelta(hours=2))
    paths = []
    for index, batch in enumerate(batches):
        path = root / f"part-{index}.log.gz"
        write_text([batch], str(path))
        paths.append(path)
    return paths


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_many_small_runs_give_the_alerts_of_one_run(engine, default_pack, generated, tmp_path):
    whole = Scanner(default_pack, default_pack.active_rules(), "python")
    reference = {a.id: comparable(a) for a in whole.scan(read([str(p) for p in generated])).alerts}
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    latest, emitted_versions = {}, []
    for path in generated:
        shutil.copy(path, incoming / path.name)
        result = run(default_pack, incoming, tmp_path / "state.duckdb", engine=engine)
        assert [o.url for o in result.inputs] == [str(incoming / path.name)]
        for alert in result.alerts:
            latest[alert.id] = comparable(alert)
            emitted_versions.append((alert.id, alert.event_count))
    assert latest == reference
    assert len(emitted_versions) == len(set(emitted_versions))
    assert len(emitted_versions) > len(reference)  # some alerts grew and were emitted again
    # The state's groups: the alerts' counts, and groups still below their rule's threshold
    groups = stored_groups(tmp_path / "state.duckdb")
    assert {key: groups[key][1] for key in reference} == {
        key: value["event_count"] for key, value in reference.items()}
    thresholds = {rule.id: rule.threshold for rule in default_pack.rules}
    below = [(rule, events) for key, (rule, events) in groups.items() if key not in reference]
    assert below and all(events < thresholds[rule] for rule, events in below)


def test_a_run_with_nothing_new_emits_nothing(default_pack, generated, tmp_path):
    out = tmp_path / "out"
    spec = OutputSpec(output_dir=str(out))
    first = run(default_pack, generated[0], tmp_path / "state.duckdb", outputs=spec)
    assert first.run == 1 and first.alerts and len(first.written) == 1
    again = run(default_pack, generated[0], tmp_path / "state.duckdb", outputs=spec)
    assert again.run is None and again.alerts == [] and again.written == []
    assert again.unchanged == 1 and again.inputs == []
    assert sorted(p.name for p in out.iterdir()) == [os.path.basename(first.written[0])]


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_thresholds_and_windows_continue_across_runs(engine, default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    probes = [flow_line(m, dport=7000 + m, src="198.51.100.9") for m in range(6)]
    write_flows(source / "a.log", probes)
    first = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=["AWS.VPC.PortScan"],
                engine=engine)
    assert first.alerts == []  # 6 distinct ports: under the threshold of 10
    more = [flow_line(10 + m, dport=7100 + m, src="198.51.100.9") for m in range(5)]
    write_flows(source / "b.log", more)
    second = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=["AWS.VPC.PortScan"],
                 engine=engine)
    (alert,) = second.alerts
    assert (alert.unique_count, alert.event_count) == (11, 11)
    assert alert.first_event_time == T0 and alert.last_event_time == T0 + timedelta(minutes=14)


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_an_alert_is_emitted_again_only_when_its_group_changes(engine, default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(1), flow_line(2, src="45.33.32.157")])
    first = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=["AWS.VPC.InboundAdminPort"],
                engine=engine)
    assert sorted(a.event_count for a in first.alerts) == [1, 1]
    write_flows(source / "b.log", [flow_line(3)])
    second = run(default_pack, source, tmp_path / "s.duckdb",
                 rule_ids=["AWS.VPC.InboundAdminPort"], engine=engine)
    (updated,) = second.alerts
    original = next(a for a in first.alerts if a.dedup == updated.dedup)
    assert updated.id == original.id and updated.event_count == 2
    assert updated.last_event_time == T0 + timedelta(minutes=3)


def test_a_changed_input_is_read_again(default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    path = source / "a.log"
    write_flows(path, [flow_line(1)])
    run(default_pack, source, tmp_path / "s.duckdb", rule_ids=["AWS.VPC.InboundAdminPort"])
    write_flows(path, [flow_line(1), flow_line(2)])
    second = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=["AWS.VPC.InboundAdminPort"])
    assert [o.url for o in second.inputs] == [str(path)]
    assert [a.event_count for a in second.alerts] == [3]  # the first event counted twice


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_events_older_than_the_retention_are_late(engine, default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(60 * 24 * 3)])
    ids = ["AWS.VPC.InboundAdminPort"]
    run(default_pack, source, tmp_path / "s.duckdb", rule_ids=ids, retention=timedelta(days=1),
        engine=engine)
    write_flows(source / "b.log", [flow_line(0), flow_line(60 * 24 * 3 - 30, src="45.33.32.200")])
    second = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=ids,
                 retention=timedelta(days=1), engine=engine)
    assert second.late_events == 1
    assert [a.dedup for a in second.alerts] == ["45.33.32.200->10.0.0.8:22"]


def test_old_windows_are_dropped_from_the_state(default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    ids = ["AWS.VPC.InboundAdminPort"]
    write_flows(source / "a.log", [flow_line(0)])
    run(default_pack, source, tmp_path / "s.duckdb", rule_ids=ids, retention=timedelta(hours=2))
    write_flows(source / "b.log", [flow_line(60 * 5)])
    run(default_pack, source, tmp_path / "s.duckdb", rule_ids=ids, retention=timedelta(hours=2))
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    try:
        starts = {table: con.execute(f"SELECT window_us FROM {table}").fetchall()
                  for table in ("groups", "group_events")}
    finally:
        con.close()
    start = int((T0 + timedelta(hours=5)).timestamp()) * 1_000_000
    assert starts == {"groups": [(start,)], "group_events": [(start,)]}


def test_outputs_are_named_by_run_and_formats_differ(default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(1)])
    ocsf_dir, lake_dir, store = tmp_path / "ocsf", tmp_path / "lake", tmp_path / "store.duckdb"
    ids = ["AWS.VPC.InboundAdminPort"]
    first = run(default_pack, source, tmp_path / "a.duckdb", rule_ids=ids,
                outputs=OutputSpec("ocsf", output_dir=str(ocsf_dir), store=str(store)))
    (written,) = first.written
    assert written.endswith("-00000001.ocsf.jsonl")
    finding = json.loads(Path(written).read_text())
    assert finding["finding_info"]["uid"] == first.alerts[0].id
    store_rows = AlertStore(store)
    try:
        assert store_rows.count() == 1
    finally:
        store_rows.close()
    lake = run(default_pack, source, tmp_path / "b.duckdb", rule_ids=ids,
               outputs=OutputSpec("ocsf-parquet", output_dir=str(lake_dir)))
    (key,) = [os.path.relpath(w, lake_dir) for w in lake.written]
    assert key.startswith("ext/flowwarden/region=unknown/accountId=123456789012/eventDay=20240501/")
    assert key.endswith("-00000001.parquet")


def test_jsonl_to_stdout_and_to_a_file(default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(1)])
    out = io.StringIO()
    result = run(default_pack, source, tmp_path / "s.duckdb", stdout=out,
                 rule_ids=["AWS.VPC.InboundAdminPort"])
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [result.alerts[0].id]
    target = tmp_path / "alerts.jsonl"
    write_flows(source / "b.log", [flow_line(2)])
    second = run(default_pack, source, tmp_path / "s.duckdb", rule_ids=["AWS.VPC.InboundAdminPort"],
                 outputs=OutputSpec(output=str(target)))
    assert json.loads(target.read_text())["event_count"] == second.alerts[0].event_count == 2


def test_the_store_gets_alerts_and_input_statistics_once(default_pack, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    write_flows(source / "a.log", [flow_line(1), "not a flow record"])
    ids = ["AWS.VPC.InboundAdminPort"]
    # A store of its own, then the state file as its own store (its tables committed with runs)
    for state, store in ((tmp_path / "a.duckdb", tmp_path / "store.duckdb"),
                         (tmp_path / "s.duckdb", tmp_path / "s.duckdb")):
        output = tmp_path / f"{state.stem}.jsonl"
        for _ in range(2):
            run(default_pack, source, state, rule_ids=ids,
                outputs=OutputSpec(output=str(output), store=str(store)))
        write_flows(source / f"{store.stem}.log", ["2 123456789012 eni-1 - - - - - - - - - - NODATA"])
        run(default_pack, source, state, rule_ids=ids,
            outputs=OutputSpec(output=str(output), store=str(store)))
        con = duckdb.connect(str(store))
        try:
            assert con.execute("SELECT count(*) FROM alerts").fetchall() == [(1,)]
            files = con.execute("SELECT source, records_read, records_rejected FROM scan_files "
                                "ORDER BY source").fetchall()
        finally:
            con.close()
        assert (str(source / "a.log"), 2, 1) in files
        assert (str(source / f"{store.stem}.log"), 1, 0) in files
        # The run that found no alert left the last alerts in --output.
        assert json.loads(output.read_text())["event_count"] == 1


def test_stdin_and_bad_output_combinations_are_refused(default_pack, tmp_path):
    with pytest.raises(UsageError, match="standard input"):
        run_checkpointed(default_pack, ["-"], str(tmp_path / "s.duckdb"))
    with pytest.raises(UsageError, match="ocsf-parquet needs"):
        run_checkpointed(default_pack, [str(tmp_path)], str(tmp_path / "s.duckdb"),
                         outputs=OutputSpec("ocsf-parquet"))
    with pytest.raises(UsageError, match="unknown output format"):
        OutputSpec("xml").check()


def test_a_stateless_scan_writes_the_same_file_for_the_same_data(default_pack, generated, tmp_path):
    spec = OutputSpec("ocsf", output_dir=str(tmp_path / "out"))
    one = run_stateless(default_pack, [str(generated[0])], engine="python", outputs=spec)
    two = run_stateless(default_pack, [str(generated[0])], engine="python", outputs=spec)
    assert one.written == two.written and len(one.written) == 1
    assert len(Path(one.written[0]).read_text().splitlines()) == len(one.alerts)


@pytest.mark.parametrize("to_dir", [False, True])
def test_only_directory_files_are_named_by_the_alerts_digest(default_pack, tmp_path, monkeypatch,
                                                              to_dir):
    """The digest reads every alert in id order (a sort of them all at scale): a scan to a
    file, whose name the user gave, does without it."""
    digested = []
    real = checkpoint.alerts_name
    monkeypatch.setattr(checkpoint, "alerts_name", lambda alerts: digested.append(1) or real(alerts))
    source = write_flows(tmp_path / "a.log", [flow_line(1)])
    outputs = (OutputSpec(output_dir=str(tmp_path / "out")) if to_dir
               else OutputSpec(output=str(tmp_path / "alerts.jsonl")))
    result = run_stateless(default_pack, [source], outputs=outputs)
    assert len(result.alerts) >= 1 and len(result.written) == 1
    assert digested == ([1] if to_dir else [])
    if to_dir:
        assert Path(result.written[0]).name == real(result.alerts) + ".jsonl"
    assert len(Path(result.written[0]).read_text().splitlines()) == len(result.alerts)


@pytest.mark.parametrize(("fmt", "findings"), [("jsonl", False), ("ocsf", True),
                                                ("ocsf-parquet", True)])
def test_a_scan_to_ocsf_asks_its_engine_for_the_findings(default_pack, tmp_path, fmt, findings):
    """An engine that makes its alerts elsewhere (Spark's executors) makes their findings there
    too, where the output is OCSF."""
    asked = []

    @dataclasses.dataclass(frozen=True)
    class Recording(LocalEngine):
        def scan(self, *args, **kwargs):
            asked.append(kwargs["findings"])
            return super().scan(*args, **kwargs)

    source = write_flows(tmp_path / "a.log", [flow_line(1)])
    outputs = OutputSpec(fmt, output=str(tmp_path / "out"))
    result = run_stateless(default_pack, [source], engine=Recording("duckdb"), outputs=outputs)
    assert asked == [findings] and len(result.alerts) >= 1
