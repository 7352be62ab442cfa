from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from flowwarden.engine.local import vectorized
from flowwarden.engine.local.vectorized import (
    MATCH,
    NO_MATCH,
    PYTHON,
    BatchEvaluator,
    Verdicts,
    compile_pack,
    evaluate_batch,
)
from flowwarden.logic.ir import Field, InSet
from flowwarden.rules.loader import load_pack, resolve_pack_paths

VPC = "AWS.VPCFlow"
OCSF = "OCSF.NetworkActivity"


@pytest.fixture(scope="module")
def pack():
    return load_pack(resolve_pack_paths([]))


@pytest.fixture()
def compiled(pack):
    return compile_pack(pack)


def vpc(**fields: Any) -> dict[str, Any]:
    return {"srcAddr": None, "dstAddr": None, "srcPort": None, "dstPort": None, "protocol": None,
            "action": None, "status": None, "p_log_type": VPC, **fields}


class CountingConnection:
    """Wraps a DuckDB connection to count queries (the C type cannot be patched)."""

    def __init__(self, connection: Any) -> None:
        self.connection, self.executed, self.prepared = connection, 0, 0

    def execute(self, *args: Any) -> Any:
        if str(args[0]).startswith("PREPARE "):
            self.prepared += 1
        else:
            self.executed += 1
        return self.connection.execute(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)


def test_compile_pack_plans_every_rule_and_log_type(pack, compiled):
    assert set(compiled.plans) == {(r.id, lt) for r in pack.rules for lt in r.log_types}
    assert all(plan.exact for plan in compiled.plans.values())
    dns = compiled.plans[("AWS.VPC.UnapprovedOutboundDNS", OCSF)]
    # the data model's path, looked up by its exact names
    port = Field(("dst_endpoint", "port"), exact=True)
    assert port in [getattr(n, "operand", None) for n in dns.condition.operands]
    assert compiled.extractions["AWS.VPC.UnapprovedOutboundDNS"].status == "full"


def test_columns_read_per_log_type(pack, compiled):
    # conditions, key functions (dedup names the account, interface, cloud), event time, and
    # the lookup-table matches the threat-intel and Tor rules read
    assert compiled.columns(VPC) == {"p_event_time", "srcAddr", "dstAddr",
                                     "srcPort", "dstPort", "protocol", "action", "status",
                                     "account", "interfaceId", "p_enrichment"}
    assert compiled.columns(OCSF) == {"p_event_time", "src_endpoint",
                                      "dst_endpoint", "connection_info", "action", "status_code",
                                      "cloud", "p_enrichment"}


def test_compile_pack_renders_sql_for_given_schemas(pack):
    schema = pa.schema([("dstPort", pa.int64()), ("dstAddr", pa.string()), ("srcAddr", pa.string())])
    compiled = compile_pack(pack, schemas={VPC: schema})
    sql = compiled.plans[("AWS.VPC.InboundPortWhitelist", VPC)].sql
    assert sql is not None and '"f0:dstPort" IN (80, 443)' in sql
    assert compiled.plans[("AWS.VPC.InboundPortWhitelist", OCSF)].sql is None


def test_compile_pack_takes_a_subset_of_rules(pack):
    compiled = compile_pack(pack, [pack.rule("AWS.VPC.PortScan")])
    table = pa.Table.from_pylist([vpc(dstPort=22)])
    assert set(evaluate_batch(compiled, table, VPC)) == {"AWS.VPC.PortScan"}


def test_rules_without_the_log_type_get_nothing(tmp_path: Path):
    (tmp_path / "only_ocsf.yml").write_text(
        "AnalysisType: rule\nFilename: only_ocsf.py\nRuleID: Only.OCSF\nEnabled: true\n"
        "LogTypes: [OCSF.NetworkActivity]\nSeverity: Low\n")
    (tmp_path / "only_ocsf.py").write_text("def rule(event):\n    return True\n")
    compiled = compile_pack(load_pack([tmp_path]))
    assert evaluate_batch(compiled, pa.Table.from_pylist([vpc()]), VPC) == {}
    ocsf = pa.Table.from_pylist([{"p_log_type": OCSF}])
    assert evaluate_batch(compiled, ocsf, OCSF)["Only.OCSF"].match.tolist() == [0]
    assert evaluate_batch(compiled, ocsf, "Some.Other") == {}


def test_one_query_per_batch_on_one_connection(compiled):
    counting = CountingConnection(compiled.evaluator.connection)
    compiled.evaluator.connection = counting  # type: ignore[assignment]
    compiled.evaluator.prepared.connection = counting  # type: ignore[assignment]
    table = pa.Table.from_pylist([vpc(dstPort=53, srcAddr="10.0.0.1", dstAddr="9.9.9.9")] * 10)
    verdicts = [evaluate_batch(compiled, batch, VPC)["AWS.VPC.UnapprovedOutboundDNS"].match.tolist()
                for batch in table.to_batches(max_chunksize=4)]
    # one query per batch, not prepared (an EXECUTE scans the batch on one thread); each
    # batch's own rows read
    assert (counting.executed, counting.prepared) == (3, 0)
    assert verdicts == [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1]]


def test_verdicts_are_row_indices(compiled):
    table = pa.Table.from_pylist([
        vpc(dstPort=53, srcAddr="10.0.0.1", dstAddr="9.9.9.9"),  # match
        vpc(dstPort=53, srcAddr="10.0.0.1", dstAddr="1.1.1.1"),  # approved resolver
        vpc(dstPort=53, srcAddr="garbage", dstAddr="9.9.9.9"),   # ip_network raises
        vpc(dstPort=80, srcAddr="garbage", dstAddr="9.9.9.9"),   # never reaches it
    ])
    verdict = evaluate_batch(compiled, table, VPC)["AWS.VPC.UnapprovedOutboundDNS"]
    assert verdict.codes.tolist() == [MATCH, NO_MATCH, PYTHON, NO_MATCH]
    assert verdict.match.tolist() == [0] and verdict.python.tolist() == [2]
    assert verdict.match.dtype == np.int64


def test_record_batch_table_and_chunked_inputs_agree(compiled):
    rows = [vpc(dstPort=p, srcAddr="45.33.32.156", dstAddr="10.0.0.1") for p in (22, 80, 3389, 0)]
    table = pa.concat_tables([pa.Table.from_pylist(rows[:2]), pa.Table.from_pylist(rows[2:])])
    assert table["dstPort"].num_chunks == 2
    from_table = evaluate_batch(compiled, table, VPC)
    from_batch = evaluate_batch(compiled, table.combine_chunks().to_batches()[0], VPC)
    for rule_id, verdict in from_table.items():
        assert verdict.codes.tolist() == from_batch[rule_id].codes.tolist()
    assert from_table["AWS.VPC.InboundAdminPort"].match.tolist() == [0, 2]


def test_empty_batch(compiled):
    empty = pa.Table.from_pylist([vpc(dstPort=1)]).slice(0, 0)
    result = evaluate_batch(compiled, empty, VPC)
    assert all(len(v.codes) == 0 for v in result.values()) and len(result) == 8


def test_missing_columns_are_none(compiled):
    only_port = pa.Table.from_pylist([{"dstPort": 53, "p_log_type": VPC}])
    result = evaluate_batch(compiled, only_port, VPC)
    # DNS: missing source counts as internal (0.0.0.0/32), missing destination never alerts.
    assert result["AWS.VPC.UnapprovedOutboundDNS"].codes.tolist() == [NO_MATCH]
    assert result["AWS.VPC.SkipDataLogStatus"].codes.tolist() == [NO_MATCH]


def test_rows_of_another_log_type_ask_python(compiled):
    table = pa.Table.from_pylist([vpc(status="SKIPDATA"), vpc(status="SKIPDATA", p_log_type=OCSF),
                                  vpc(status="SKIPDATA", p_log_type=None)])
    verdict = evaluate_batch(compiled, table, VPC)["AWS.VPC.SkipDataLogStatus"]
    assert verdict.codes.tolist() == [MATCH, PYTHON, PYTHON]


def test_ocsf_nested_structs(compiled):
    table = pa.Table.from_pylist([
        {"dst_endpoint": {"ip": "10.1.1.1", "port": 22}, "src_endpoint": {"ip": "198.51.99.1"},
         "connection_info": {"protocol_num": 6}, "action": "Allowed", "p_log_type": OCSF},
        {"dst_endpoint": None, "src_endpoint": {"ip": "198.51.99.1"}, "p_log_type": OCSF},
    ])
    result = evaluate_batch(compiled, table, OCSF)
    assert result["AWS.VPC.SSHAcceptedFromInternet"].codes.tolist() == [MATCH, NO_MATCH]


def test_large_dictionary_batch_keeps_row_order(compiled):
    rng = np.random.default_rng(7)
    n = 200_000
    statuses = np.array(["OK", "SKIPDATA", "NODATA"], dtype=object)[rng.integers(0, 3, n)]
    ports = rng.choice([22, 53, 80, 443], n)
    addrs = np.array(["10.0.0.1", "8.8.8.8", "100.64.0.1", "fd00::1", "bad"], dtype=object)
    table = pa.table({
        "status": pc.dictionary_encode(pa.array(statuses)),
        "dstPort": pa.array(ports), "srcAddr": pa.array(addrs[rng.integers(0, 5, n)]),
        "dstAddr": pc.dictionary_encode(pa.array(addrs[rng.integers(0, 5, n)])),
        "p_log_type": pa.array([VPC] * n),
    })
    result = evaluate_batch(compiled, table, VPC)
    expected = np.flatnonzero(statuses == "SKIPDATA")
    assert np.array_equal(result["AWS.VPC.SkipDataLogStatus"].match, expected)
    # ip_network("bad") raises exactly on DNS-port rows whose source is "bad": those ask Python.
    src = table["srcAddr"].to_numpy(zero_copy_only=False)
    raises = np.flatnonzero(np.isin(ports, [53]) & (src == "bad"))
    assert set(raises.tolist()) <= set(result["AWS.VPC.UnapprovedOutboundDNS"].python.tolist())


def test_batch_evaluator_runs_any_named_conditions():
    evaluator = BatchEvaluator()
    table = pa.table({"dstPort": [22, 80, None]})
    codes = evaluator.codes({"ssh": InSet(Field(("dstPort",)), frozenset({22}))}, table)
    assert codes["ssh"].tolist() == [1, 0, 0]


def test_verdicts_from_codes():
    verdict = Verdicts.from_codes(np.array([0, 1, 2, 1], dtype=np.int8))
    assert verdict.match.tolist() == [1, 3] and verdict.python.tolist() == [2]


def test_doctests():
    result = doctest.testmod(vectorized)
    assert result.attempted > 0 and result.failed == 0


def test_samples_leave_out_columns_null_in_the_whole_batch():
    # Python's sample leaves out null fields; the query leaves out the columns null on every
    # row, so a batch whose only odd column (a decimal, which SQL does not write as Python)
    # is all null is rendered in SQL, and one where it holds a value is not.
    from decimal import Decimal

    from tests.alerts.test_jsonsql import python_json

    evaluator = BatchEvaluator()
    table = pa.table({
        "srcAddr": ["10.0.0.1", None, "10.0.0.3"], "dstPort": [443, 22, None],
        "ecsTaskId": pa.nulls(3, pa.string()), "amount": pa.nulls(3, pa.decimal128(10, 2)),
        "p_any_ip_addresses": [["10.0.0.1"], None, []],
    })
    assert evaluator.samples(table).to_pylist() == python_json(table)
    # the same rows as record batches, in pieces: the same texts
    batch = table.combine_chunks().to_batches()[0]
    assert evaluator.samples(batch.slice(1)).to_pylist() == python_json(table.slice(1))
    odd = table.set_column(3, "amount", pa.array([Decimal("1.50"), None, None],
                                                 pa.decimal128(10, 2)))
    assert evaluator.samples(odd) is None
    assert evaluator.samples(odd.slice(1)).to_pylist() == python_json(table.slice(1))
