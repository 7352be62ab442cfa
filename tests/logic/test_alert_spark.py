"""Alert-function SQL in Spark's dialect: the same values and "needs Python" rows as DuckDB.

The DuckDB differential (``test_alerts``) proves DuckDB's values equal Python's; here Spark runs
the same columns on the same Arrow tables (built-in rules on generated flow records of both log
types, the synthetic rules, the single-node cases), and must agree with DuckDB on every flag and
every value DuckDB gives without Python, and with the functions' own Python.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowwarden.logic.alerts import AlertFunction, AlertPlan
from flowwarden.logic.ir import IpCheck, walk
from flowwarden.logic.render.duckdb_sql import DUCKDB
from flowwarden.logic.render.query import BatchQuery, build_query
from flowwarden.logic.render.spark import SPARK, spark_identifier
from flowwarden.rules.loader import Pack
from tests.engine.test_spark_render import merged_tables, spark  # noqa: F401 - the fixture
from tests.logic.alert_events import OCSF, SYNTHETIC, VPCFLOW, batches
from tests.logic.test_alerts import (
    NODE_CASES,
    PACKS,
    ROWS,
    check_values,
    has_escaped_text,
    plans,
    run_duckdb,
)

POSITION = "__fw_test_position"
SPARK_SETTINGS = settings(max_examples=3, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def run_spark(session: Any, query: BatchQuery, table: pa.Table, names: list[str]
              ) -> dict[str, list[dict[str, tuple[Any, bool]]]]:
    """Per condition name, per row, function -> (SQL value, needs Python), computed by Spark."""
    from pyspark.sql import functions as F

    assert not query.probes, "no IP probes in these alert functions"
    nulls = [i for i, f in enumerate(table.schema) if pa.types.is_null(f.type)]
    for i in nulls:  # Spark has no Arrow null type; an all-null string column reads the same
        table = table.set_column(i, table.schema[i].name, pa.nulls(table.num_rows, pa.string()))
    frame = session.createDataFrame(table.append_column(
        POSITION, pa.array(range(table.num_rows), pa.int64())))
    inputs = []
    for alias, keys, _ in query.columns:
        column = F.col(spark_identifier(keys[0], sql=False))
        for key in keys[1:]:
            column = column.getField(key)
        inputs.append(column.alias(alias))
    staged = frame.select(F.col(POSITION), *inputs)
    outputs = [(name, c) for name in names for c in dict(query.alerts)[name]]
    selected = staged.select(F.col(POSITION), *[
        F.expr(getattr(c, part)).alias(f"c{i}_{part}")
        for i, (_, c) in enumerate(outputs) for part in ("value", "python")])
    rows = selected.orderBy(POSITION).collect()
    found: dict[str, list[dict[str, tuple[Any, bool]]]] = {name: [{} for _ in rows] for name in names}
    for index, row in enumerate(rows):
        for i, (name, column) in enumerate(outputs):
            found[name][index][column.name] = (row[f"c{i}_value"], bool(row[f"c{i}_python"]))
    return found


def check_both(session: Any, pack: Pack, table: pa.Table, log_type: str | None) -> None:
    found = plans(pack, log_type)
    items = [(rule_id, plan.items()) for rule_id, plan in found.items()]
    duck_query = build_query([], table.schema, DUCKDB, log_type, items)
    spark_query = build_query([], table.schema, SPARK, log_type, items)
    got = run_spark(session, spark_query, table, list(found))
    records = table.to_pylist()
    for rule in pack.rules:
        duck = run_duckdb(duck_query, table, rule.id)
        shapes = {c.name: c.shape for c in dict(spark_query.alerts)[rule.id]}
        for record, ours, theirs in zip(records, got[rule.id], duck, strict=True):
            for function in found[rule.id].functions:
                name = function.name
                if theirs[name][1] and not ours[name][1]:
                    # DuckDB leaves JSON strings with control characters to Python (their
                    # to_json escapes differ from Python's); Spark writes them itself
                    assert has_escaped_text(record), (rule.id, name, record)
                else:
                    assert ours[name][1] == theirs[name][1], (rule.id, name, record)
                if not ours[name][1]:
                    check_values(name, None, rule.function(name), shapes[name], pack.event(record),
                                 ours[name])
                    if shapes[name] == "text":
                        assert ours[name][0] == theirs[name][0]


@pytest.mark.parametrize("pack", ["default", "tuned"])
@SPARK_SETTINGS
@given(data=st.data())
def test_builtin_rules_agree_on_spark(spark, pack, data):  # noqa: F811 - the fixture
    for spec, log_type in ((VPCFLOW, "AWS.VPCFlow"), (OCSF, "OCSF.NetworkActivity")):
        tables = data.draw(st.lists(batches(spec, log_type), min_size=4, max_size=8))
        for table in merged_tables([t.to_pylist() for t, _ in tables]):
            check_both(spark, PACKS[pack], table, log_type)


@SPARK_SETTINGS
@given(tables=st.lists(batches(SYNTHETIC, None), min_size=4, max_size=8))
def test_synthetic_rules_agree_on_spark(spark, tables):  # noqa: F811
    for table, _ in tables:
        check_both(spark, PACKS["synthetic"], table, None)


def test_single_nodes_agree_on_spark_in_any_session_time_zone(spark):  # noqa: F811
    plans = [AlertPlan(f"c{index}", (AlertFunction(name, case.values[0]),))
             for index, (name, case) in enumerate(
                 (name, case) for name, cases in NODE_CASES for case in cases
                 if not any(isinstance(n, IpCheck) for n in walk(case.values[0])))]  # no probes
    items = [(plan.rule_id, plan.items()) for plan in plans]
    rows = ROWS.set_column(ROWS.schema.get_field_index("n"), "n", pa.nulls(5, pa.string()))
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        got = run_spark(spark, build_query([], rows.schema, SPARK, None, items), rows,
                        [plan.rule_id for plan in plans])
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    duck_query = build_query([], rows.schema, DUCKDB, None, items)
    for plan in plans:
        [function] = plan.functions
        duck = [row[function.name] for row in run_duckdb(duck_query, rows, plan.rule_id)]
        ours = [row[function.name] for row in got[plan.rule_id]]
        records = rows.to_pylist()
        for (value, python), (duck_value, duck_python), record in zip(ours, duck, records,
                                                                     strict=True):
            if duck_python and not python:  # see check_both: DuckDB's JSON escapes
                assert has_escaped_text(record), function
            else:
                assert python == duck_python, function
            if not python and not duck_python:
                assert value == duck_value, function
