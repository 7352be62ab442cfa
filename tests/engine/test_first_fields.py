"""A first event's alert values from compiled columns (``first_fields``) as ``Rule.alert_values``
sets them from the same values."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from flowwarden.engine.local import first_fields
from flowwarden.rules.rule import MAX_TITLE, Rule, RuleResult

RULE = Rule("R", "r.yml", "r.py", ("AWS.VPCFlow",), "Medium", True)


def test_first_fields_follow_rule_alert_values() -> None:
    severities = ["high", "DEFAULT", None, "loud", "Critical"]
    titles = ["t" * (MAX_TITLE + 5), "x", None, "y", "z"]
    table = pa.table({
        "title": titles, "title:python": [False] * 5,
        "severity": severities, "severity:python": [False] * 5,
        "alert_context": ['{"a": 1}', "null", None, "{}", '{"b": "c"}'],
        "runbook": ["r", None, "", "s", "t"],
    })
    keys = pa.array([None, "kept", None, None, None], pa.string())
    fields, odd = first_fields(RULE, keys, table)
    assert odd.tolist() == [False, False, False, True, False]  # "loud" names no level
    for index in np.flatnonzero(~odd).tolist():
        result = RuleResult("R", title=keys[index].as_py())
        assert RULE.alert_values(result, {"title": titles[index], "severity": severities[index],
                                          "runbook": table["runbook"][index].as_py()})
        assert fields["title"][index].as_py() == result.title
        assert fields["severity"][index].as_py() in (result.severity, None)
        assert (fields["severity"][index].as_py() or RULE.severity) == result.severity
        assert fields["runbook"][index].as_py() == result.runbook
    assert fields["context"].to_pylist() == ['{"a": 1}', None, None, "{}", '{"b": "c"}']
    assert "destinations" not in fields and "description" not in fields
