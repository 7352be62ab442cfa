"""Groups carried between checkpointed runs: the kept events saved in parts are the same."""

from __future__ import annotations

import flowwarden.alerts.carryover as carryover
import flowwarden.alerts.groupstore as groupstore
from tests.runs.test_checkpoint import comparable, flow_line, run, write_flows

ADMIN = ["AWS.VPC.InboundAdminPort"]


def _two_runs(default_pack, root):
    source = root / "in"
    source.mkdir(parents=True)
    write_flows(source / "a.log", [flow_line(m % 7, src=f"45.33.32.{m % 9}", dport=22 + m % 2)
                                   for m in range(40)])
    run(default_pack, source, root / "s.duckdb", rule_ids=ADMIN, engine="duckdb")
    write_flows(source / "b.log", [flow_line(m % 5, src=f"45.33.32.{m % 11}", dport=22)
                                   for m in range(30)])
    second = run(default_pack, source, root / "s.duckdb", rule_ids=ADMIN, engine="duckdb")
    return sorted((comparable(a) for a in second.alerts), key=lambda a: a["id"])


def test_kept_events_saved_in_parts_are_the_events_saved_at_once(default_pack, tmp_path,
                                                                  monkeypatch):
    at_once = _two_runs(default_pack, tmp_path / "once")
    parts: list[int] = []
    real = carryover.save

    def counted(*args, **kwargs):
        saved = real(*args, **kwargs)
        parts.append(len(list(saved.events.iterdir())))
        return saved

    monkeypatch.setattr(carryover, "EVENTS_PER_PART", 2)
    monkeypatch.setattr(groupstore, "save", counted)
    assert _two_runs(default_pack, tmp_path / "parts") == at_once
    assert len(at_once) > 5 and min(parts) > 5
    assert all(len(a["samples"]) == min(a["event_count"], 3) for a in at_once)


def test_carried_groups_are_counted_with_more_memory_then_the_limit_is_back(default_pack,
                                                                           tmp_path, monkeypatch):
    raised: list[int] = []
    limits: list[str] = []
    real = groupstore.SqlGrouper.memory_at_least
    real_collect = groupstore.SqlGrouper.collect

    def recorded(self, megabytes):
        raised.append(megabytes)
        return real(self, megabytes)

    def collect(self):
        table = real_collect(self)
        limits.append(self.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return table

    monkeypatch.setattr(groupstore.SqlGrouper, "memory_at_least", recorded)
    monkeypatch.setattr(groupstore.SqlGrouper, "collect", collect)
    _two_runs(default_pack, tmp_path)
    assert raised.count(groupstore.CARRY_MEMORY_MB) == 2  # one per run, stored groups or none
    assert limits and all(limit.startswith("244") for limit in limits), limits  # 256 MB
