"""The scanner (``flowwarden.engine.scan``): what the duckdb engine does after a match.

On a match the compiled key functions (dedup, unique, and the title where dedup falls back to
it) group the event, records are built only for events that become an alert's first event or
a sample, and the alert functions run once per alert, on its first event. The python engine
(every rule on every event) is the reference: both must give the same alerts and errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import flowwarden.engine.local as local
from flowwarden.engine.scan import Scanner, ScanResult
from flowwarden.rules.loader import Pack, load_pack, resolve_pack_paths
from tests.logic.flow_events import ocsf_batch, vpcflow_batch
from tests.logic.test_differential import PARTIAL_RULES, SETTINGS, to_table

PACKS = {"builtin": load_pack(resolve_pack_paths([])),
         "tuned": load_pack(resolve_pack_paths(["tuned"])),
         "partial": load_pack([PARTIAL_RULES])}
T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
TIMES = st.none() | st.sampled_from([T0, T0 + timedelta(minutes=59), T0 + timedelta(hours=1),
                                     T0 - timedelta(microseconds=1)])


@dataclass
class Item:
    log_type: str
    source: str
    batch: pa.RecordBatch


def scan(pack: Pack, engine: str, items: list[Item], max_samples: int = 3) -> ScanResult:
    return Scanner(pack, pack.active_rules(), engine, max_samples).scan(items)


def same(pack: Pack, items: list[Item], max_samples: int = 3) -> ScanResult:
    compiled = scan(pack, "duckdb", items, max_samples)
    python = scan(pack, "python", items, max_samples)
    assert [a.to_dict() for a in compiled.alerts] == [a.to_dict() for a in python.alerts]
    assert compiled.matches == python.matches
    assert compiled.error_counts == python.error_counts
    return compiled


def batch_of(records: list[dict[str, Any]], times: list[datetime | None]) -> pa.RecordBatch:
    timed = [{**r, "p_event_time": t} for r, t in zip(records, times, strict=False)]
    table = to_table(timed)
    kind = pa.timestamp("us", tz="UTC")
    table = table.set_column(table.schema.get_field_index("p_event_time"), "p_event_time",
                             pa.array([r["p_event_time"] for r in timed], kind))
    return table.combine_chunks().to_batches()[0]


@pytest.mark.parametrize("kind", sorted(PACKS))
@SETTINGS
@given(records=st.lists(vpcflow_batch(), min_size=1, max_size=3),
       times=st.lists(TIMES, min_size=18, max_size=18), max_samples=st.sampled_from([0, 1, 3]))
def test_vpcflow_alerts_equal_the_python_engines(kind: str, records: list[list[dict[str, Any]]],
                                                 times: list[datetime | None],
                                                 max_samples: int) -> None:
    items = [Item("AWS.VPCFlow", f"s{i % 2}", batch_of(r, times[6 * i:]))
             for i, r in enumerate(records)]
    same(PACKS[kind], items, max_samples)


@pytest.mark.parametrize("kind", sorted(PACKS))
@SETTINGS
@given(records=ocsf_batch(), times=st.lists(TIMES, min_size=6, max_size=6))
def test_ocsf_alerts_equal_the_python_engines(kind: str, records: list[dict[str, Any]],
                                              times: list[datetime | None]) -> None:
    same(PACKS[kind], [Item("OCSF.NetworkActivity", "s", batch_of(records, times))])


def inbound(count: int, sources: int = 1) -> pa.RecordBatch:
    """``count`` inbound flows to one port, from ``sources`` addresses (one alert each)."""
    records = [{"srcAddr": f"45.33.32.{i % sources}", "dstAddr": "10.0.0.5", "srcPort": 40000 + i,
                "dstPort": 8080, "protocol": 6, "action": "ACCEPT", "status": "OK",
                "p_log_type": "AWS.VPCFlow"} for i in range(count)]
    return batch_of(records, [T0 + timedelta(seconds=i) for i in range(count)])


def test_records_are_built_only_for_first_events_and_samples(monkeypatch) -> None:
    built: list[int] = []
    original = local.panther_records

    def counting(batch: pa.RecordBatch) -> list[dict[str, Any]]:
        built.append(batch.num_rows)
        return original(batch)

    monkeypatch.setattr(local, "panther_records", counting)
    pack = PACKS["builtin"]
    items = [Item("AWS.VPCFlow", "f", inbound(2000, sources=2))]
    result = same(pack, items, max_samples=3)
    alerts = [a for a in result.alerts if a.rule_id == "AWS.VPC.InboundPortWhitelist"]
    assert len(alerts) == 2 and {a.event_count for a in alerts} == {1000}
    # the duckdb engine ran first: no record as a Python object (the samples and alert
    # values of each alert's first three events were rendered by the query); the python
    # engine then builds all 2000
    assert built == [0, 2000]
    assert all(len(a.samples) == 3 for a in alerts)


def test_alert_functions_run_once_per_alert_and_their_errors_count_there(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yml").write_text(
        "AnalysisType: rule\nRuleID: Test.Once\nFilename: r.py\nEnabled: true\n"
        "LogTypes: [AWS.VPCFlow]\nSeverity: Low\nDedupPeriodMinutes: 60\n")
    (rules / "r.py").write_text(
        "def rule(event):\n    return event.get('dstPort') == 8080\n\n"
        "def dedup(event):\n    return event.get('srcAddr')\n\n"
        "def title(event):\n    return f\"from {event.get('srcAddr')}\"\n\n"
        "def alert_context(event):\n    raise ValueError('context')\n")
    pack = load_pack([str(tmp_path)])
    assert not pack.problems
    result = same(pack, [Item("AWS.VPCFlow", "f", inbound(300, sources=3))])
    assert [a.title for a in result.alerts] == ["from 45.33.32.0", "from 45.33.32.1",
                                                "from 45.33.32.2"]
    assert result.matches["Test.Once"] == 300
    assert result.error_counts[("Test.Once", "alert_context")] == 3  # one per alert
