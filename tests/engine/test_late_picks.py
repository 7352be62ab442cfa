"""Late picks: the matches of a rule with a threshold are kept by their keys alone, and only
those that become an alert's kept events have their records read again from the file, when the
alerts are collected. The alerts must be exactly those of reading every wanted record at once
(and of the python engine), however the file is cut into batches, with rejected rows, a
since/until window, and alert functions that need Python."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flowwarden.alerts.groupstore import SqlGrouper
from flowwarden.engine.scan import Scanner
from flowwarden.logs import ReadOptions, read
from flowwarden.logs.parquet_rows import LateRows
from flowwarden.rules.loader import Pack, load_pack
from tests.engine.test_scan_phases import outcome
from tests.logs.helpers import parquet_with_text_numbers

COMPILED = "Late.Compiled"  # every alert function compiles
PYTHON = "Late.Python"  # its alert context is Python's alone

RULE_YML = """AnalysisType: rule
Filename: {name}.py
RuleID: {rule_id}
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Low
Threshold: {threshold}
DedupPeriodMinutes: 15
"""
COMPILED_PY = """def rule(event):
    if event.get("dstPort") is None:
        return False
    return event.get("dstPort") not in (22, 53, 80, 443)

def title(event):
    return f"{event.get('srcAddr')} probed {event.get('dstAddr')}"

def dedup(event):
    return str(event.get("srcAddr"))

def unique(event):
    return str(event.get("dstPort"))

def alert_context(event):
    return {"bytes": event.get("bytes"), "interface": event.get("interfaceId")}
"""
PYTHON_PY = """def rule(event):
    return event.get("protocol") == 17

def title(event):
    return f"UDP from {event.get('srcAddr')}"

def dedup(event):
    return str(event.get("dstAddr"))

def alert_context(event):
    return {"ports": sorted([event.get("srcPort") or 0, event.get("dstPort") or 0])}
"""


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Pack:
    root = tmp_path_factory.mktemp("latepack")
    for name, rule_id, threshold, code in (("compiled", COMPILED, 6, COMPILED_PY),
                                           ("python", PYTHON, 3, PYTHON_PY)):
        (root / f"{name}.yml").write_text(RULE_YML.format(name=name, rule_id=rule_id,
                                                          threshold=threshold))
        (root / f"{name}.py").write_text(code)
    return load_pack([root])


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated flows in several row groups, some of their rows rejected."""
    return parquet_with_text_numbers(tmp_path_factory.mktemp("late") / "flows.parquet", 6000,
                                     5, 1500, spoil_seed=8, spoiled=30, bad=["abc", "-"],
                                     row_group_size=1300)


def scanned(pack: Pack, flows: Path, engine: str, options: ReadOptions,
            monkeypatch: pytest.MonkeyPatch | None = None, late: bool = True
            ) -> dict[str, Any]:
    if monkeypatch is not None:
        monkeypatch.setattr(SqlGrouper, "defers", property(lambda self: late))
    return outcome(Scanner(pack, pack.active_rules(()), engine, 3), read([str(flows)], options))


@pytest.mark.parametrize("options", [
    ReadOptions(batch_size=700), ReadOptions(batch_size=65536),
    ReadOptions(batch_size=900, since=datetime(2024, 1, 1, 0, 20, tzinfo=UTC))],
    ids=["small batches", "one batch", "since"])
def test_late_picks_make_the_alerts_of_picks_read_at_once(pack, flows, options, monkeypatch):
    reads: list[int] = []
    original = LateRows.rows

    def counted(self: LateRows, at: np.ndarray) -> Any:
        reads.append(len(at))
        return original(self, at)

    monkeypatch.setattr(LateRows, "rows", counted)
    late = scanned(pack, flows, "duckdb", options, monkeypatch, late=True)
    read_late = sum(reads)
    at_once = scanned(pack, flows, "duckdb", options, monkeypatch, late=False)
    python = scanned(pack, flows, "python", options)
    assert late == at_once == python
    assert sum(reads) == read_late  # the scan without late picks read nothing again
    alerting = {rule: [a for a in late["alerts"] if a["rule_id"] == rule]
                for rule in (COMPILED, PYTHON)}
    assert all(alerting.values()), "each rule alerts"
    # only the alerts' kept events were read again: a few of the matches
    kept = sum(len(a["samples"]) for alerts in alerting.values() for a in alerts)
    assert read_late == kept
    assert kept < (late["matches"][COMPILED] + late["matches"][PYTHON]) / 2
    contexts = [a["alert_context"] for a in alerting[PYTHON]]
    assert all(set(c) == {"ports"} for c in contexts)  # Python's context, from the record
    if options.since is not None:
        first = min(a["first_event_time"] for a in late["alerts"])
        assert first >= "2024-01-01T00:20"


def test_beyond_so_many_late_batches_picks_are_made_whole_at_once(pack, flows, tmp_path,
                                                                   monkeypatch):
    from flowwarden.alerts import groupstore

    second = tmp_path / "second.parquet"  # a batch of its own
    second.write_bytes(flows.read_bytes())
    sources = [str(flows), str(second)]
    rules = pack.active_rules(())
    expected = outcome(Scanner(pack, rules, "python", 3), read(sources))
    added: list[str] = []
    original = SqlGrouper.add_late

    def counted(self: SqlGrouper, wanted: Any, resolve: Any) -> None:
        added.append(wanted.source)
        original(self, wanted, resolve)

    monkeypatch.setattr(SqlGrouper, "add_late", counted)
    monkeypatch.setattr(groupstore, "LATE_BATCHES", 1)
    assert outcome(Scanner(pack, rules, "duckdb", 3), read(sources)) == expected
    assert added == [str(flows)] * 2  # each rule's picks of the first batch; then at once


def test_a_run_that_carries_groups_keeps_every_pick_whole(tmp_path: Path) -> None:
    from flowwarden.alerts.carryover import GroupFiles

    grouper = SqlGrouper()
    assert grouper.defers
    files = GroupFiles(tmp_path / "g.parquet", tmp_path / "u.parquet", tmp_path / "e")
    grouper.carry(lambda reached, directory: files, None)
    assert not grouper.defers


SECURITY_LAKE_SAMPLE = next(
    (Path(__file__).parents[1] / "fixtures" / "samples" / "ocsf").rglob("*.parquet"))


def ocsf_flows(path: Path, records: int) -> Path:
    """OCSF Parquet in Security Lake's schema (its sample file's), one record in ten a probe
    of one of twelve targets by its own scanner (the first six on sixteen ports, reaching the
    port scan's ten in a window, the others on five), two with a time out of range
    (rejected)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sample = pq.read_table(SECURITY_LAKE_SAMPLE)
    template = sample.slice(0, 1).to_pylist()[0]
    rng = np.random.default_rng(11)
    rows = []
    for index in range(records):
        row = {**template, "src_endpoint": dict(template["src_endpoint"]),
               "dst_endpoint": dict(template["dst_endpoint"])}
        row["time"] = 1616729292000 + index * 1500
        if index % 10 == 0:  # a probe: scanner k of target k
            k = int(rng.integers(0, 12))
            ports = 16 if k < 6 else 5
            row["src_endpoint"].update(ip=f"203.0.113.{k}", port=40000 + index % 20000)
            row["dst_endpoint"].update(ip=f"10.1.0.{k}", port=1024 + int(rng.integers(0, ports)))
        else:
            row["src_endpoint"].update(ip=f"10.0.{index % 50}.{index % 200}", port=443)
            row["dst_endpoint"].update(ip=f"10.2.0.{index % 90}", port=40000 + index % 999)
        if index in (777, 1999):
            row["time"] = 10**17  # after the year 9999
        rows.append(row)
    pq.write_table(pa.Table.from_pylist(rows, schema=sample.schema), path, row_group_size=700)
    return path


def test_late_picks_of_security_lake_parquet(default_pack, tmp_path, monkeypatch):
    flows = ocsf_flows(tmp_path / "lake.parquet", 6000)
    rules = [default_pack.rule("AWS.VPC.PortScan")]

    def scanned_ocsf(engine: str, late: bool) -> dict[str, Any]:
        monkeypatch.setattr(SqlGrouper, "defers", property(lambda self: late))
        reader = read([str(flows)], ReadOptions(batch_size=1000))
        found = outcome(Scanner(default_pack, rules, engine, 3), reader)
        assert reader.stats.to_json()["totals"]["rejected"] == 2
        return found

    reads: list[int] = []
    original = LateRows.rows
    monkeypatch.setattr(LateRows, "rows", lambda self, at: reads.append(len(at))
                        or original(self, at))
    late = scanned_ocsf("duckdb", True)
    assert late == scanned_ocsf("duckdb", False) == scanned_ocsf("python", True)
    assert late["matches"]["AWS.VPC.PortScan"] == 600
    targets = {a["alert_context"]["destination_ip"] for a in late["alerts"]}
    assert targets and targets <= {f"10.1.0.{k}" for k in range(6)}
    assert sum(reads) == sum(len(a["samples"]) for a in late["alerts"]) < 600 / 4
