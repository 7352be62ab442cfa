"""Alert functions as IR values: extraction, the Python reference, and DuckDB against Python.

For every alert function of every built-in rule and of the synthetic rules in
``fixtures/alert_rules`` (one per supported form, and residuals), on generated batches of both
log types holding every value type the readers produce: calling the function is the truth; the
IR evaluator gives the same value, raises too, or reaches a residual; and wherever the SQL says
"no Python needed" its value is the function's, while wherever the function raises the SQL says
"Python needed". On batches of the readers' own column types the built-in rules never need
Python.
"""

from __future__ import annotations

import doctest
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from flowwarden.alerts.formats.jsonl import jsonable
from flowwarden.engine.local.ipclass import IpClassifier
from flowwarden.engine.local.vectorized import _column
from flowwarden.logic import alerts, extract_values, ir
from flowwarden.logic.alerts import (
    AlertFunction,
    AlertPlan,
    alert_columns,
    extract_alert_functions,
    extract_alert_source,
)
from flowwarden.logic.extract_values import extract_value_source
from flowwarden.logic.ir import (
    Add,
    Coalesce,
    Compare,
    Concat,
    Const,
    DictOf,
    Field,
    IfElse,
    IntText,
    IpCheck,
    ListOf,
    Lookup,
    Residual,
    Seq,
    Str,
    Truthy,
    Udm,
)
from flowwarden.logic.render import sql_values
from flowwarden.logic.render.duckdb_sql import DUCKDB, ESCAPE_START
from flowwarden.logic.render.python import ResidualReached, evaluate
from flowwarden.logic.render.query import BatchQuery, build_query
from flowwarden.logic.render.sql import BatchInputs
from flowwarden.rules.event import PantherEvent
from flowwarden.rules.loader import Pack, load_pack, resolve_pack_paths
from flowwarden.rules.rule import Rule
from tests.logic.alert_events import OCSF, SYNTHETIC, VPCFLOW, batches

ALERT_RULES = Path(__file__).parent / "fixtures" / "alert_rules"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LOG_TYPES = ("AWS.VPCFlow", "OCSF.NetworkActivity")
COMPILED = ("title", "dedup", "unique", "alert_context", "severity")


def _packs() -> dict[str, Pack]:
    packs = {name: load_pack(resolve_pack_paths([name])) for name in ("default", "tuned")}
    packs["synthetic"] = load_pack([ALERT_RULES])
    assert not any(p.problems for p in packs.values())
    return packs


PACKS = _packs()
# Their alert functions walk the matched rows of p_enrichment (helpers with loops over tables and
# selectors): Python runs them, once per alert on its first event (and dedup per match).
PYTHON_ALERT_FUNCTIONS = frozenset({"AWS.VPC.ThreatIntelMatch", "AWS.VPC.TorTraffic"})
BUILTIN = [(name, rule.id) for name in ("default", "tuned") for rule in PACKS[name].rules
           if rule.id not in PYTHON_ALERT_FUNCTIONS]


def plans(pack: Pack, log_type: str | None) -> dict[str, AlertPlan]:
    model = pack.data_models.get(log_type) if log_type else None
    return {rule.id: extract_alert_functions(rule).resolved(model) for rule in pack.rules}


# -- running the SQL -------------------------------------------------------------------------
def run_duckdb(query: BatchQuery, table: pa.Table, name: str) -> list[dict[str, tuple[Any, bool]]]:
    """Per row, function -> (SQL value, needs Python), as DuckDB computes them."""
    arrays = {alias: _column(table, indexes) for alias, _, indexes in query.columns}
    for alias, _, indexes, probe in query.probes:
        arrays[alias] = IpClassifier().codes(_column(table, indexes), probe)
    arrays["_rows"] = pa.nulls(table.num_rows, pa.int8())
    connection = duckdb.connect()
    connection.register("batch", pa.table(arrays))
    rows = connection.execute(query.alert_select("batch", name)).fetchall()
    names = [c.name for c in dict(query.alerts)[name]]
    return [{n: (row[2 * i], bool(row[2 * i + 1])) for i, n in enumerate(names)} for row in rows]


def call(function: Any, event: PantherEvent) -> tuple[Any, BaseException | None]:
    try:
        return function(event), None
    except Exception as exc:  # noqa: BLE001 - the function raising is a result
        return None, exc


def conforms(shape: str, value: Any) -> bool:
    """The function's value has a type its column can hold."""
    if shape == "json":
        return value is None or isinstance(value, Mapping)
    if shape == "strings":
        return value is None or isinstance(value, list | tuple)
    return True


def expected(shape: str, value: Any) -> Any:
    """What the column holds for the function's value ``value`` (parsed, for JSON)."""
    if shape == "text":
        return None if value is None else str(value)
    if shape == "json":
        return json.loads(json.dumps(jsonable(value)))
    return None if value is None else [str(d) for d in value]


def check_values(name: str, node: ir.Node | None, function: Any, shape: str, event: PantherEvent,
                 sql: tuple[Any, bool]) -> bool:
    """Assert the IR evaluator and the SQL agree with ``function`` on ``event``; True when the
    SQL needed Python."""
    truth, error = call(function, event)
    if node is not None:
        try:
            got, got_error = evaluate(node, event), None
        except ResidualReached:
            got, got_error = truth, error
        except Exception as exc:  # noqa: BLE001
            got, got_error = None, exc
        assert (got_error is None) == (error is None), (name, node, error, got_error)
        assert got == truth, (name, got, truth)
    value, python = sql
    if error is not None:
        assert python, (name, error, value)
    if not python:
        assert conforms(shape, truth), (name, truth)
        got_value = value if shape == "text" else json.loads(value)
        assert got_value == expected(shape, truth), (name, value, truth)
    return python


def has_escaped_text(value: Any) -> bool:
    """Whether a string anywhere in ``value`` holds a character below U+0020, or spells out
    ``\\u00``: either way ``to_json``'s text of it holds ``\\u00``, and DuckDB leaves the JSON
    of alert values with such text to Python (``duckdb_sql.json_quick``)."""
    if isinstance(value, str):
        return ESCAPE_START in value or any(ord(char) < 0x20 for char in value)
    if isinstance(value, dict):
        return any(has_escaped_text(v) for v in value.values())
    if isinstance(value, list):
        return any(has_escaped_text(v) for v in value)
    return False


def check_pack(pack: Pack, table: pa.Table, log_type: str | None, exact: bool = False) -> int:
    """Every alert function of every rule of ``pack`` on every row of ``table``; with ``exact``
    no row may need Python. Returns the number of (row, function) pairs that did."""
    found = plans(pack, log_type)
    query = build_query([], table.schema, DUCKDB, log_type,
                        [(rule_id, plan.items()) for rule_id, plan in found.items()])
    records = table.to_pylist()
    asked = 0
    for rule in pack.rules:
        columns = {c.name: c for c in dict(query.alerts)[rule.id]}
        for record, sql in zip(records, run_duckdb(query, table, rule.id), strict=True):
            event = pack.event(record)
            for function in found[rule.id].functions:
                python = check_values(function.name, function.value, rule.function(function.name),
                                      columns[function.name].shape, event, sql[function.name])
                # DuckDB leaves to Python the JSON of strings whose to_json text holds \u00
                assert not (exact and python and rule.id not in PYTHON_ALERT_FUNCTIONS
                            and not has_escaped_text(record)), (
                    rule.id, function.name, record)
                asked += python
    return asked


# -- differential tests ----------------------------------------------------------------------
@pytest.mark.parametrize("pack", ["default", "tuned"])
@SETTINGS
@given(batch=batches(VPCFLOW, "AWS.VPCFlow"))
def test_builtin_rules_on_vpcflow(pack, batch):
    table, canonical = batch
    check_pack(PACKS[pack], table, "AWS.VPCFlow", exact=canonical)


@pytest.mark.parametrize("pack", ["default", "tuned"])
@SETTINGS
@given(batch=batches(OCSF, "OCSF.NetworkActivity"))
def test_builtin_rules_on_ocsf(pack, batch):
    table, canonical = batch
    check_pack(PACKS[pack], table, "OCSF.NetworkActivity", exact=canonical)


@settings(SETTINGS, max_examples=150)
@given(batch=batches(SYNTHETIC, None))
def test_synthetic_rules_on_every_value_type(batch):
    table, _ = batch
    check_pack(PACKS["synthetic"], table, None)


def test_builtin_rule_test_logs_need_no_python():
    for name in ("default", "tuned"):
        for rule in PACKS[name].rules:
            for test in rule.tests:
                table = pa.Table.from_pylist([test.log])
                check_pack(load_rules(PACKS[name], rule), table, test.log["p_log_type"], exact=True)


def load_rules(pack: Pack, *rules: Rule) -> Pack:
    return Pack(rules=list(rules), data_models=pack.data_models, config=pack.config)


@pytest.mark.parametrize(("pack", "rule_id"), BUILTIN)
@pytest.mark.parametrize("log_type", LOG_TYPES)
def test_builtin_alert_functions_compile_fully(pack, rule_id, log_type):
    rule = PACKS[pack].rule(rule_id)
    plan = extract_alert_functions(rule).resolved(PACKS[pack].data_models[log_type])
    assert plan.functions and {f.name for f in plan.functions} <= set(COMPILED)
    for function in plan.functions:
        assert function.status == "full", (function.name, function.value)
        assert not any(isinstance(n, Udm | Seq) for n in ir.walk(function.value)), function.value


def test_vpcflow_record_of_every_type_in_sql():
    """One ordinary flow record, checked value by value in the alert context."""
    record = {"srcAddr": "198.51.99.7", "dstAddr": "10.0.0.8", "srcPort": 51000, "dstPort": 8081,
              "protocol": 6, "account": "123456789012", "start": datetime(2024, 5, 1, 12, tzinfo=UTC),
              "end": datetime(2024, 5, 1, 12, 0, 59, 250000, tzinfo=UTC), "p_log_type": "AWS.VPCFlow"}
    table = pa.Table.from_pylist([record]).cast(pa.schema([
        *(pa.field(k, pa.timestamp("s" if k == "start" else "us", tz="UTC") if k in ("start", "end")
                   else pa.int64() if k.endswith(("Port", "protocol")) else pa.string())
          for k in record)]))
    pack = load_rules(PACKS["default"], PACKS["default"].rule("AWS.VPC.PortScan"))
    query = build_query([], table.schema, DUCKDB, "AWS.VPCFlow",
                        [(r, p.items()) for r, p in plans(pack, "AWS.VPCFlow").items()])
    row = run_duckdb(query, table, "AWS.VPC.PortScan")[0]
    assert row["title"] == ("Port scan from [198.51.99.7] against [10.0.0.8]", False)
    context = json.loads(row["alert_context"][0])
    assert context["start_time"] == "2024-05-01T12:00:00+00:00"
    assert context["end_time"] == "2024-05-01T12:00:59.250000+00:00"
    assert context["destination_port"] == 8081 and context["vpc_id"] is None
    assert check_pack(pack, table, "AWS.VPCFlow", exact=True) == 0


# -- extraction --------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "text"), [
    pytest.param('return f"{event.udm(\'a\')}-{event.get(\'b\')!s}"',
                 'concat(str(udm.a), "-", str(event.b))', id="f-string"),
    pytest.param('return "x" + event.get("a") + "y"', 'add(add("x", event.a), "y")', id="plus"),
    pytest.param('return "a" + "b"', '"ab"', id="plus-constants"),
    pytest.param('return str(event.get("a"))', "str(event.a)", id="str"),
    pytest.param('return str(PORT)', '"22"', id="str-constant"),
    pytest.param('return "%s:%d %%" % (event.get("a"), event.get("b"))',
                 'concat(str(event.a), ":", int_text(event.b), " %")', id="percent"),
    pytest.param('return "<%s>" % event.get("a")', 'concat("<", str(event.a), ">")',
                 id="percent-single"),
    pytest.param('return "{0}/{k}".format(event.get("a"), k=PORT)',
                 'concat(str(event.a), "/22")', id="format"),
    pytest.param('return event.get("a") if event.get("b") else "none"',
                 'if(truthy(event.b), event.a, "none")', id="conditional"),
    pytest.param('if event.get("a") is None:\n        return "none"\n    return event.get("a")',
                 'if(is_null(event.a), "none", event.a)', id="early-return"),
    pytest.param('if event.get("a"):\n        return "yes"', 'if(truthy(event.a), "yes", null)',
                 id="falls-through-to-none"),
    pytest.param('return {"a": event.get("a"), "n": {"p": PORT}}', '{"a": event.a, "n": {"p": PORT=22}}',
                 id="dict"),
    pytest.param('return {k: event.get(k) for k in NAMES}', '{"a": event.a, "b": event.b}',
                 id="dict-comprehension"),
    pytest.param('return [event.get("a"), "slack"]', '[event.a, "slack"]', id="list"),
    pytest.param('return NAMES_MAP.get(event.get("a"), "?")',
                 'get(NAMES_MAP={"x": "X"}, event.a, "?")', id="lookup"),
    pytest.param('x = event.get("a")\n    x += "!"\n    return x', 'add(event.a, "!")',
                 id="local-and-augmented"),
    pytest.param('ctx = {"a": 1}\n    for k in NAMES:\n        ctx[k] = k\n    return ctx',
                 '{"a": NAMES="a", "b": NAMES="b"}', id="loop-item-assignment"),
    pytest.param('unused = event.get("a") + "?"\n    return "c"', 'seq([add(event.a, "?")], "c")',
                 id="unused-value-may-raise"),
    pytest.param('unused = str(event.get("a"))\n    return "c"', '"c"', id="unused-value-safe"),
    pytest.param('return helper(event, "a")', 'concat("[", str(event.a), "]")', id="helper"),
    pytest.param('side = "a" if event.get("c") else "b"\n    return event.get(side)',
                 'if(truthy(event.c), event.a, event.b)', id="key-chosen"),
    pytest.param('k = "a" if event.get("c") else "b" if event.get("d") else "c"\n'
                 '    return event.deep_get("n", k, default="-")',
                 'if(truthy(event.c), default(event.n.a, "-"), if(truthy(event.d), '
                 'default(event.n.b, "-"), default(event.n.c, "-")))', id="key-chosen-nested"),
    pytest.param('return event.get("a").upper()', 'upper(event.a)', id="upper"),
    pytest.param('return event.get("a").strip()',
                 'residual("event.get(\\"a\\").strip()", reason="call to event.get(\'a\').strip()")',
                 id="residual"),
])
def test_extraction_forms(body, text):
    source = (f"PORT = 22\nNAMES = ('a', 'b')\nNAMES_MAP = {{'x': 'X'}}\n\n"
              f"def helper(e, key):\n    return '[' + str(e.get(key)) + ']'\n\n"
              f"def title(event):\n    {body}\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, "<rule>", "exec"), namespace)  # noqa: S102 - the test's own source
    loaded = extract_value_source(source, "title", namespace)
    assert str(loaded) == str(extract_value_source(source, "title")) == text


@pytest.mark.parametrize(("body", "reason"), [
    pytest.param('other = {}\n    ctx = other\n    ctx["a"] = 1\n    return other',
                 "item assignment other than into a dict built here", id="aliased-dict"),
    pytest.param('ctx = {}\n    keep = [ctx]\n    ctx["a"] = 1\n    return keep',
                 "item assignment other than into a dict built here", id="shared-dict"),
    pytest.param('return "%s %s" % (event.get("a"),)', "% format other than", id="too-few-args"),
    pytest.param('return "%5s" % event.get("a")', "% format other than", id="percent-width"),
    pytest.param('return f"{event.get(\'a\'):>5}"', "format spec", id="f-string-spec"),
    pytest.param('return f"{event.get(\'a\')!r}"', "!r/!a", id="f-string-repr"),
    pytest.param('return "{}/{0}".format(event.get("a"))', "other than a given argument",
                 id="format-mixed-numbering"),
    pytest.param('return "{.x}".format(event.get("a"))', "other than a given argument",
                 id="format-attribute"),
    pytest.param("return {event.get('a'): 1}", "key other than a constant string", id="dict-key"),
    pytest.param('return MUTABLE.get(event.get("a"))', "constant dict of scalars",
                 id="mutated-dict"),
    pytest.param("return (event.get('a'), 1)", "container of non-literal items", id="tuple"),
])
def test_extraction_residuals(body, reason):
    source = (f"MUTABLE = {{}}\n\ndef change(event):\n    MUTABLE['x'] = 1\n\n"
              f"def title(event):\n    {body}\n")
    found = ir.residuals(extract_value_source(source, "title", {"MUTABLE": {}}))
    assert found and reason in found[0].reason, found


def test_plan_of_a_rule_with_residuals_and_a_lambda():
    plan = extract_alert_functions(PACKS["synthetic"].rule("Test.Alerts.Residuals"))
    statuses = {f.name: (f.status, f.reason) for f in plan.functions}
    assert statuses == {
        "title": ("partial", None), "dedup": ("none", None), "alert_context": ("none", None),
        "runbook": ("none", "the source of runbook() cannot be found")}
    assert plan.status == "partial"


def test_plans_from_source_alone_match_the_loaded_module():
    for rule in PACKS["synthetic"].rules:
        if rule.id == "Test.Alerts.Choices":
            loaded, source = extract_alert_functions(rule), extract_alert_source(rule.id, rule.source)
            assert loaded == source


def test_method_mappings_are_inlined_on_ocsf():
    rule = PACKS["tuned"].rule("AWS.VPC.InboundPortWhitelist.Tuned")
    plan = extract_alert_functions(rule).resolved(PACKS["tuned"].data_models["OCSF.NetworkActivity"])
    context = plan.function("alert_context").value
    assert isinstance(context, DictOf)
    values = dict(zip(context.keys, context.values, strict=True))
    assert str(values["interface_id"]) == (
        "coalesce(event.dst_endpoint.interface_uid, event.src_endpoint.interface_uid)")
    assert isinstance(values["flow_direction"], Lookup)


# -- rendering single nodes --------------------------------------------------------------------
TIME_US = pa.timestamp("us", tz="UTC")
# Row 3's string holds a control character: DuckDB leaves JSON text of such strings to Python
# (``duckdb_sql.json_quick``), so JSON renderings of ``s`` ask Python there.
ROWS = pa.table({
    "s": ["it's \\ \"q\"", "", None, "ünï\x01\u2028", "x" * 3000],
    "i": pa.array([0, -(2**63), None, 2**63 - 1, 7], pa.int64()),
    "b": [True, False, None, True, False],
    "t": pa.array([datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=UTC),
                   None, datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999,
                                                                 tzinfo=UTC)], TIME_US),
    "f": [1.5, None, None, 0.1, None],
    "n": pa.nulls(5),
})
FS, FI, FB, FT, FF, FN = (Field((k,)) for k in "sibtfn")


def render_rows(node: ir.Node, name: str, table: pa.Table = ROWS) -> list[tuple[Any, bool]]:
    """(value, needs Python) per row of ``node`` as alert function ``name`` in DuckDB."""
    plan = AlertPlan("t", (AlertFunction(name, node),))
    query = build_query([], table.schema, DUCKDB, None, [("t", plan.items())])
    return [row[name] for row in run_duckdb(query, table, "t")]


def assert_node(node: ir.Node, name: str = "title", table: pa.Table = ROWS) -> list[bool]:
    """The node's SQL equals the Python reference wherever it needs no Python."""
    shape = sql_values.SHAPES.get(name, "text")
    rows = render_rows(node, name, table)
    return [check_values(name, None, lambda e: evaluate(node, e), shape, PantherEvent(record), sql)
            for record, sql in zip(table.to_pylist(), rows, strict=True)]


TEXT_CASES = [
    pytest.param(Str(FS), [0, 0, 0, 0, 0], id="str"),
    pytest.param(Str(FI), [0, 0, 0, 0, 0], id="int"),
    pytest.param(Str(FB), [0, 0, 0, 0, 0], id="bool"),
    pytest.param(Str(FT), [0, 0, 0, 0, 0], id="datetime"),
    pytest.param(Str(FF), [1, 0, 0, 1, 0], id="float-asks-python-unless-none"),
    pytest.param(Str(FN), [0, 0, 0, 0, 0], id="null-column"),
    pytest.param(Str(Field(("missing",))), [0, 0, 0, 0, 0], id="missing-column"),
    pytest.param(Add(FS, Const("!")), [0, 0, 1, 0, 0], id="plus-raises-on-none"),
    pytest.param(Add(FI, Const("!")), [1, 1, 1, 1, 1], id="plus-int-str"),
    pytest.param(IntText(FI), [0, 0, 1, 0, 0], id="percent-d"),
    pytest.param(IntText(FB), [0, 0, 1, 0, 0], id="percent-d-bool"),
    pytest.param(IntText(FS), [1, 1, 1, 1, 1], id="percent-d-str-raises"),
    pytest.param(IfElse(Truthy(FB), FS, FI), [0, 0, 0, 0, 0], id="branches-of-two-types"),
    pytest.param(Add(IfElse(Truthy(FB), FS, FI), Const("")), [1, 1, 1, 1, 1],
                 id="raw-value-of-two-types"),
    pytest.param(Str(IfElse(Truthy(FB), FS, FI)), [0, 0, 0, 0, 0], id="text-of-mixed-kinds"),
    pytest.param(Str(Coalesce(FT, FB)), [0, 0, 0, 0, 0], id="text-of-datetime-or-bool"),
    pytest.param(IfElse(Compare("<", FI, Const(5)), Const("lt"), Const("ge")), [0, 0, 1, 0, 0],
                 id="condition-raising-on-none"),
    pytest.param(Lookup(FB, ((1, "one"), (0, "zero"), (None, "none")), Const("?")), [0, 0, 0, 0, 0],
                 id="lookup-bool-hashes-as-int"),
    pytest.param(Lookup(FS, (("", "empty"),), Str(FI)), [0, 0, 0, 0, 0], id="lookup-str"),
    pytest.param(Lookup(FT, ((1, "one"),), Const(None)), [0, 0, 0, 0, 0], id="lookup-datetime"),
    pytest.param(Seq((Add(FS, Const("?")),), Const("c")), [0, 0, 1, 1, 0], id="seq"),
    pytest.param(Residual("x", "y"), [1, 1, 1, 1, 1], id="residual"),
    pytest.param(Str(IpCheck(FS, "is_private")), [1, 1, 1, 1, 1], id="ip-check-raises"),
    pytest.param(Concat((Const("é'"), Str(FS), Const("\\"))), [0, 0, 0, 0, 0], id="concat"),
    pytest.param(Str(DictOf(("a",), (FS,))), [1, 1, 1, 1, 1], id="repr-of-dict"),
]
JSON_CASES = [
    pytest.param(DictOf(("s", "i", "b", "t", "n", "s"), (FS, FI, FB, FT, FN, Str(FI))), [0] * 5,
                 id="every-type-and-a-repeated-key"),
    pytest.param(DictOf(("f",), (FF,)), [1, 0, 0, 1, 0], id="float"),
    pytest.param(DictOf((), ()), [0] * 5, id="empty"),
    pytest.param(DictOf(("l",), (ListOf((FS, DictOf((), ()), ListOf(()))),)), [0, 0, 0, 1, 0],
                 id="nested"),
    pytest.param(IfElse(Truthy(FB), DictOf(("a",), (FS,)), Const(None)), [0, 0, 0, 1, 0],
                 id="or-none"),
    pytest.param(IfElse(Truthy(FB), DictOf(("a",), (FS,)), FS), [0, 1, 0, 1, 1], id="not-a-dict"),
    pytest.param(Coalesce(DictOf((), ()), DictOf(("x",), (FI,))), [0] * 5, id="empty-dict-falsy"),
]
DESTINATION_CASES = [
    pytest.param(ListOf((FS, FI, FB, FT, FN, Const("slack"))), [0] * 5, id="str-of-each"),
    pytest.param(Const(None), [0] * 5, id="none"),
    pytest.param(FS, [1, 1, 0, 1, 1], id="a-string-is-iterated"),
]
# (alert function, cases): the function names the column's shape.
NODE_CASES = [("title", TEXT_CASES), ("alert_context", JSON_CASES),
              ("destinations", DESTINATION_CASES)]


@pytest.mark.parametrize(("name", "node", "python"), [
    pytest.param(name, *case.values, id=f"{name}-{case.id}")
    for name, cases in NODE_CASES for case in cases])
def test_single_nodes(name, node, python):
    assert assert_node(node, name) == [bool(p) for p in python]


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
@pytest.mark.parametrize("zone", ["UTC", "+00:00", "Etc/UTC"])
def test_timestamp_units_and_zones(unit, zone):
    times = pa.array([datetime(2024, 5, 1, 12, 0, 1, 123000 if unit != "s" else 0, tzinfo=UTC),
                      datetime(1, 1, 1, tzinfo=UTC), None], pa.timestamp(unit, tz=zone))
    table = pa.table({"t": times})
    assert assert_node(Str(FT), table=table) == [False] * 3
    assert assert_node(DictOf(("t",), (FT,)), "alert_context", table) == [False] * 3


@pytest.mark.parametrize("dtype", [pa.timestamp("us"), pa.timestamp("ns", tz="UTC"),
                                   pa.timestamp("s", tz="America/New_York")], ids=str)
def test_other_timestamps_ask_python(dtype):
    table = pa.table({"t": pa.array([0, None], dtype)})
    assert render_rows(Str(FT), "title", table) == [(None, True), (None, True)]


def test_values_outside_python_datetimes_ask_python():
    table = pa.table({"t": pa.array([-62135596800 * 10**6 - 1, 253402300800 * 10**6], TIME_US)})
    assert [python for _, python in render_rows(Str(FT), "title", table)] == [True, True]


def test_rows_of_another_log_type_ask_python():
    table = pa.table({"s": ["a", "b"], "p_log_type": ["AWS.VPCFlow", "Other"]})
    plan = AlertPlan("t", (AlertFunction("title", Str(FS)),))
    inputs = BatchInputs(table.schema, DUCKDB)
    [column] = alert_columns(plan, inputs, "AWS.VPCFlow")
    assert column.name == "title" and column.shape == "text" and "p_log_type" in column.python
    query = build_query([], table.schema, DUCKDB, "AWS.VPCFlow", [("t", plan.items())])
    assert [row["title"] for row in run_duckdb(query, table, "t")][0] == ("a", False)
    assert [row["title"][1] for row in run_duckdb(query, table, "t")] == [False, True]
    connection = duckdb.connect()
    connection.register("batch", pa.table({a: _column(table, i) for a, _, i in query.columns}))
    matches = query.alert_select("batch", "t", where='"f1:s" = \'a\'')
    assert connection.execute(matches).fetchall() == [("a", False)]


def test_value_nodes_inside_conditions():
    node = Compare("==", Concat((Str(FS), Const("!"))), Const("!"))
    query = build_query([("c", node)], ROWS.schema, DUCKDB)
    assert "||" in query.verdicts[0]
    # A datetime's text: SQL where Python's datetime holds the time, Python elsewhere.
    timed = Compare("==", Str(FT), Const("x"))
    verdict = build_query([("c", timed)], ROWS.schema, DUCKDB).verdicts[0]
    assert verdict.startswith('CAST(CASE WHEN ("f0:t" IS NOT NULL AND (epoch_us("f0:t") < ')
    assert "THEN 2 WHEN" in verdict


def test_doctests():
    for module in (alerts, extract_values, sql_values):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
