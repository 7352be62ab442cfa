"""Compiled conditions find fields whatever their case, as Panther's event does.

A batch whose columns are named in another case than the rules write them (``DSTPORT`` for
``dstPort``) must give the same verdicts through SQL as through Python, and need Python no more
often than the batch with the rules' own names.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given

from flowwarden.engine.local.vectorized import compile_pack, evaluate_batch
from flowwarden.logic.render.sql import INT, NULL, STR, field_indices, resolve_path
from flowwarden.rules.loader import load_pack
from tests.logic.flow_events import ocsf_batch, vpcflow_batch
from tests.logic.test_differential import CODES, KINDS, SETTINGS, check_batch, to_table

RENAMES: dict[str, Callable[[str], str]] = {
    "lower": str.lower, "upper": str.upper, "swapcase": str.swapcase}


def renamed(value: Any, rename: Callable[[str], str]) -> Any:
    """``value`` with every key but the ``p_`` ones renamed (the engine reads those exactly)."""
    if isinstance(value, dict):
        return {(k if k.startswith("p_") else rename(k)): renamed(v, rename)
                for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, rename) for v in value]
    return value


def check_renamed(kind: str, records: list[dict[str, Any]], log_type: str) -> None:
    """Renamed batches agree with Python (``check_batch`` asserts it row by row). How often
    Python is asked may change: a data-model path, looked up by its exact names, is absent
    from a renamed batch, and a rule may then raise on the None where it did not before."""
    check_batch(kind, records, log_type)
    for rename in RENAMES.values():
        check_batch(kind, [renamed(r, rename) for r in records], log_type)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(records=vpcflow_batch())
def test_renamed_vpcflow_batches_agree(kind, records):
    check_renamed(kind, records, "AWS.VPCFlow")


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(records=ocsf_batch())
def test_renamed_ocsf_batches_agree(kind, records):
    check_renamed(kind, records, "OCSF.NetworkActivity")


def test_field_indices_prefer_the_exact_name_then_the_first_in_order():
    schema = pa.schema([("DstPort", pa.int64()), ("dstport", pa.string()),
                        ("SRC", pa.int64()), ("src", pa.int64()), ("src", pa.int64())])
    assert field_indices(schema, "dstport") == [1]
    assert field_indices(schema, "DSTPORT") == [0]  # no exact name: the first in order
    assert field_indices(schema, "Src") == [2]
    assert field_indices(schema, "src") == [3, 4]  # a duplicate: the renderer asks Python
    assert field_indices(schema, "nope") == []


def test_resolve_path_is_case_insensitive_at_every_level():
    schema = pa.schema([("Dst_Endpoint", pa.struct([("PORT", pa.int64()), ("Ip", pa.string())]))])
    assert resolve_path(schema, ("dst_endpoint", "port")) == (INT, [0, 0])
    assert resolve_path(schema, ("DST_ENDPOINT", "ip")) == (STR, [0, 1])
    assert resolve_path(schema, ("dst_endpoint", "host")) == (NULL, [])


RULE = """\
AnalysisType: rule
Filename: {name}.py
RuleID: "Case.{name}"
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Low
"""
SOURCES = {
    "Get": 'def rule(event):\n    return event.get("DSTPORT", 22) == 22\n',
    "Deep": 'def rule(event):\n    return event.deep_get("Endpoint", "PORT", default=0) > 10\n',
    "Sub": 'def rule(event):\n    return event.get("action") == "ACCEPT"\n',
}


@pytest.fixture(scope="module")
def case_pack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("case_rules")
    for name, source in SOURCES.items():
        (root / f"{name}.yml").write_text(RULE.format(name=name))
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    pack = load_pack([Path(root)])
    assert not pack.problems, pack.problems
    return pack


@pytest.mark.parametrize("records", [
    # only a differently cased column: SQL reads it
    [{"dstPort": 22, "endpoint": {"port": 99}, "Action": "ACCEPT"},
     {"dstPort": 23, "endpoint": {"port": 5}, "Action": "REJECT"},
     {"dstPort": None, "endpoint": None, "Action": None}],
    # two candidates: the exact name wins, else the first in column order
    [{"dstport": 1, "DSTPORT": 22, "Endpoint": {"port": 1}, "endpoint": {"port": 99},
      "ACTION": "REJECT", "Action": "ACCEPT"},
     {"dstport": 22, "DSTPORT": None, "Endpoint": {"port": 50}, "endpoint": None,
      "ACTION": "ACCEPT", "Action": "REJECT"}],
    # no candidate at all: get's default, deep_get's default
    [{"srcPort": 1}],
])
def test_python_and_sql_agree_on_cased_columns(case_pack, records):
    compiled = compile_pack(case_pack)
    table = to_table([{**r, "p_log_type": "AWS.VPCFlow"} for r in records])
    verdicts = evaluate_batch(compiled, table, "AWS.VPCFlow")
    for rule in case_pack.rules:
        codes = [CODES[int(c)] for c in verdicts[rule.id].codes]
        truth = [rule.evaluate(case_pack.event(row)).matched for row in table.to_pylist()]
        assert "python" not in codes, (rule.id, codes)
        assert codes == truth, (rule.id, codes, truth)


def test_cased_columns_change_verdicts_as_python_does(case_pack):
    """Guards the test above against agreeing by always saying no."""
    compiled = compile_pack(case_pack)
    table = to_table([{"DstPort": 22, "ENDPOINT": {"Port": 99}, "ACTION": "ACCEPT",
                       "p_log_type": "AWS.VPCFlow"}])
    verdicts = evaluate_batch(compiled, table, "AWS.VPCFlow")
    assert {rule_id: int(v.codes[0]) for rule_id, v in verdicts.items()} == {
        "Case.Get": 1, "Case.Deep": 1, "Case.Sub": 1}
