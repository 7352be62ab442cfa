"""Alert functions as Panther runs them: its order, its dedup fallbacks, any mapping as context;
and rule YAML read as YAML 1.2, as Panther's test tool reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from flowwarden.engine.local import match_columns
from flowwarden.errors import RuleLoadError
from flowwarden.rules.rule import dedup_string
from flowwarden.yamlfile import load_yaml
from tests.rules.test_rule import EVENT, make_rule

ORDER = ["title", "description", "reference", "severity", "runbook", "destinations", "dedup",
         "alert_context", "unique"]


def test_alert_functions_run_in_panthers_order(tmp_path):
    calls = "\n".join(f"def {name}(e):\n    CALLS.append({name!r})\n    return {value}"
                      for name, value in [("unique", "'u'"), ("alert_context", "{}"),
                                          ("dedup", "'d'"), ("destinations", "[]"),
                                          ("runbook", "'r'"), ("severity", "'Low'"),
                                          ("reference", "'x'"), ("description", "'y'"),
                                          ("title", "'t'")])
    pack, rule = make_rule(tmp_path, f"CALLS = []\ndef rule(e): return True\n{calls}\n")
    rule.evaluate(pack.event(EVENT))
    assert rule.module.CALLS == ORDER
    rule.module.CALLS.clear()
    rule.evaluate_match(pack.event(EVENT))
    assert rule.module.CALLS == ORDER


@pytest.mark.parametrize(("source", "expected"), [
    ('def dedup(e): return ""\ndef title(e): return "T"', "defaultDedupString:T.Rule"),
    ("def dedup(e): return None\ndef title(e): return 'T'", "defaultDedupString:T.Rule"),
    ("def dedup(e): raise ValueError\ndef title(e): return 'T'", "defaultDedupString:T.Rule"),
    ('def dedup(e): return "D"\ndef title(e): return "T"', "D"),
    ('def title(e): return "T"', "T"),
    ('def title(e): return ""', "defaultDedupString:T.Rule"),
    ("", "defaultDedupString:T.Rule"),
])
def test_dedup_falls_back_as_panthers(tmp_path, source, expected):
    pack, rule = make_rule(tmp_path, f"def rule(e): return True\n{source}\n")
    assert rule.evaluate(pack.event(EVENT)).dedup == expected
    assert rule.evaluate(pack.event(EVENT), keys_only=True).dedup == expected


def test_a_rule_with_dedup_does_not_run_title_for_its_keys(tmp_path):
    pack, rule = make_rule(tmp_path, """
        CALLS = []
        def rule(e): return True
        def dedup(e): return ""
        def title(e):
            CALLS.append("title")
            return "T"
    """)
    result = rule.evaluate(pack.event(EVENT), keys_only=True)
    assert result.dedup == "defaultDedupString:T.Rule" and rule.module.CALLS == []


def _keys(columns: dict[str, list[str | None]], flags: dict[str, list[bool]]) -> pa.Table:
    data = {**{n: pa.array(v, pa.string()) for n, v in columns.items()},
            **{f"{n}:python": pa.array(v) for n, v in flags.items()}}
    return pa.table(data)


def test_compiled_keys_agree_with_python_fallbacks():
    rows = np.arange(3)
    when = np.zeros(3, dtype=np.int64)
    # a rule with dedup (and title): an empty or null dedup is the default, never the title
    keys = _keys({"dedup": ["D", "", None], "title": ["T1", "T2", "T3"]},
                 {"dedup": [False] * 3, "title": [True] * 3})
    kept, asked = match_columns("R", rows, keys, when)
    assert asked.tolist() == [False] * 3  # the title is not a key then: flags do not matter
    assert kept.dedup.to_pylist() == ["D", dedup_string("R", "", None),
                                      dedup_string("R", None, None)]
    assert kept.title.to_pylist() == [None] * 3
    # a rule without dedup: the title, else the default
    keys = _keys({"title": ["T1", "", None]}, {"title": [False, False, True]})
    kept, asked = match_columns("R", rows, keys, when)
    assert asked.tolist() == [False, False, True]
    assert kept.dedup.to_pylist() == ["T1", "defaultDedupString:R"]
    assert kept.title.to_pylist() == ["T1", ""]
    kept, asked = match_columns("R", rows, None, when)
    assert kept.dedup.to_pylist() == ["defaultDedupString:R"] * 3 and not asked.any()


NESTED = {"a": {"b": [1, 2]}}


@pytest.mark.parametrize(("source", "expected"), [
    ("def alert_context(e): return e", {**EVENT, "nested": NESTED}),
    ("def alert_context(e): return e['nested']", NESTED),
    ("from types import MappingProxyType\n"
     "def alert_context(e): return MappingProxyType({'a': {'b': (1, 2)}})", NESTED),
])
def test_alert_context_may_be_any_mapping(tmp_path, source, expected):
    pack, rule = make_rule(tmp_path, f"def rule(e): return True\n{source}\n")
    result = rule.evaluate(pack.event({**EVENT, "nested": NESTED}))
    assert "alert_context" not in result.errors
    assert result.alert_context == expected
    assert type(result.alert_context) is dict and type(result.alert_context.get("a", {})) is dict


def test_rule_yaml_reads_yaml_1_2_scalars(tmp_path: Path):
    path = tmp_path / "r.yml"
    path.write_text("values: [off, on, yes, no, NO, true, False, 0644, 1:30, 0x1F, -0b101,\n"
                    "         1_000, 2024-01-01, 2024-01-01 10:00:00, 1.5, ~]\n")
    assert load_yaml(path, RuleLoadError) == {"values": [
        "off", "on", "yes", "no", "NO", True, False, 644, "1:30", 31, -5, 1000, "2024-01-01",
        "2024-01-01 10:00:00", 1.5, None]}


def test_yaml_still_rejects_duplicate_keys(tmp_path: Path):
    path = tmp_path / "r.yml"
    path.write_text("a: off\na: on\n")
    with pytest.raises(RuleLoadError, match="duplicate key"):
        load_yaml(path, RuleLoadError)
