"""The Python rule, the IR evaluator and the DuckDB path agree on every event.

For each generated batch and every rule: the rule's own ``rule()`` (via ``Rule.evaluate``) is
the truth; the IR evaluator must give the same verdict unless it reaches a residual; the
vectorized verdict must be the same, or PYTHON (then the engine runs the rule, which is
trivially the same). With canonical column types a fully extracted rule may say PYTHON only
where Python raises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from flowwarden.engine.local.vectorized import CompiledPack, compile_pack, evaluate_batch
from flowwarden.logic.render.python import ResidualReached, evaluate
from flowwarden.logic.render.sql import INT, NULL, STR, arrow_kind, resolve_path
from flowwarden.rules.loader import Pack, load_pack, resolve_pack_paths
from flowwarden.rules.rule import Rule
from tests.logic.flow_events import ocsf_batch, vpcflow_batch

PARTIAL_RULES = Path(__file__).parent / "fixtures" / "partial_rules"
FORMS_RULES = Path(__file__).parent / "fixtures" / "forms_rules"
KINDS = ["builtin", "partial", "forms"]
# Rules whose event.get(key, default) tells an absent key from a null one: the engine hands
# Python the batch's row (every column a key), so the row, not the record, is their truth.
READS_PRESENCE = {"Test.Forms.Defaults", "Test.Forms.Strings"}
CODES = {0: False, 1: True, 2: "python"}
PORT_PATHS = [("srcPort",), ("dstPort",), ("protocol",), ("src_endpoint", "port"),
              ("dst_endpoint", "port"), ("connection_info", "protocol_num")]
ADDR_PATHS = [("srcAddr",), ("dstAddr",), ("src_endpoint", "ip"), ("dst_endpoint", "ip")]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _load(kind: str) -> tuple[Pack, CompiledPack]:
    paths = {"builtin": resolve_pack_paths([]), "partial": [PARTIAL_RULES],
             "forms": [FORMS_RULES]}[kind]
    pack = load_pack(paths)
    assert not pack.problems
    return pack, compile_pack(pack)


PACKS = {kind: _load(kind) for kind in KINDS}


def outcome(rule: Rule, event: Any) -> bool | str:
    result = rule.evaluate(event)
    return "error" if result.matched is None else result.matched


def ir_outcome(condition: Any, event: Any) -> bool | str:
    try:
        value = evaluate(condition, event)
    except ResidualReached:
        return "residual"
    except Exception:  # noqa: BLE001 - an exception is the rule raising
        return "error"
    return value if isinstance(value, bool) else "error"


def canonical(schema: pa.Schema) -> bool:
    """Ports are int columns and addresses str columns (or absent/null) throughout, and no
    lookup table matched through a list selector (whether such a list of rows is empty is
    Python's to say: the query asks it)."""
    def ok(paths: list[tuple[str, ...]], kind: str) -> bool:
        return all(resolve_path(schema, p)[0] in (kind, NULL) for p in paths)

    return ok(PORT_PATHS, INT) and ok(ADDR_PATHS, STR) and not enriched_lists(schema)


def enriched_lists(schema: pa.Schema) -> bool:
    """Whether ``p_enrichment`` holds a list (a table's matches through a list selector)."""
    def lists(kind: pa.DataType) -> bool:
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return True
        return pa.types.is_struct(kind) and any(lists(kind.field(i).type)
                                                for i in range(kind.num_fields))

    return "p_enrichment" in schema.names and lists(schema.field("p_enrichment").type)


def to_table(records: list[dict[str, Any]]) -> pa.Table:
    """``from_pylist`` takes its columns from the first record only: give every record all keys."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    return pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in records])


def check_batch(kind: str, records: list[dict[str, Any]], log_type: str) -> dict[str, int]:
    pack, compiled = PACKS[kind]
    table = to_table(records)
    rows = table.to_pylist()
    verdicts = evaluate_batch(compiled, table, log_type)
    exact_types = canonical(table.schema)
    asked = {}
    for rule in pack.rules:
        codes = verdicts[rule.id].codes
        condition = compiled.extractions[rule.id].condition
        plan = compiled.plans[(rule.id, log_type)]
        asked[rule.id] = 0
        for index, (record, row) in enumerate(zip(records, rows, strict=True)):
            truth = outcome(rule, pack.event(row))
            if rule.id not in READS_PRESENCE:
                assert outcome(rule, pack.event(record)) == truth, "the batch changed the event"
            via_ir = ir_outcome(condition, pack.event(row))
            assert via_ir in (truth, "residual"), (rule.id, row, truth, via_ir)
            got = CODES[int(codes[index])]
            if got == "python":
                asked[rule.id] += 1
                if plan.exact and exact_types:
                    assert truth == "error", (rule.id, row, truth)
            else:
                assert got == truth, (rule.id, row, truth, got)
    return asked


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(records=vpcflow_batch())
def test_vpcflow_batches_agree(kind, records):
    check_batch(kind, records, "AWS.VPCFlow")


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(records=ocsf_batch())
def test_ocsf_batches_agree(kind, records):
    check_batch(kind, records, "OCSF.NetworkActivity")


@pytest.mark.parametrize("kind", KINDS)
def test_every_rule_test_log_agrees_and_passes(kind):
    pack, _ = PACKS[kind]
    for rule in pack.rules:
        for test in rule.tests:
            check_batch(kind, [test.log], test.log["p_log_type"])


def test_builtin_rule_tests_pass_through_the_vectorized_path():
    pack, compiled = PACKS["builtin"]
    for rule in pack.rules:
        for test in rule.tests:
            table = pa.Table.from_pylist([test.log])
            verdict = evaluate_batch(compiled, table, test.log["p_log_type"])[rule.id]
            code = CODES[int(verdict.codes[0])]
            if code == "python" and enriched_lists(table.schema):
                continue  # see ``canonical``: the query asks Python, by design
            assert code == test.expected, (rule.id, test.name)


def test_residual_rows_are_only_those_reaching_the_residual():
    """A partial rule's prefix decides rows without Python; only the rest asks Python."""
    records = [
        {"dstPort": 80, "srcAddr": "45.1.1.1", "p_log_type": "AWS.VPCFlow"},   # prefix: no
        {"dstPort": 22, "srcAddr": "45.1.1.1", "p_log_type": "AWS.VPCFlow"},   # residual
        {"dstPort": None, "srcAddr": "10.0.0.1", "p_log_type": "AWS.VPCFlow"},  # prefix: no
    ]
    assert check_batch("forms", records, "AWS.VPCFlow")["Test.Forms.ResidualOperand"] == 1
    _, compiled = PACKS["forms"]
    codes = evaluate_batch(compiled, to_table(records), "AWS.VPCFlow")
    assert codes["Test.Forms.ResidualOperand"].python.tolist() == [1]


def test_a_helper_function_is_inlined():
    """The rule's own helper compiles where it is called: no row asks Python."""
    records = [{"dstPort": 22, "srcAddr": "45.1.1.1", "p_log_type": "AWS.VPCFlow"},
               {"dstPort": 22, "srcAddr": "10.0.0.1", "p_log_type": "AWS.VPCFlow"}]
    assert check_batch("partial", records, "AWS.VPCFlow")["Test.HelperFunction"] == 0


def test_method_mapping_asks_python_only_on_ocsf():
    _, compiled = PACKS["partial"]
    assert compiled.plans[("Test.MethodMapping", "AWS.VPCFlow")].exact
    ocsf = compiled.plans[("Test.MethodMapping", "OCSF.NetworkActivity")]
    assert not ocsf.exact and "interface_id" in ocsf.reasons[0]
    records = [{"dst_endpoint": {"port": 22}, "p_log_type": "OCSF.NetworkActivity"},
               {"dst_endpoint": {"port": 23}, "p_log_type": "OCSF.NetworkActivity"}]
    verdict = evaluate_batch(compiled, to_table(records), "OCSF.NetworkActivity")
    assert verdict["Test.MethodMapping"].codes.tolist() == [2, 0]
    check_batch("partial", records, "OCSF.NetworkActivity")


def test_arrow_kinds_used_by_the_canonical_check():
    assert arrow_kind(pa.int64()) == INT and arrow_kind(pa.string()) == STR
