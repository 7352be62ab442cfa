"""The extraction forms of issue 17: local variables, defaults, str methods, all()/any(), and
residuals kept in their place. Their differential against ``rule()`` (Python evaluator and
DuckDB) is ``test_differential`` over ``fixtures/forms_rules``; Spark runs the same here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowwarden.engine.local.vectorized import compile_pack, evaluate_batch
from flowwarden.logic.explain import ExplainRenderer, explain_condition
from flowwarden.logic.extract import extract_rule, extract_source
from flowwarden.logic.ir import (
    And,
    Compare,
    Const,
    Contains,
    Default,
    Field,
    Get,
    Not,
    Or,
    Residual,
    Seq,
    StrCase,
    StrTest,
    Truthy,
    Udm,
)
from flowwarden.logic.render.duckdb_sql import DuckDBRenderer
from flowwarden.logic.render.python import evaluate
from flowwarden.logic.render.spark import SparkRenderer
from flowwarden.logic.scope import DEEP_GET
from flowwarden.rules.event import PantherEvent
from flowwarden.rules.loader import load_pack
from tests.engine.test_spark_render import merged_tables, spark, spark_codes  # noqa: F401
from tests.logic.flow_events import ocsf_batch, vpcflow_batch
from tests.logic.test_differential import FORMS_RULES, outcome

PORT, SRC, ACTION = Udm("destination_port"), Udm("source_ip"), Udm("action")
SCHEMA = pa.schema([("action", pa.string()), ("dstPort", pa.int64()), ("srcAddr", pa.string())])


def run(source: str) -> Any:
    source = textwrap.dedent(source)
    namespace: dict[str, Any] = {}
    exec(compile(source, "<rule>", "exec"), namespace)  # noqa: S102 - the test's own rule text
    return extract_source(source, namespace, "rule.py")


def test_a_local_is_read_where_it_is_used_and_reassigned_per_path():
    condition = run("""
        def rule(event):
            port = event.get("dstPort")
            if event.get("action") == "REJECT":
                port = 0
            return port == 22
        """)
    action, port = Field(("action",)), Field(("dstPort",))
    assert condition == And((Compare("!=", action, Const("REJECT")), Compare("==", port, Const(22))))
    # A data-model name may raise (a method): read before the test, it stays an effect there.
    kept = run("""
        def rule(event):
            port = event.udm("destination_port")
            if event.udm("action") == "REJECT":
                return False
            return port == 22
        """)
    assert kept == Or((
        And((Compare("==", ACTION, Const("REJECT")), Seq((PORT,), Const(False)))),
        And((Compare("!=", ACTION, Const("REJECT")), Compare("==", PORT, Const(22)))),
    ))


def test_a_local_that_may_raise_and_is_not_used_still_runs_first():
    condition = run("""
        def rule(event):
            name = event.udm("action").lower()
            return event.udm("destination_port") == 22
        """)
    assert condition == Seq((StrCase("lower", ACTION),), Compare("==", PORT, Const(22)))
    assert evaluate(condition, PantherEvent({"destination_port": 22, "action": "A"})) is True
    with pytest.raises(AttributeError):
        evaluate(condition, PantherEvent({"destination_port": 22}))


def test_the_upstream_spec_rule_shape_compiles_fully():
    condition = run("""
        from ipaddress import ip_network
        def rule(event):
            if event.udm("destination_port") != 53:
                return False
            source_ip = event.udm("source_ip") or "0.0.0.0/32"
            if ip_network(source_ip).is_global:
                return False
            return bool(event.udm("destination_ip"))
        """)
    assert "residual" not in str(condition)
    assert str(condition) == ('and(eq(udm.destination_port, 53), not(is_global(coalesce('
                              'udm.source_ip, "0.0.0.0/32"))), truthy(udm.destination_ip))')


@pytest.mark.parametrize(("expression", "node"), [
    pytest.param('event.get("action", "none")', Get(Field(("action",)), Const("none")), id="get"),
    pytest.param('event.get("action", None)', Field(("action",)), id="get-none"),
    pytest.param('event.deep_get("a", "b", default="")', Default(Field(("a", "b")), Const("")),
                 id="deep-get"),
    pytest.param('event.udm("action", default="x")', Default(ACTION, Const("x")), id="udm"),
    pytest.param('event.udm("action").upper()', StrCase("upper", ACTION), id="upper"),
])
def test_value_forms(expression, node):
    assert run(f"def rule(event):\n    return {expression} == 1\n") == Compare("==", node, Const(1))


def test_constants_fold():
    assert run('def rule(event):\n    return "AB".lower() == "ab"\n') == Const(True)
    assert run('def rule(event):\n    return 1 < 2\n') == Const(True)
    assert isinstance(run('def rule(event):\n    return 1 < "2"\n'), Compare)  # raises: kept


@pytest.mark.parametrize(("expression", "node"), [
    pytest.param('"x" in event.udm("action")', Contains(Const("x"), ACTION), id="in-str"),
    pytest.param('event.udm("action").startswith(("A", "B"))', StrTest("startswith", ACTION,
                                                                          ("A", "B")),
                 id="startswith-tuple"),
    pytest.param('event.udm("action").endswith("T")', StrTest("endswith", ACTION, ("T",)),
                 id="endswith"),
    pytest.param('all((event.get("a"), event.get("b")))',
                 And((Truthy(Field(("a",))), Truthy(Field(("b",))))), id="all-tuple"),
    pytest.param('any(event.get(k) == 1 for k in ("a", "b"))',
                 Or((Compare("==", Field(("a",)), Const(1)), Compare("==", Field(("b",)), Const(1)))),
                 id="any-generator"),
    pytest.param('all(event.get(k) for k in ("a", "b") if k != "a")', Truthy(Field(("b",))),
                 id="all-generator-if"),
])
def test_condition_forms(expression, node):
    assert run(f"def rule(event):\n    return {expression}\n") == node


def test_a_list_of_prefixes_is_left_to_python():
    condition = run('def rule(event):\n    return event.udm("action").startswith(["A"])\n')
    assert isinstance(condition, Residual)


def test_a_comparison_keeps_its_place_around_a_residual():
    condition = run("""
        import re
        def rule(event):
            return "gs-project-accounts" not in re.sub("x", "", event.get("a") or "")
        """)
    assert isinstance(condition, Not) and isinstance(condition.operand, Contains)
    assert isinstance(condition.operand.container, Residual)
    text = ExplainRenderer().render(condition)
    assert text == '"gs-project-accounts" not in <python: re.sub("x", "", event.get("a") or "")>'
    get_default = run('def rule(event):\n    return event.get("x", "") != "A"\n')
    assert explain_condition(get_default).conditions[0].text == (
        '(x (default "" if absent)) ne "A"')


def test_panthers_deep_get_helper_is_read_as_a_default(tmp_path: Path):
    helpers = tmp_path / "global_helpers"
    helpers.mkdir()
    (helpers / "panther_base_helpers.py").write_text(
        "from collections.abc import Mapping\nfrom functools import reduce\n" + DEEP_GET)
    (helpers / "panther_base_helpers.yml").write_text(
        "AnalysisType: global\nFilename: panther_base_helpers.py\nGlobalID: panther_base_helpers\n")
    (tmp_path / "r.py").write_text(
        "from panther_base_helpers import deep_get\n\n\ndef rule(event):\n"
        "    return deep_get(event, 'a', 'b', default='') == 'x'\n")
    (tmp_path / "r.yml").write_text("AnalysisType: rule\nFilename: r.py\nRuleID: R\nEnabled: true\n"
                                    "LogTypes: [AWS.VPCFlow]\nSeverity: Low\n")
    pack = load_pack([tmp_path])
    assert not pack.problems
    condition = extract_rule(pack.rule("R")).condition
    assert condition == Compare("==", Default(Field(("a", "b")), Const("")), Const("x"))


def test_an_altered_deep_get_is_a_call():
    source = textwrap.dedent("""
        def deep_get(dictionary, *keys, default=None):
            return default
        def rule(event):
            return deep_get(event, "a", default="") == "x"
        """)
    namespace: dict[str, Any] = {}
    exec(compile(source, "<rule>", "exec"), namespace)  # noqa: S102 - the test's own rule text
    assert "call to deep_get()" in str(extract_source(source, namespace))


@pytest.mark.parametrize(("node", "duckdb", "spark_sql"), [
    pytest.param(StrTest("startswith", Field(("action",)), ("A",)), "starts_with(", "startswith(",
                 id="startswith"),
    pytest.param(StrTest("endswith", Field(("action",)), ("A",)), "ends_with(", "endswith(",
                 id="endswith"),
    pytest.param(Contains(Const("C"), Field(("action",))), "position(", "position(", id="in-str"),
    pytest.param(Compare("==", StrCase("lower", Field(("action",))), Const("a")), "strlen(",
                 "octet_length(", id="lower"),
    pytest.param(Compare("==", Get(Field(("action",)), Const("")), Const("a")), '"f0:action"',
                 "`__fw_f0`", id="get-present"),
    pytest.param(Compare("==", Default(Field(("dstPort",)), Const(0)), Const(0)), "coalesce(",
                 "coalesce(", id="default"),
])
def test_new_forms_render_in_both_dialects(node, duckdb, spark_sql):
    assert duckdb in DuckDBRenderer(SCHEMA).verdict(node)
    assert spark_sql in SparkRenderer(SCHEMA).verdict(node)


def test_get_of_a_column_the_batch_lacks_is_its_default():
    node = Compare("==", Get(Field(("status",)), Const("MISSING")), Const("MISSING"))
    assert DuckDBRenderer(SCHEMA).verdict(node) == (
        "CAST(coalesce('MISSING' = 'MISSING', false) AS TINYINT)")  # no column read


def test_forms_rules_decide_in_sql():
    pack = load_pack([FORMS_RULES])
    compiled = compile_pack(pack)
    records = [{"action": "ACCEPT", "dstPort": 22, "srcAddr": "10.0.0.1", "status": "OK",
                "p_log_type": "AWS.VPCFlow"},
               {"action": "REJECT", "dstPort": 80, "srcAddr": "8.8.8.8", "status": "NODATA",
                "p_log_type": "AWS.VPCFlow"}]
    verdicts = evaluate_batch(compiled, pa.Table.from_pylist(records), "AWS.VPCFlow")
    for rule in pack.rules:
        codes = verdicts[rule.id].codes.tolist()
        if rule.id == "Test.Forms.ResidualOperand":
            assert codes == [2, 0]  # the prefix decides port 80 without Python
            continue
        assert 2 not in codes, rule.id
        assert codes == [int(outcome(rule, pack.event(r))) for r in records], rule.id


FORMS = load_pack([FORMS_RULES])
FORMS_COMPILED = compile_pack(FORMS)
SPARK_SETTINGS = settings(max_examples=3, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_spark(session: Any, batches: list[list[dict[str, Any]]], log_type: str) -> None:
    for table in merged_tables(batches):
        plans = FORMS_COMPILED.rules_for(log_type)
        got = spark_codes(session, {p.rule_id: p.condition for p in plans}, table, log_type)
        duck = evaluate_batch(FORMS_COMPILED, table, log_type)
        for plan in plans:
            assert got[plan.rule_id] == duck[plan.rule_id].codes.tolist(), plan.rule_id


@SPARK_SETTINGS
@given(batches=st.lists(vpcflow_batch(), min_size=40, max_size=80))
def test_forms_agree_on_spark_vpcflow(spark, batches):  # noqa: F811 - the fixture
    check_spark(spark, batches, "AWS.VPCFlow")


@SPARK_SETTINGS
@given(batches=st.lists(ocsf_batch(), min_size=40, max_size=80))
def test_forms_agree_on_spark_ocsf(spark, batches):  # noqa: F811 - the fixture
    check_spark(spark, batches, "OCSF.NetworkActivity")
