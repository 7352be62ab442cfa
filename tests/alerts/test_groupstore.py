"""``SqlGrouper`` (groups in DuckDB) against ``AlertGrouper`` (groups in Python, the reference):
the same matches, batch by batch, give the same alerts, in the same order, with the alert
functions run on the same first events."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import duckdb
import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flowwarden.alerts import groupstore
from flowwarden.alerts.formats import ALERT_FORMATS
from flowwarden.alerts.formats.jsonl import alert_json, dumps
from flowwarden.alerts.grouping import AlertGrouper, MatchColumns, OrderKey, micros
from flowwarden.alerts.groupstore import SqlGrouper, sample_json
from flowwarden.alerts.model import alert_id
from flowwarden.alerts.tablequery import JOINED_SAMPLES
from flowwarden.rules.rule import RuleResult
from flowwarden.runs.backtest import rule_summary
from flowwarden.runs.checkpoint import alerts_name

T0 = datetime(2024, 5, 1, 11, 50, tzinfo=UTC)


@dataclass(frozen=True)
class StubRule:
    """What grouping reads of a rule."""

    id: str
    threshold: int = 1
    dedup_minutes: int = 60
    has_unique: bool = False
    display_name: str = ""
    severity: str = "MEDIUM"
    mitre: tuple[str, ...] = ("TA0011:T1071",)
    runbook: str = "look"
    reference: str = ""
    description: str = "stub"
    log_types: tuple[str, ...] = ("AWS.VPCFlow",)

    def function(self, name: str) -> Any:
        return (lambda event: None) if name == "unique" and self.has_unique else None


RULES = [StubRule("A"), StubRule("B", threshold=3, dedup_minutes=15),
         StubRule("C", threshold=2, has_unique=True, dedup_minutes=5)]


@dataclass
class Completions:
    """A ``complete`` hook that sets what alert functions would, and remembers its calls."""

    calls: list[tuple[str, OrderKey]] = field(default_factory=list)

    def __call__(self, rule: Any, result: RuleResult, key: OrderKey,
                 record: dict[str, Any]) -> None:
        self.calls.append((rule.id, key))
        result.title = f"{rule.id} saw {record['n']}"
        result.alert_context = {"n": record["n"], "when": record["p_event_time"],
                                "tags": ("x", record["n"])}
        result.keys_only = False


match = st.fixed_dictionaries({
    "rule": st.sampled_from(range(len(RULES))),
    "dedup": st.sampled_from(["d1", "d2", "défaut", "x" * 30, None]),  # None: the default
    "unique": st.one_of(st.none(), st.sampled_from(["u1", "u2", "u3"])),
    "minute": st.sampled_from([0, 1, 14, 15, 59, 61, 90]),  # ties and window edges
    "second": st.sampled_from([0, 0, 30]),
    "compiled": st.booleans(),
    "ready": st.booleans(),  # a per-match result whose alert functions already ran
    "empty": st.booleans(),  # a record field that is None (samples drop it)
})
batches = st.lists(st.tuples(st.sampled_from(["s3://b/one.gz", "s3://b/two.gz"]),
                             st.lists(match, max_size=25)), min_size=1, max_size=5)


def feed(grouper: Any, plan: list[tuple[str, list[dict[str, Any]]]],
         rendered: bool = False) -> None:
    """Each batch as a scanner hands it over: compiled matches per rule without records (then
    ``fill``), the others one by one with their records, then ``end_batch``."""
    offsets: dict[str, int] = {}
    for source, rows in plan:
        offset = offsets.get(source, 0)
        offsets[source] = offset + len(rows)
        records = [record(m, offset + i) for i, m in enumerate(rows)]
        wanted: dict[OrderKey, dict[str, Any]] = {}
        for index, rule in enumerate(RULES):
            chosen = [i for i, m in enumerate(rows) if m["rule"] == index and m["compiled"]]
            columns = MatchColumns(
                rows=np.array(chosen, dtype=np.int64),
                dedup=pa.array([rows[i]["dedup"] or f"defaultDedupString:{rule.id}"
                                for i in chosen], type=pa.string()),
                event_us=np.array([micros(records[i]["p_event_time"]) for i in chosen],
                                  dtype=np.int64),
                unique=pa.array([rows[i]["unique"] for i in chosen], type=pa.string())
                if rule.has_unique else None,
                title=pa.array([None] * len(chosen), type=pa.string()))
            if rendered:
                picks = grouper.wanted(rule, columns, source, offset)
                grouper.add_rendered(picks, *_rendered(rule.id, [records[r] for r in picks.rows]))
                continue
            for row, result, key in grouper.add_matches(rule, columns, source, offset):
                assert not result.title and result.keys_only
                wanted[key] = records[row]
        for i, m in enumerate(rows):
            if m["compiled"]:
                continue
            rule = RULES[m["rule"]]
            result = RuleResult(rule.id, matched=True, dedup=m["dedup"],
                                unique=m["unique"] if rule.has_unique else None,
                                keys_only=not m["ready"])
            if m["ready"]:
                result.title, result.severity = f"ready {i}", "HIGH"
                result.alert_context = {"ready": True}
            key = (records[i]["p_event_time"], source, offset + i)
            assert not grouper.add(rule, result, key, records[i])
        grouper.fill(wanted)
        grouper.end_batch()


def encoded(alerts: Any) -> str:
    out = io.BytesIO()
    ALERT_FORMATS["jsonl"].write(alerts, out)
    return out.getvalue().decode()


def record(m: dict[str, Any], position: int) -> dict[str, Any]:
    when = T0 + timedelta(minutes=m["minute"], seconds=m["second"])
    return {"p_event_time": when, "n": position, "dstPort": None if m["empty"] else 53,
            "nested": {"a": None, "b": [1, None]},
            # a control character SQL's JSON escapes differently: Python writes that sample
            "note": "tab\there\x1b" if position % 3 == 0 else "plain"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=batches, max_samples=st.sampled_from([0, 1, 2, 3, JOINED_SAMPLES + 2]))
def test_groups_in_duckdb_give_the_python_groupers_alerts(plan, max_samples):
    reference_calls, calls = Completions(), Completions()
    reference = AlertGrouper(max_samples, reference_calls)
    grouper = SqlGrouper(max_samples, calls)
    feed(reference, plan)
    feed(grouper, plan)
    expected = reference.collect()
    found = grouper.collect()
    assert len(found) == len(expected)
    assert [a.to_dict() for a in found] == [a.to_dict() for a in expected]
    assert calls.calls == reference_calls.calls  # the same first events, once per alert
    written = b"".join(found.json_lines()).decode()
    assert written == "".join(alert_json(a) + "\n" for a in expected)
    assert written == encoded(found)  # the JSONL format writes the query's lines
    with patch.object(groupstore, "LINE_CHUNK", 2):  # a query per two alerts: the same lines
        assert b"".join(found.json_lines()).decode() == written
        assert [a.to_dict() for a in found] == [a.to_dict() for a in expected]  # and alerts
    assert [a.to_dict() for a in found] == [a.to_dict() for a in found]  # walked again
    assert alerts_name(found) == alerts_name(list(expected))  # the digest SQL writes is Python's
    with patch.object(groupstore, "IDS_PER_SORT", 1):  # sorted by id a range at a time
        assert alerts_name(found) == alerts_name(list(expected))
    counts: dict[str, int] = {}
    for alert in expected:
        counts[alert.rule_id] = counts.get(alert.rule_id, 0) + 1
    assert found.count_by_rule() == counts
    assert found.rule_summaries(2) == {  # backtest's figures, in DuckDB and in Python
        rule: rule_summary([a for a in expected if a.rule_id == rule], 2) for rule in counts}


class SortsOutOfMemory:
    """A grouper's connection on which ordering a whole table at once runs out of memory, as
    at tens of millions of alerts, so that each is made in parts (``util.ordered``)."""

    TABLES = ("numbered", "alerts", "kept_ids")

    def __init__(self, con: Any) -> None:
        self.con = con
        self.parts: dict[str, int] = {}

    def execute(self, sql: str, *args: Any) -> Any:
        head = sql.lstrip()
        for table in self.TABLES:
            if head.startswith(f"CREATE TABLE {table} AS") and "WHERE false" not in head:
                raise duckdb.OutOfMemoryException("no room to order it at once")
            if head.startswith(f"INSERT INTO {table} "):
                self.parts[table] = self.parts.get(table, 0) + 1
        return self.con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=batches, max_samples=st.sampled_from([0, 1, 3]))
def test_alerts_ordered_in_parts_are_the_alerts_ordered_at_once(plan, max_samples):
    reference = AlertGrouper(max_samples, Completions())
    grouper = SqlGrouper(max_samples, Completions())
    feed(reference, plan)
    feed(grouper, plan)
    expected = reference.collect()
    assume(len({a.first_event_time for a in expected}) > 1)  # keys to split the range on
    limited = SortsOutOfMemory(grouper.con)
    grouper.con = limited
    found = grouper.collect()
    assert [a.to_dict() for a in found] == [a.to_dict() for a in expected]
    assert b"".join(found.json_lines()).decode() == "".join(
        alert_json(a) + "\n" for a in expected)
    assert all(limited.parts[table] >= 2 for table in limited.TABLES)


def test_alert_ids_computed_in_duckdb_are_the_models():
    grouper = SqlGrouper(1)
    rows = [{"rule": 0, "dedup": d, "unique": None, "minute": m, "second": 0, "compiled": True,
             "ready": False, "empty": False}
            for d in ("a", "ü\x1f'\"\x00", "z" * 1000) for m in (0, 59, 61)]
    feed(grouper, [("mem", rows)])
    alerts = list(grouper.collect())
    assert len(alerts) == 6
    lines = b"".join(grouper.collect().identity_text()).decode().splitlines()
    assert [line.split(":")[0] for line in lines] == sorted(a.id for a in alerts)
    with patch.object(groupstore, "IDS_PER_SORT", 2):  # three ranges of ids, the same lines
        assert b"".join(grouper.collect().identity_text()).decode().splitlines() == lines
    assert all(a.id == alert_id(a.rule_id, a.dedup, a.window_start) for a in alerts)


def test_the_alert_table_reads_like_a_list():
    grouper = SqlGrouper(2)
    rows = [{"rule": 0, "dedup": f"d{i}", "unique": None, "minute": i, "second": 0,
             "compiled": i % 2 == 0, "ready": False, "empty": False} for i in range(7)]
    feed(grouper, [("mem", rows)])
    table = grouper.collect()
    every = list(table)
    assert len(table) == 7 and [a.dedup for a in every] == [f"d{i}" for i in range(7)]
    assert table[0] == every[0] and table[-1] == every[-1]
    assert table[2:5] == every[2:5] and table[::2] == every[::2]
    assert table == every and table != every[:3]
    assert grouper.collect() is table  # made once


def test_groups_below_the_threshold_give_no_alert_and_no_completion():
    calls = Completions()
    grouper = SqlGrouper(3, calls)
    rows = [{"rule": 1, "dedup": "d", "unique": None, "minute": m, "second": 0,
             "compiled": True, "ready": False, "empty": False} for m in (0, 1)]
    feed(grouper, [("mem", rows)])
    assert len(grouper.collect()) == 0 and calls.calls == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=batches, max_samples=st.sampled_from([0, 1, 2, 3, JOINED_SAMPLES + 2]))
def test_picks_rendered_in_the_query_give_the_same_alert_lines(plan, max_samples):
    """Compiled picks handed over as ``Rendered`` (sample JSON and alert values, no record)
    write the lines that records completed in Python write."""
    reference = AlertGrouper(max_samples, Completions())
    feed(reference, plan)
    grouper = SqlGrouper(max_samples, Completions())
    feed(grouper, plan, rendered=True)
    expected = reference.collect()
    found = grouper.collect()
    assert encoded(found) == "".join(alert_json(a) + "\n" for a in expected)
    assert [alert_json(a) for a in found] == [alert_json(a) for a in expected]


def _rendered(rule_id: str, records: list[dict[str, Any]]) -> tuple[pa.Array, dict[str, pa.Array]]:
    """What ``Completions`` sets, as the query renders it: samples and alert values."""
    contexts = [{"n": r["n"], "when": r["p_event_time"], "tags": ("x", r["n"])} for r in records]
    return pa.array([sample_json(r) for r in records], pa.string()), {
        "title": pa.array([f"{rule_id} saw {r['n']}" for r in records]),
        "context": pa.array([dumps(c) for c in contexts], pa.string())}


def test_the_later_samples_of_many_alerts_are_joined_beyond_the_databases_memory(tmp_path):
    # ``extra`` (each alert's samples after its first) holds sample text of a size that grows
    # with the alerts: at 30M records string_agg's ordered states ran out of the group
    # database's memory (as they do here, even in twice this database's memory). Its query
    # must spill instead: here 160 MB of samples in 128 MB.
    import duckdb

    con = duckdb.connect(config={"memory_limit": "128MB", "temp_directory": str(tmp_path),
                                 "preserve_insertion_order": False, "threads": 2})
    alerts, ranks = 100_000, 4
    con.execute(f"""CREATE TABLE kept AS SELECT a AS seq, r AS rank,
                    CASE WHEN a % 7 = 3 AND r = 3 THEN NULL
                         ELSE 'alert' || a || '-rank' || r || repeat('x', 800) END AS sample
                    FROM range({alerts}) t(a), range(1, {ranks + 1}) u(r)
                    WHERE r <= 2 + a % 3""")
    extra, _ = groupstore._lines_sql(ranks)
    con.execute(extra)
    found = dict(con.execute("SELECT seq, samples FROM extra WHERE seq < 9").fetchall())
    pad = "x" * 800
    assert found == {
        a: ", ".join(f"alert{a}-rank{r}{pad}" for r in range(2, 3 + a % 3)
                     if not (a % 7 == 3 and r == 3))
        for a in range(9)}
    assert con.execute("SELECT count(*) FROM extra").fetchone() == (alerts,)


def test_alerts_with_long_lines_are_written_in_queries_that_fit_the_databases_memory():
    # A lines query of a fixed number of alerts holds that many lines (three times over: its
    # join, the lines, their sort): at 30M flow records in 256 MB it ran out of memory. Here
    # 40,000 alerts with three samples of 1 KB (as a flow record's) make 130 MB of lines, and
    # they go out of a 128 MB database.
    rule, width, alerts, batch = RULES[0], 1000, 40_000, 30_000
    with patch.object(groupstore, "GROUP_MEMORY_MB", 128):
        grouper = SqlGrouper(3, Completions())
    for part in range(alerts * 3 // batch):  # three matches per alert
        rows = np.arange(batch, dtype=np.int64)
        ids = (rows + part * batch) // 3
        columns = MatchColumns(
            rows=rows, dedup=pa.array([f"d{i}" for i in ids], pa.string()),
            event_us=np.array([micros(T0) + int(i) * 1000 for i in ids], dtype=np.int64),
            unique=None, title=pa.array([None] * batch, pa.string()))
        picks = grouper.wanted(rule, columns, "mem", part * batch)
        samples = pa.array([f'{{"n": {int(r)}, "pad": "{"x" * width}"}}' for r in picks.rows])
        grouper.add_rendered(picks, samples, {"title": pa.array(["t"] * len(picks.rows))})
        grouper.end_batch()
    found = grouper.collect()
    assert len(found) == alerts
    written, first = 0, None
    for text in found.json_lines():
        lines = text.splitlines()
        first = first or [json.loads(line)["dedup"] for line in lines[:3]]
        assert all(len(line) > 3 * width for line in lines)
        written += len(lines)
    assert written == alerts and first == ["d0", "d1", "d2"]
    assert sum(1 for _ in found) == alerts  # walked as alerts, in queries of the same size
