"""The Spark SQL renderer: quoting that survives Spark's parser, and verdicts equal to DuckDB's.

The differential part runs the flow-event strategies of the DuckDB differential test through
both engines on the same Arrow tables: every rule's verdict codes must be identical, and every
verdict that does not ask Python must be what the rule's own Python says.
"""

from __future__ import annotations

import doctest
import os
import sys
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowwarden.engine.local.vectorized import BatchEvaluator, compile_pack, evaluate_batch
from flowwarden.engine.spark.arrow import POSITION
from flowwarden.engine.spark.rules import with_verdicts
from flowwarden.errors import RenderError
from flowwarden.logic.ir import (
    NODE_TYPES,
    And,
    Coalesce,
    Compare,
    Const,
    Field,
    InSet,
    IpCheck,
    IpInCidrs,
    IsNull,
    Node,
    Not,
    Or,
    Residual,
    Truthy,
    Udm,
)
from flowwarden.logic.render import spark as spark_render
from flowwarden.logic.render.query import build_query
from flowwarden.logic.render.spark import SPARK, SparkRenderer, spark_identifier, spark_literal
from flowwarden.rules.loader import load_pack, resolve_pack_paths
from tests.logic import test_render_duckdb as render_duckdb
from tests.logic.flow_events import ocsf_batch, vpcflow_batch
from tests.logic.test_differential import PARTIAL_RULES, outcome, to_table
from tests.logic.test_render_duckdb import ADDR, INT_PORTS, PORT, STR_PORTS, python_codes
from tests.requirements import require_spark

# The DuckDB renderer's strings, plus what Spark's parser alone would reinterpret.
NASTY = [*render_duckdb.NASTY, "${spark.app.name}", "${x}", "`tick`", "/* c */", "-- c"]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from flowwarden.engine.spark.session import spark_session

    require_spark()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = spark_session("local[2]", {"spark.ui.enabled": "false",
                                         "spark.sql.shuffle.partitions": "2",
                                         "spark.driver.memory": "1g"})  # small tables
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def spark_codes(spark: Any, conditions: dict[str, Node], table: pa.Table,
                log_type: str = "test") -> dict[str, list[int]]:
    """Verdict codes per named condition, in row order, computed by Spark."""
    from pyspark.sql import functions as S

    indexed = table.append_column(POSITION, pa.array(range(table.num_rows), pa.int64()))
    frame = spark.createDataFrame(indexed)
    query = build_query(list(conditions.items()), table.schema, SPARK, log_type)
    rows = with_verdicts(frame, query).orderBy(POSITION).select(
        *[S.col(f"__fw_r{i}") for i in range(len(conditions))]).collect()
    return {name: [int(row[i]) for row in rows] for i, name in enumerate(conditions)}


# -- rendering ---------------------------------------------------------------------------------
def test_covers_every_node_kind():
    assert [k.__name__ for k in NODE_TYPES if not SparkRenderer.handles(k)] == []


def test_snapshots():
    renderer = SparkRenderer(pa.schema([("dstPort", pa.int64()), ("dstAddr", pa.string())]))
    assert renderer.verdict(InSet(PORT, frozenset({"it's", 22}))) == (
        "CAST(coalesce(`__fw_f0` IN (22), false) AS TINYINT)")
    assert renderer.verdict(Compare("==", ADDR, Const("a$b"))) == (
        "CAST(coalesce(`__fw_f1` = CAST(X'612462' AS STRING), false) AS TINYINT)")
    assert renderer.verdict(IpCheck(ADDR, "is_global")) == (
        "CAST(CASE WHEN ((`__fw_ip0` & 1) = 0) THEN 2 WHEN ((`__fw_ip0` & 2) <> 0) THEN 1 "
        "ELSE 0 END AS TINYINT)")
    assert renderer.verdict(Udm("source_ip")) == "2"


def test_literal_and_identifier_refusals():
    with pytest.raises(RenderError):
        spark_literal("\ud800")
    with pytest.raises(RenderError):
        spark_identifier("a$b")
    assert spark_identifier("a$b", sql=False) == "`a$b`"


def test_string_literals_round_trip_in_spark(spark):
    values = [*NASTY, *(chr(c) for c in range(0x00, 0xA0)), "\U0010ffff"]
    select = ", ".join(f"{spark_literal(v)} AS c{i}" for i, v in enumerate(values))
    row = spark.sql(f"SELECT {select}").collect()[0]
    assert list(row) == values


@settings(max_examples=20, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=("Cs",))), min_size=1, max_size=30))
def test_any_text_round_trips_in_spark(spark, values):
    select = ", ".join(f"{spark_literal(v)} AS c{i}" for i, v in enumerate(values))
    assert list(spark.sql(f"SELECT {select}").collect()[0]) == values


def test_integer_literals_round_trip_in_spark(spark):
    values = [0, -1, 2**31, 2**63 - 1, -(2**63), 2**63, 2**64 - 1]
    select = ", ".join(f"{spark_literal(v)} AS c{i}" for i, v in enumerate(values))
    assert [int(v) for v in spark.sql(f"SELECT {select}").collect()[0]] == values


def test_odd_column_names_resolve(spark):
    names = ["we`ird", "a.b", "sp ace", "ü", "x$y", "f0", "__fw_f0"]
    table = pa.table({name: [i] for i, name in enumerate(names)})
    conditions = {name: Compare("==", Field((name,)), Const(i)) for i, name in enumerate(names)}
    assert spark_codes(spark, conditions, table) == {name: [1] for name in names}


# -- semantics: the DuckDB renderer's cases, Spark against DuckDB and Python -------------------
ADDRS = pa.table({"dstAddr": [*render_duckdb.ADDRS["dstAddr"].to_pylist(), "fe80::1%eth0",
                              "1.2.3.04", "2001:db8::/32"]})
PORT_CASES = [
    Truthy(PORT), Compare("==", PORT, Const(22)), Compare("==", PORT, Const("22")),
    Compare("!=", PORT, Const("22")), Compare("<", PORT, Const(50)),
    Compare(">=", PORT, Const("1")), Compare(">", PORT, Const(2**64 - 1)),
    InSet(PORT, frozenset({22, "0"})), Not(InSet(PORT, frozenset({"x"}))), IsNull(PORT),
    Compare("==", Coalesce(PORT, Const(53)), Const(53)), Truthy(Field(("missing",))),
    Compare("==", Coalesce(PORT, Const("none")), Const("none")),
    And((IsNull(PORT), Residual("f()", "call"))),
]
ADDR_CASES = [
    IpCheck(ADDR, "is_global"), IpCheck(ADDR, "is_private"), IpCheck(ADDR, "is_reserved"),
    IpCheck(ADDR, "is_global", strict=False), IpCheck(ADDR, "is_multicast", parse="address"),
    IpCheck(ADDR, "is_loopback", parse="address"), IpCheck(ADDR, "is_link_local"),
    IpCheck(Coalesce(ADDR, Const("0.0.0.0/32")), "is_global"),
    IpCheck(Coalesce(ADDR, Const("bad")), "is_unspecified"),
    IpInCidrs(ADDR, ("10.0.0.0/8", "fd00::/8")), IpInCidrs(ADDR, ("10.0.0.0/8", "10.0.0.1/8")),
    IpInCidrs(ADDR, ()), Or((IpCheck(ADDR, "is_private"), Truthy(ADDR))),
    And((Truthy(ADDR), IpCheck(ADDR, "is_private"))), Not(IpCheck(ADDR, "is_private")),
    InSet(ADDR, frozenset({"8.8.8.8", "it's"})), IpCheck(Field(("missing",)), "is_global"),
    Compare("<", ADDR, Const("9")),
]


@pytest.mark.parametrize(("cases", "table"), [
    pytest.param(PORT_CASES, INT_PORTS, id="int-ports"),
    pytest.param(PORT_CASES, STR_PORTS, id="str-ports"),
    pytest.param(ADDR_CASES, ADDRS, id="addresses"),
    pytest.param(ADDR_CASES, ADDRS.cast(pa.schema([("dstAddr", pa.large_string())])), id="large"),
])
def test_spark_equals_duckdb_and_python(spark, cases, table):
    conditions = {f"c{i}": node for i, node in enumerate(cases)}
    got = spark_codes(spark, conditions, table)
    duck = BatchEvaluator().codes(conditions, table)
    rows = table.to_pylist()
    for name, node in conditions.items():
        assert got[name] == duck[name].tolist(), (node, got[name])
        for code, want in zip(got[name], python_codes(node, rows), strict=True):
            assert code == 2 if want == "residual" else code in (want, 2), (node, got[name])
    assert any(code != 2 for codes in got.values() for code in codes)


def test_struct_fields_and_foreign_log_types(spark):
    table = pa.Table.from_pylist([
        {"dst_endpoint": {"ip": "10.0.0.1", "port": 22}, "p_log_type": "OCSF.NetworkActivity"},
        {"dst_endpoint": None, "p_log_type": "OCSF.NetworkActivity"},
        {"dst_endpoint": {"ip": None, "port": None}, "p_log_type": "AWS.VPCFlow"},
    ])
    conditions = {"port": Compare("==", Field(("dst_endpoint", "port")), Const(22)),
                  "ip": IpCheck(Field(("dst_endpoint", "ip")), "is_private"),
                  "deeper": IsNull(Field(("dst_endpoint", "ip", "x")))}
    assert spark_codes(spark, conditions, table, "OCSF.NetworkActivity") == {
        "port": [1, 0, 2], "ip": [1, 2, 2], "deeper": [1, 1, 2]}


def test_a_non_string_log_type_column_asks_python_everywhere(spark):
    table = pa.table({"dstPort": [22, 23], "p_log_type": [1, None]})
    conditions = {"in": InSet(PORT, frozenset({22}))}
    assert spark_codes(spark, conditions, table, "AWS.VPCFlow") == {"in": [2, 2]}
    assert spark_codes(spark, conditions, table.drop_columns(["p_log_type"])) == {"in": [1, 0]}


# -- the flow-event differential, through Spark -------------------------------------------------
PACKS = {kind: load_pack(resolve_pack_paths([]) if kind == "builtin" else [PARTIAL_RULES])
         for kind in ("builtin", "partial")}
COMPILED = {kind: compile_pack(pack) for kind, pack in PACKS.items()}
DIFF_SETTINGS = settings(max_examples=4, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def merged_tables(batches: list[list[dict[str, Any]]]) -> list[pa.Table]:
    """The batches as few tables (one Spark job each): batches whose columns unify share one."""
    tables: list[pa.Table] = []
    for records in batches:
        table = to_table(records)
        for index, merged in enumerate(tables):
            try:
                tables[index] = pa.concat_tables([merged, table], promote_options="default")
                break
            except pa.ArrowException:
                continue
        else:
            tables.append(table)
    return tables


def check_tables(spark: Any, kind: str, batches: list[list[dict[str, Any]]], log_type: str) -> None:
    pack, compiled = PACKS[kind], COMPILED[kind]
    for table in merged_tables(batches):
        plans = compiled.rules_for(log_type)
        got = spark_codes(spark, {p.rule_id: p.condition for p in plans}, table, log_type)
        duck = evaluate_batch(compiled, table, log_type)
        rows = table.to_pylist()
        for plan in plans:
            assert got[plan.rule_id] == duck[plan.rule_id].codes.tolist(), plan.rule_id
            rule = pack.rule(plan.rule_id)
            for code, row in zip(got[plan.rule_id], rows, strict=True):
                if code != 2:
                    assert outcome(rule, pack.event(row)) == bool(code), (rule.id, row)


@pytest.mark.parametrize("kind", ["builtin", "partial"])
@DIFF_SETTINGS
@given(batches=st.lists(vpcflow_batch(), min_size=40, max_size=80))
def test_vpcflow_events_agree_on_spark(spark, kind, batches):
    check_tables(spark, kind, batches, "AWS.VPCFlow")


@pytest.mark.parametrize("kind", ["builtin", "partial"])
@DIFF_SETTINGS
@given(batches=st.lists(ocsf_batch(), min_size=40, max_size=80))
def test_ocsf_events_agree_on_spark(spark, kind, batches):
    check_tables(spark, kind, batches, "OCSF.NetworkActivity")


def test_rule_test_logs_agree_on_spark(spark):
    for kind, pack in PACKS.items():
        for rule in pack.rules:
            for log_type in rule.log_types:
                logs = [[t.log] for t in rule.tests if t.log.get("p_log_type") == log_type]
                check_tables(spark, kind, logs, log_type)


def test_doctests():
    result = doctest.testmod(spark_render)
    assert result.attempted > 0 and result.failed == 0
