"""``event.lookup(table, key)``: Panther's signature and semantics, answered by a lookup
function when one is set (a scan's tables) and by the test event's ``_mocked_lookup_data_``
otherwise, as in Panther's test tool."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowwarden.rules.event import MOCKED_LOOKUP_DATA, PantherEvent
from flowwarden.rules.loader import Pack, load_pack
from flowwarden.rules.testing import run_tests

RULE_PY = '''
def rule(event):
    row = event.lookup("asset_owners", event.get("dstAddr"))
    return bool(row) and row.get("tier") == "prod"


def title(event):
    return f"prod host of {event.lookup('asset_owners', event.get('dstAddr'))['owner']}"
'''
RULE_YML = """AnalysisType: rule
RuleID: Test.Lookup
Filename: lookup_rule.py
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Low
Tests:
  - Name: mocked prod row
    ExpectedResult: true
    Log:
      dstAddr: 10.0.0.5
      _mocked_lookup_data_:
        asset_owners:
          10.0.0.5: {owner: payments, tier: prod}
  - Name: mocked dev row
    ExpectedResult: false
    Log:
      dstAddr: 10.0.0.5
      _mocked_lookup_data_:
        asset_owners:
          10.0.0.5: {owner: payments, tier: dev}
  - Name: no mocked data expects an alert
    ExpectedResult: true
    Log:
      dstAddr: 10.0.0.5
"""


def write_pack(tmp: Path) -> Pack:
    (tmp / "lookup_rule.py").write_text(RULE_PY)
    (tmp / "lookup_rule.yml").write_text(RULE_YML)
    return load_pack([tmp])


def test_rule_tests_answer_lookups_from_their_mocked_data(tmp_path: Path) -> None:
    report = run_tests(write_pack(tmp_path))
    verdicts = {o.name: (o.passed, o.reason) for o in report.outcomes}
    assert verdicts["mocked prod row"] == (True, "")
    assert verdicts["mocked dev row"] == (True, "")
    # without mocked data (and no lookup function) lookup answers None: the rule cannot match
    assert verdicts["no mocked data expects an alert"] == (False, "expected True, got False")


def test_a_pack_lookup_function_answers_instead_of_the_mocked_data(tmp_path: Path) -> None:
    pack = write_pack(tmp_path)
    asked: list[tuple[str, object]] = []

    def lookup(table: str, key: object) -> dict[str, str] | None:
        asked.append((table, key))
        return {"owner": "search", "tier": "prod"} if key == "10.0.0.9" else None

    pack.lookup_function = lookup
    rule = pack.rule("Test.Lookup")
    event = pack.event({"dstAddr": "10.0.0.9",
                        MOCKED_LOOKUP_DATA: {"asset_owners": {"10.0.0.9": {"tier": "dev"}}}})
    result = rule.evaluate(event)
    assert result.matched and result.title == "prod host of search"
    assert asked[0] == ("asset_owners", "10.0.0.9")
    assert not rule.evaluate(pack.event({"dstAddr": "10.0.0.1"})).matched


def test_rows_come_back_read_only_and_missing_tables_answer_none() -> None:
    event = PantherEvent({}, lookup_function=lambda table, key: {"tags": ["a"]} if table == "t"
                         else None)
    row = event.lookup("t", "k")
    assert list(row["tags"]) == ["a"]
    with pytest.raises(TypeError):  # read-only, as Panther's rows are
        row["tags"] = []
    assert event.lookup("other", "k") is None
    assert PantherEvent({MOCKED_LOOKUP_DATA: {"t": {}}}).lookup("t", "k") is None


def test_doctests_of_the_event_module() -> None:
    import doctest

    from flowwarden.rules import event

    result = doctest.testmod(event)
    assert result.attempted >= 3 and result.failed == 0
