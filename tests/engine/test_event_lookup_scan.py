"""``event.lookup`` in a scan: the engine hands the pack its tables' lookup, so a rule asking a
table by a key of its choice gets the row (exact or longest CIDR), alike in both engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowwarden.config import parse_config
from flowwarden.engine.engines import engine_named
from flowwarden.logs import DEFAULT_OPTIONS
from flowwarden.rules.loader import Pack, load_pack

HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets " \
         "bytes start end action log-status"
FLOWS = [("198.51.100.4", "10.0.0.5"), ("198.51.100.4", "10.0.1.7"),
         ("198.51.100.4", "10.0.9.9"), ("10.0.0.5", "198.51.100.4")]
RULE_PY = '''
def rule(event):
    owner = event.lookup("owners", event.get("dstAddr"))
    return bool(owner) and owner.get("tier") == "prod"


def title(event):
    owner = event.lookup("owners", event.get("dstAddr"))
    return f"{owner['team']} ({event.get('dstAddr')} in {owner['cidr']})"
'''
RULE_YML = """AnalysisType: rule
RuleID: Test.Owners
Filename: owners.py
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Low
"""


def write(tmp: Path) -> tuple[Pack, str]:
    (tmp / "rules").mkdir()
    (tmp / "rules" / "owners.py").write_text(RULE_PY)
    (tmp / "rules" / "owners.yml").write_text(RULE_YML)
    (tmp / "owners.csv").write_text("cidr,team,tier\n10.0.0.0/16,platform,dev\n"
                                    "10.0.0.0/24,payments,prod\n10.0.1.0/24,search,prod\n")
    config = parse_config({"lookup_tables": {"owners": {
        "path": "owners.csv", "primary_key": "cidr", "match": "cidr",
        "log_types": {"AWS.VPCFlow": ["srcAddr"]}}}}, str(tmp / "flowwarden.yaml"))
    lines = [HEADER] + [f"2 1234 eni-1 {s} {d} 40000 443 6 1 60 1700000000 1700000060 ACCEPT OK"
                        for s, d in FLOWS]
    (tmp / "flows.log").write_text("\n".join(lines) + "\n")
    return load_pack([tmp / "rules"], config), str(tmp / "flows.log")


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_rules_look_rows_up_by_any_key(tmp_path: Path, engine: str) -> None:
    pack, flows = write(tmp_path)
    result = engine_named(engine).scan(pack, pack.active_rules([]), [flows],
                                       DEFAULT_OPTIONS).result
    # the table is associated with srcAddr only: the rule's lookups of dstAddr still answer
    assert sorted(a.title for a in result.alerts) == [
        "payments (10.0.0.5 in 10.0.0.0/24)", "search (10.0.1.7 in 10.0.1.0/24)"]
    assert pack.lookup_function is not None
    assert pack.lookup_function("owners", "10.0.9.9")["team"] == "platform"
    assert pack.lookup_function("no_such_table", "10.0.9.9") is None
