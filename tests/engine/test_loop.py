"""The one scan loop: scan, scan --state, watch and backtest give the same alerts, and each reads
only the projected columns in phase 1."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from flowwarden.alerts.delivery import OutputSpec
from flowwarden.cli.console import run_scan, watch_command
from flowwarden.engine.engines import engine_named
from flowwarden.engine.loop import phase_one_columns
from flowwarden.logs import ReadOptions
from flowwarden.logs.reader import LogReader
from flowwarden.runs.backtest import rule_stats, run_backtest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data"


@pytest.fixture()
def reads(monkeypatch):
    """The ``ReadOptions.columns`` of every input read (phase 1), in order."""
    seen: list[tuple[str, ...] | None] = []
    original = LogReader._read_one

    def recording(self, obj, stats):
        seen.append(self.options.columns)
        return original(self, obj, stats)

    monkeypatch.setattr(LogReader, "_read_one", recording)
    return seen


def _alert_keys(alerts):
    return sorted((a.id, a.event_count, a.unique_count, a.title, a.first_event_time)
                  for a in alerts)


def test_scan_state_watch_and_backtest_give_the_same_alerts_from_projected_reads(
        default_pack, tmp_path, reads):
    sources = [str(EXAMPLES)]
    options = ReadOptions()
    rules = default_pack.active_rules()
    expected_columns = phase_one_columns([engine_named("duckdb").scanner(default_pack, rules)])
    assert expected_columns is not None and "bytes" not in expected_columns
    common = dict(engine="duckdb", rule_ids=(), max_samples=3, quiet=True)

    scan = run_scan(default_pack, sources, options, state=None,
                    outputs=OutputSpec(output=str(tmp_path / "scan.jsonl")), **common)
    scan_reads = list(reads)
    reads.clear()
    stateful = run_scan(default_pack, sources, options, state=str(tmp_path / "state.duckdb"),
                        outputs=OutputSpec(output=str(tmp_path / "state.jsonl")), **common)
    state_reads = list(reads)
    reads.clear()
    watched = watch_command(default_pack, sources, options, state=str(tmp_path / "watch.duckdb"),
                            every="1s", max_runs=1, outputs=OutputSpec("ocsf", output_dir=str(
                                tmp_path / "lake")), **common)
    watch_reads = list(reads)
    reads.clear()
    report = run_backtest(sources, [("default", default_pack)], options, engine="duckdb")
    backtest_reads = list(reads)

    assert len(scan.alerts) > 100
    assert _alert_keys(stateful.alerts) == _alert_keys(scan.alerts)
    assert watched.last is not None and _alert_keys(watched.last.alerts) == _alert_keys(scan.alerts)
    side = report.sides[0].rules
    by_rule = Counter(a.rule_id for a in scan.alerts)
    for rule in rules:
        mine = [a for a in scan.alerts if a.rule_id == rule.id]
        assert side[rule.id].alerts == by_rule[rule.id]
        assert side[rule.id].matched_events == scan.scan.matches[rule.id]
        assert side[rule.id] == rule_stats(rule.id, rule.severity, scan.scan.matches[rule.id],
                                           mine, report.days, 5, 0)

    inputs = len(scan.stats.files)
    assert inputs == 2
    for name, seen in (("scan", scan_reads), ("scan --state", state_reads),
                       ("watch", watch_reads)):
        assert seen == [expected_columns] * inputs, name
    with_time = tuple(sorted({*expected_columns, "p_event_time"}))
    assert backtest_reads == [with_time] * inputs


def test_the_python_engine_reads_complete_records(default_pack, tmp_path, reads):
    run_scan(default_pack, [str(EXAMPLES)], ReadOptions(), state=None, engine="python",
             rule_ids=("AWS.VPC.InboundAdminPort",), max_samples=3, quiet=True,
             outputs=OutputSpec(output=str(tmp_path / "a.jsonl")))
    assert reads == [None, None]
