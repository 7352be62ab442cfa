"""The one scan loop: scan, scan --state, watch and backtest give the same alerts, and each reads
only the projected columns in phase 1."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

import pytest

from flowwarden.alerts import groupstore
from flowwarden.alerts.delivery import OutputSpec
from flowwarden.cli.console import run_scan, watch_command
from flowwarden.engine import local, loop
from flowwarden.engine.engines import engine_named
from flowwarden.engine.loop import phase_one_columns, scan_loop
from flowwarden.engine.scan import ScanResult
from flowwarden.logs import ReadOptions, read
from flowwarden.logs.reader import LogReader
from flowwarden.runs.backtest import rule_stats, run_backtest
from tests.engine.test_enrichment import comparable
from tests.flowgen.generate import generate_flows, write_parquet

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


@pytest.fixture(scope="module")
def mixed_flows(tmp_path_factory) -> str:
    """Clean traffic, then some with attacks, then clean again: 24,000 records."""
    path = str(tmp_path_factory.mktemp("mixed") / "flows.parquet")
    start = datetime(2024, 3, 1, tzinfo=UTC)
    write_parquet(chain(generate_flows(6000, seed=1, clean=True, batch_size=2000, start=start),
                        generate_flows(2000, seed=2, batch_size=2000, start=start),
                        generate_flows(16000, seed=3, clean=True, batch_size=2000, start=start)),
                  path)
    return path


def test_phase_one_batches_grow_while_few_rows_match_and_the_alerts_stay_the_same(
        default_pack, mixed_flows, monkeypatch):
    path = mixed_flows
    # the rules that rarely match clean traffic (InboundPortWhitelist matches every reply)
    rules = [r for r in default_pack.active_rules() if r.id not in (
        "AWS.VPC.InboundPortWhitelist", "AWS.VPC.UnapprovedOutboundDNS")]

    def scanned() -> tuple[list[int], ScanResult]:
        scanner = engine_named("duckdb").scanner(default_pack, rules)
        sizes: list[int] = []
        scan_loop(read([path], ReadOptions(batch_size=500)), [scanner],
                  observe=lambda batch: sizes.append(batch.num_rows))
        return sizes, scanner.finish()

    monkeypatch.setattr(loop, "PHASE_ONE_BATCH", 1000)
    monkeypatch.setattr(loop, "RARE_BATCH", 1000)
    fixed_sizes, fixed = scanned()
    monkeypatch.setattr(loop, "RARE_BATCH", 4000)
    sizes, grown = scanned()

    assert fixed_sizes == [1000] * 24
    assert sum(sizes) == 24000 and sizes[0] == 1000 and 4000 in sizes
    # the attack traffic in the middle matches often: the batches after it are small again
    after = sizes[sizes.index(4000):-1]
    assert 1000 in after
    assert fixed.matches == grown.matches and fixed.matches["AWS.VPC.PortScan"] > 100
    assert _alert_keys(grown.alerts) == _alert_keys(fixed.alerts)


def test_a_batch_handled_in_slices_gives_the_same_alerts(default_pack, mixed_flows, monkeypatch):
    def scanned() -> ScanResult:
        scanner = engine_named("duckdb").scanner(default_pack, default_pack.active_rules())
        scan_loop(read([mixed_flows]), [scanner])
        return scanner.finish()

    whole = scanned()
    slices: list[int] = []
    original = local.match_slices

    def recording(verdicts, rows, limit=None):
        found = original(verdicts, rows, limit)
        slices.append(len(found))
        return found

    monkeypatch.setattr(local, "SLICE_MATCHES", 300)
    monkeypatch.setattr(local, "match_slices", recording)
    monkeypatch.setattr(groupstore, "HELD_PICKS", 50)  # rendered picks stored in parts too
    parts = scanned()
    assert max(slices) > 10  # most of the default pack's matches are InboundPortWhitelist's
    assert parts.matches == whole.matches
    assert comparable(parts.alerts) == comparable(whole.alerts)
