"""The duckdb engine's two-phase scan: phase 1 reads only the columns the compiled conditions use,
phase 2 loads complete records for matches and rows left to Python. Alerts, counts and read
statistics must be exactly those of a full read (and of the python engine)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from flowwarden.alerts.formats import ALERT_FORMATS
from flowwarden.alerts.formats.jsonl import alert_json
from flowwarden.engine.scan import Scanner
from flowwarden.errors import LogFormatError
from flowwarden.logic.extract import extract_rule
from flowwarden.logs import LogBatch, ReadOptions, read
from flowwarden.logs.parquet import RowRanges
from flowwarden.rules.loader import load_pack
from tests.flowgen.generate import generate_flows, write_parquet
from tests.logs.helpers import corrupt_column_chunk, parquet_with_text_numbers

SPEC = ("AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.InboundPortWhitelist")


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated flows in several row groups, with bad values in columns the rules read
    (``dstport``) and in columns they do not (``bytes``, ``start``)."""
    return parquet_with_text_numbers(tmp_path_factory.mktemp("phases") / "flows.parquet", 8000,
                                     9, 2000, spoil_seed=3, spoiled=40,
                                     bad=["abc", "-", "", "7e3"], row_group_size=1700)


def outcome(scanner: Scanner, batches: Any) -> dict[str, Any]:
    result = scanner.scan(batches)
    alerts = []
    out = io.BytesIO()
    ALERT_FORMATS["jsonl"].write(result.alerts, out)
    written = out.getvalue().decode().splitlines()
    for alert, line in zip(result.alerts, written, strict=True):
        assert alert_json(alert) == line  # as an Alert or as the line the query wrote
        data = json.loads(line)
        data["samples"] = [{k: v for k, v in s.items() if k != "p_parse_time"}
                           for s in data.get("samples") or []]
        alerts.append(data)
    return {"alerts": alerts, "records": result.records, "matches": dict(result.matches),
            "errors": dict(result.error_counts)}


@pytest.mark.parametrize("batch_size", [600, 65536])
@pytest.mark.parametrize("spec_only", [True, False], ids=["spec", "pack"])
def test_two_phases_equal_a_full_read_and_the_python_engine(default_pack, flows, batch_size,
                                                            spec_only):
    rules = default_pack.active_rules(SPEC if spec_only else ())
    options = ReadOptions(batch_size=batch_size)
    projected_reader = read([str(flows)], options)
    projected = outcome(Scanner(default_pack, rules, "duckdb", 5), projected_reader)
    full_reader = read([str(flows)], options)
    full = outcome(Scanner(default_pack, rules, "duckdb", 5), iter(full_reader))
    python_reader = read([str(flows)], options)
    python = outcome(Scanner(default_pack, rules, "python", 5), python_reader)
    assert projected == full == python
    stats = projected_reader.stats.to_json()
    assert stats == full_reader.stats.to_json() == python_reader.stats.to_json()
    assert stats["totals"]["rejected"] > 0 and stats["totals"]["read"] == 8000
    assert projected["alerts"] and projected["records"] == stats["totals"]["parsed"]


def test_phase_one_reads_only_the_condition_columns(default_pack, flows):
    scanner = Scanner(default_pack, default_pack.active_rules(SPEC), "duckdb")
    # the conditions' and key functions' columns, and the event time that orders matches; no
    # p_log_type: a batch is of its item's log type, so no row's is tested
    assert scanner.columns() == ("dstAddr", "dstPort", "dst_endpoint", "p_event_time",
                                 "srcAddr", "src_endpoint")
    seen: list[list[str]] = []
    original = scanner.evaluation.evaluate

    def spy(item, rules, handle):
        seen.append(item.batch.schema.names)
        return original(item, rules, handle)

    scanner.evaluation.evaluate = spy  # type: ignore[method-assign]
    scanner.scan(read([str(flows)]))
    assert seen and all(names == ["srcAddr", "dstAddr", "dstPort", "p_event_time"]
                        for names in seen)
    queries = [q.select("batch") or "" for q in scanner.evaluation.compiled.evaluator._queries.values()]
    assert queries and not any("p_log_type" in sql for sql in queries)
    assert Scanner(default_pack, default_pack.active_rules(SPEC), "python").columns() is None


def test_phase_two_loads_each_batch_once_and_skips_batches_without_candidates(
        default_pack, flows, monkeypatch):
    loads: list[int] = []
    original = LogBatch.full_rows

    def counting(self, positions):
        loads.append(len(positions))
        return original(self, positions)

    requests: list[object] = []  # each a range read, or rows read by position
    read_range, read_at = RowRanges.read, RowRanges.at
    monkeypatch.setattr(LogBatch, "full_rows", counting)
    monkeypatch.setattr(RowRanges, "read", lambda self, a, b: requests.append((a, b))
                        or read_range(self, a, b))

    def at(self, rows):
        found = read_at(self, rows)
        if found is not None:
            requests.append(rows)
        return found

    monkeypatch.setattr(RowRanges, "at", at)
    # SkipData matches a handful of rows: most batches need no complete records at all.
    rules = default_pack.active_rules(["AWS.VPC.SkipDataLogStatus"])
    reader = read([str(flows)], ReadOptions(batch_size=100))
    result = Scanner(default_pack, rules, "duckdb").scan(reader)
    batches = len(list(read([str(flows)], ReadOptions(batch_size=100))))
    assert 0 < len(loads) < batches / 4
    assert sum(loads) == result.matches["AWS.VPC.SkipDataLogStatus"]
    assert len(requests) == len(loads)
    assert all(not isinstance(r, tuple) for r in requests)  # a local file: by position


def test_rows_left_to_python_get_complete_records(tmp_path: Path, flows):
    """A rule reading a column through code the extractor cannot compile (`sum()` in a helper)
    is a residual: phase 2 hands Python the complete record, so the python-only column is
    there."""
    (tmp_path / "bytes_rule.yml").write_text(
        "AnalysisType: rule\nFilename: bytes_rule.py\nRuleID: Big.Bytes\nEnabled: true\n"
        "LogTypes: [AWS.VPCFlow]\nSeverity: Low\n")
    (tmp_path / "bytes_rule.py").write_text(
        "def big(event):\n    return sum([event.get('bytes') or 0]) > 100000\n\n"
        "def rule(event):\n    return event.get('dstPort') == 443 and big(event)\n\n"
        "def title(event):\n    return f\"{event.get('srcAddr')} {event.get('interfaceId')}\"\n")
    pack = load_pack([tmp_path])
    assert extract_rule(pack.rule("Big.Bytes")).status == "partial"  # the residual this needs
    rules = pack.active_rules(())
    projected = outcome(Scanner(pack, rules, "duckdb"), read([str(flows)]))
    python = outcome(Scanner(pack, rules, "python"), read([str(flows)]))
    assert projected == python and projected["matches"]["Big.Bytes"] > 0
    scanner = Scanner(pack, rules, "duckdb")
    scanner.scan(read([str(flows)]))
    assert 0 < scanner.result.python_rows < 8000 and "bytes" not in scanner.columns()


def test_corrupt_bytes_in_a_column_only_phase_two_reads_are_an_error(tmp_path: Path,
                                                                     default_pack):
    path = tmp_path / "corrupt.parquet"
    write_parquet(generate_flows(4000, seed=4, batch_size=1000), str(path))
    # (not "bytes": 64 bytes past its middle reach "start", which phase 1 reads for event times)
    corrupt_column_chunk(path, "packets", 2)
    # phase 2 reads the records of first events and samples: with many samples, of every match
    scanner = Scanner(default_pack, default_pack.active_rules(SPEC), "duckdb", max_samples=4000)
    with pytest.raises(LogFormatError, match="Parquet read failed in rows"):
        scanner.scan(read([str(path)]))


def test_readers_projected_by_the_caller_still_scan_exactly(default_pack, flows):
    rules = default_pack.active_rules(SPEC)
    expected = outcome(Scanner(default_pack, rules, "python"), read([str(flows)]))
    narrow = ReadOptions(columns=("status",))  # none of the columns the rules read
    for engine in ("duckdb", "python"):
        assert outcome(Scanner(default_pack, rules, engine), read([str(flows)], narrow)) == expected
