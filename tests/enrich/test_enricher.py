from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flowwarden.enrich import enricher as enricher_module
from flowwarden.enrich.enricher import BoundTable, Enricher, enrichment_view
from flowwarden.enrich.table import CIDR, EXACT, TableLookup
from flowwarden.logs.reader import read
from flowwarden.rules.event import PantherEvent
from tests.conftest import SAMPLES

VPC_SOURCES = [SAMPLES / "s3-text", SAMPLES / "parquet" / "synthetic_v8_aws_doc_types.parquet"]
OCSF_SOURCES = [SAMPLES / "ocsf" / "vpcflow_ocsf_1.1.0.jsonl"]


def batches(sources: Iterable[Path], log_type: str) -> list[pa.RecordBatch]:
    found = [b.batch for b in read([str(s) for s in sources]) if b.log_type == log_type]
    assert found, f"no {log_type} batch in {sources}"
    return found


def addresses(found: list[pa.RecordBatch]) -> list[str]:
    seen: dict[str, None] = {}
    for batch in found:
        for row in batch.column("p_any_ip_addresses").to_pylist():
            seen.update(dict.fromkeys(row or ()))
    return list(seen)


class Reference:
    """One table matched the slow way: the row whose key equals the value, or the longest
    network containing it by ``ipaddress``."""

    def __init__(self, name: str, rows: list[dict[str, Any]], key: str, kind: str) -> None:
        self.name, self.rows, self.key, self.kind = name, rows, key, kind

    def lookup(self) -> TableLookup:
        return TableLookup(self.name, pa.Table.from_pylist(self.rows), self.key,
                           CIDR if self.kind == CIDR else EXACT)

    def match(self, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        text = str(value)
        if self.kind == EXACT:
            hits = [r for r in self.rows if r[self.key] == text]
            return dict(hits[-1], p_match=text) if hits else None
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return None
        best: tuple[int, dict[str, Any]] | None = None
        for row in self.rows:
            network = ipaddress.ip_network(row[self.key], strict=False)
            if address in network and (best is None or network.prefixlen >= best[0]):
                best = (network.prefixlen, row)
        return dict(best[1], p_match=text) if best else None


def walk(row: dict[str, Any], selector: str) -> Any:
    value: Any = row
    for name in selector.removeprefix("$.").split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def expected(row: dict[str, Any], tables: list[tuple[Reference, tuple[str, ...]]]) -> Any:
    shown: dict[str, Any] = {}
    for table, selectors in tables:
        found: dict[str, Any] = {}
        for selector in selectors:
            value = walk(row, selector)
            if isinstance(value, list):
                hits = [m for m in (table.match(v) for v in value) if m is not None]
                if hits:
                    found[selector.removeprefix("$.")] = hits  # keyed as Panther keys it
            elif (hit := table.match(value)) is not None:
                found[selector.removeprefix("$.")] = hit
        if found:
            shown[table.name] = found
    return shown or None


def check_row_by_row(found: list[pa.RecordBatch], log_type: str,
                     tables: list[tuple[Reference, tuple[str, ...]]]) -> int:
    enricher = Enricher([BoundTable(t.lookup(), {log_type: s}) for t, s in tables])
    matched = 0
    for batch in found:
        enriched = enricher.enrich(batch, log_type)
        got = [enrichment_view(v) for v in enriched.column("p_enrichment").to_pylist()]
        want = [expected(row, tables) for row in batch.to_pylist()]
        assert got == want
        matched += sum(1 for w in want if w)
    return matched


def flow_tables(known: list[str]) -> list[Reference]:
    exits = [{"ip": a, "first_seen": f"2024-01-0{i % 9 + 1}"} for i, a in enumerate(known[::3])]
    networks = ["10.0.0.0/8", "10.0.0.0/16", "172.31.0.0/16", "0.0.0.0/0", "2001:db8::/32",
                "::/0", *(f"{a}/32" if ":" not in a else f"{a}/128" for a in known[1::4])]
    corp = [{"cidr": n, "site": f"site-{i}", "prefix": int(n.split("/")[1])}
            for i, n in enumerate(networks)]
    return [Reference("tor_exit_nodes", exits, "ip", EXACT),
            Reference("corp_cidrs", corp, "cidr", CIDR)]


def test_vpc_flow_batches_get_p_enrichment_as_a_per_row_reference_computes_it() -> None:
    found = batches(VPC_SOURCES, "AWS.VPCFlow")
    tor, corp = flow_tables(addresses(found))
    selectors = ("srcAddr", "dstAddr", "p_any_ip_addresses")
    matched = check_row_by_row(found, "AWS.VPCFlow", [(tor, selectors), (corp, selectors)])
    assert matched > 0


def test_ocsf_batches_select_struct_paths() -> None:
    found = batches(OCSF_SOURCES, "OCSF.NetworkActivity")
    tor, corp = flow_tables(addresses(found))
    matched = check_row_by_row(found, "OCSF.NetworkActivity", [
        (tor, ("$.src_endpoint.ip", "dst_endpoint.ip")),
        (corp, ("$.dst_endpoint.ip", "p_any_ip_addresses")),
    ])
    assert matched > 0


class Counting:
    """A lookup that counts the keys it is asked."""

    def __init__(self, inner: TableLookup) -> None:
        self.inner = inner
        self.asked: Counter[str] = Counter()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def row_type(self) -> pa.StructType:
        return self.inner.row_type

    def match(self, keys: pa.Array) -> pa.Array:
        self.asked.update(keys.to_pylist())
        return self.inner.match(keys)


def flows(src: list[str | None], dst: list[str | None]) -> pa.RecordBatch:
    return pa.record_batch({"srcAddr": pa.array(src, pa.string()),
                            "dstAddr": pa.array(dst, pa.string())})


TOR = TableLookup("tor", pa.table({"ip": ["192.0.2.1", "192.0.2.2"], "flag": ["Exit", "Exit"]}),
                  "ip")


def test_each_distinct_value_is_asked_once_across_selectors_and_batches() -> None:
    counting = Counting(TOR)
    enricher = Enricher([BoundTable(counting, {"AWS.VPCFlow": ("srcAddr", "dstAddr")})])
    first = flows(["192.0.2.1", "10.0.0.1", "192.0.2.1", None], ["10.0.0.1", "192.0.2.2", None,
                                                                  "10.0.0.1"])
    enricher.enrich(first, "AWS.VPCFlow")
    enricher.enrich(first, "AWS.VPCFlow")
    enricher.enrich(flows(["192.0.2.2"], ["198.51.100.7"]), "AWS.VPCFlow")
    assert counting.asked == Counter({"192.0.2.1": 1, "10.0.0.1": 1, "192.0.2.2": 1,
                                      "198.51.100.7": 1})


@pytest.mark.parametrize("hashed", [True, False], ids=["hashed probe", "dict probe"])
def test_both_cache_probes_give_the_same_column_and_ask_each_value_once(
        hashed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not hashed:  # a cache "too big" for the hashed probe from the first key on
        monkeypatch.setattr(enricher_module, "HASHED_PROBE_KEYS", 0)
        monkeypatch.setattr(enricher_module, "HASHED_PROBE_RATIO", 0)
    counting = Counting(TOR)
    enricher = Enricher([BoundTable(counting, {"T": ("srcAddr", "dstAddr")})])
    batches = [flows(["192.0.2.1", "10.0.0.1", None], ["10.0.0.1", "192.0.2.2", "10.0.0.3"]),
               flows(["192.0.2.2", "10.0.0.9"], ["192.0.2.1", None])]
    got = [enricher.enrich(b, "T").column("p_enrichment").to_pylist() for b in batches * 2]
    assert [[v and sorted(s for s, row in v["tor"].items() if row) for v in batch]
            for batch in got[:2]] == [[["srcAddr"], ["dstAddr"], None], [["dstAddr", "srcAddr"], None]]
    assert got[2:] == got[:2]
    assert counting.asked == Counter({"192.0.2.1": 1, "10.0.0.1": 1, "192.0.2.2": 1,
                                      "10.0.0.3": 1, "10.0.0.9": 1})


def test_a_full_cache_starts_again_and_results_stay_right() -> None:
    enricher = Enricher([BoundTable(TOR, {"T": ("srcAddr",)})], max_cache=2)
    for _ in range(3):
        batch = flows(["192.0.2.1", "10.0.0.1", "10.0.0.2", "192.0.2.2"], [None] * 4)
        got = enricher.enrich(batch, "T").column("p_enrichment").to_pylist()
        assert [v and v["tor"]["srcAddr"]["p_match"] for v in got] == [
            "192.0.2.1", None, None, "192.0.2.2"]


def test_dictionary_columns_give_the_same_column_as_plain_ones() -> None:
    src = ["192.0.2.1", "10.0.0.1", None, "192.0.2.1", "192.0.2.2"]
    plain = flows(src, src)
    encoded = pa.record_batch({"srcAddr": pa.array(src).dictionary_encode(),
                               "dstAddr": pa.array(src).dictionary_encode()})
    enricher = Enricher([BoundTable(TOR, {"T": ("srcAddr", "dstAddr")})])
    assert enricher.enrich(encoded, "T").column("p_enrichment").equals(
        Enricher([BoundTable(TOR, {"T": ("srcAddr", "dstAddr")})]).enrich(plain, "T")
        .column("p_enrichment"))


def test_the_arrow_layout_is_structs_null_where_nothing_matched() -> None:
    enricher = Enricher([BoundTable(TOR, {"T": ("srcAddr", "dstAddr")})])
    column = enricher.enrich(flows(["192.0.2.1", "10.0.0.1"], ["10.0.0.2", "10.0.0.3"]), "T"
                             ).column("p_enrichment")
    row = pa.struct([("ip", pa.string()), ("flag", pa.string()), ("p_match", pa.string())])
    assert column.type == pa.struct([("tor", pa.struct([("srcAddr", row), ("dstAddr", row)]))])
    assert column.to_pylist() == [
        {"tor": {"srcAddr": {"ip": "192.0.2.1", "flag": "Exit", "p_match": "192.0.2.1"},
                 "dstAddr": None}},
        None,
    ]


def test_reads_narrow_the_column_to_the_tables_selectors_and_fields_read() -> None:
    asn = TableLookup("asn", pa.table({"ip": ["192.0.2.1"], "asn": [64512], "org": ["x"]}), "ip")
    enricher = Enricher([BoundTable(TOR, {"T": ("srcAddr", "dstAddr")}),
                         BoundTable(asn, {"T": ("srcAddr", "dstAddr")})])
    batch = flows(["192.0.2.1", "10.0.0.1"], ["192.0.2.1", "192.0.2.1"])
    whole = enricher.enrich(batch, "T").column("p_enrichment")
    narrow = enricher.enrich(batch, "T", {"asn": {"dstAddr": frozenset({"asn"})}}
                             ).column("p_enrichment")
    assert narrow.type == pa.struct([("asn", pa.struct([("dstAddr", pa.struct([
        ("asn", pa.dictionary(pa.int32(), pa.int64()))]))]))])
    assert narrow.to_pylist() == [{"asn": {"dstAddr": {"asn": 64512}}}] * 2
    assert [row["asn"]["dstAddr"]["asn"] for row in whole.to_pylist()] == [64512] * 2
    # a row of no field read keeps p_match (its validity); a whole table or selector, all
    tor = enricher.enrich(batch, "T", {"tor": {"srcAddr": frozenset({"nothing"})}}
                          ).column("p_enrichment")
    assert tor.to_pylist() == [{"tor": {"srcAddr": {"p_match": "192.0.2.1"}}}, None]
    some = enricher.enrich(batch, "T", {"tor": None, "asn": {"srcAddr": None}}).column(
        "p_enrichment")
    tor_row = {"ip": "192.0.2.1", "flag": "Exit", "p_match": "192.0.2.1"}
    assert some.to_pylist() == [  # asn's dstAddr is left out
        {"tor": {"srcAddr": tor_row, "dstAddr": tor_row},
         "asn": {"srcAddr": {"ip": "192.0.2.1", "asn": 64512, "org": "x",
                             "p_match": "192.0.2.1"}}},
        {"tor": {"srcAddr": None, "dstAddr": tor_row}, "asn": None}]
    # texts are positions among the table's (dictionary-encoded): free to place per record
    assert some.type.field("tor").type.field("srcAddr").type.field("flag").type == \
        pa.dictionary(pa.int32(), pa.string())
    assert "p_enrichment" not in enricher.enrich(batch, "T", {}).schema.names


def test_a_narrowed_column_holds_the_same_values_from_dictionary_columns() -> None:
    src = ["192.0.2.1", "10.0.0.1", None, "192.0.2.2", "192.0.2.1"]
    dst = [None, "192.0.2.2", "192.0.2.1", "10.0.0.9", "10.0.0.1"]
    encoded = pa.record_batch({"srcAddr": pa.array(src).dictionary_encode(),
                               "dstAddr": pa.array(dst).dictionary_encode()})
    enricher = Enricher([BoundTable(TOR, {"T": ("srcAddr", "dstAddr")})])
    whole = enricher.enrich(encoded, "T").column("p_enrichment").to_pylist()
    every = frozenset({"ip", "flag", "p_match"})
    narrow = enricher.enrich(encoded, "T", {"tor": {"srcAddr": every, "dstAddr": every}})
    assert narrow.column("p_enrichment").to_pylist() == whole
    assert whole[2] == {"tor": {"srcAddr": None, "dstAddr": {
        "ip": "192.0.2.1", "flag": "Exit", "p_match": "192.0.2.1"}}}


def test_duckdb_reads_a_narrowed_column_as_the_whole_one() -> None:
    """Every scalar of a narrowed column is dictionary-encoded over its entries (null for an
    entry that matched nothing); the query must see the values and nulls of the whole one."""
    import duckdb

    scores = TableLookup("scores", pa.table({
        "ip": ["192.0.2.1", "192.0.2.2", "192.0.2.3"], "n": [7, None, 9],
        "score": [0.5, 1.5, None], "bad": [True, None, False], "tags": [["a"], [], None]}), "ip")
    src = ["192.0.2.1", "10.0.0.1", None, "192.0.2.2", "192.0.2.3", "192.0.2.1"]
    dst = [None, "192.0.2.2", "192.0.2.1", "10.0.0.9", "10.0.0.1", "192.0.2.3"]
    batch = pa.record_batch({"srcAddr": pa.array(src).dictionary_encode(),
                             "dstAddr": pa.array(dst)})
    enricher = Enricher([BoundTable(scores, {"T": ("srcAddr", "dstAddr")})])
    every = frozenset({"ip", "n", "score", "bad", "tags", "p_match"})
    whole = enricher.enrich(batch, "T").select(["p_enrichment"])
    narrow = enricher.enrich(batch, "T", {"scores": {"srcAddr": every, "dstAddr": every}}
                             ).select(["p_enrichment"])
    assert narrow.column(0).to_pylist() == whole.column(0).to_pylist()
    fields = [f"p_enrichment.scores.{side}{tail}" for side in ("srcAddr", "dstAddr")
              for tail in ("", ".n", ".score", ".bad", ".tags", ".p_match", " IS NULL")]
    fields.append("p_enrichment IS NULL")
    query = f"SELECT {', '.join(fields)} FROM t"
    seen = [duckdb.connect().execute(query.replace("FROM t", "FROM b")).fetchall()
            for b in (whole, narrow)]
    assert seen[0] == seen[1]
    assert [row[1] for row in seen[0]] == [7, None, None, None, 9, 7]


def test_what_a_rule_sees() -> None:
    enricher = Enricher([BoundTable(TOR, {"T": ("srcAddr", "dstAddr")})])
    enriched = enricher.enrich(flows(["192.0.2.1", "10.0.0.1"], ["10.0.0.2", "10.0.0.3"]), "T")
    rows = enriched.to_pylist()
    for row in rows:
        row["p_enrichment"] = enrichment_view(row["p_enrichment"])
    matched, unmatched = (PantherEvent(r) for r in rows)
    assert unmatched.get("p_enrichment") is None
    assert unmatched.deep_get("p_enrichment", "tor", "srcAddr") is None
    assert matched.deep_get("p_enrichment", "tor", "srcAddr", "flag") == "Exit"
    assert "dstAddr" not in matched.get("p_enrichment")["tor"]


def test_list_selectors_hold_only_the_matched_values_in_order() -> None:
    batch = pa.record_batch({"p_any_ip_addresses": pa.array(
        [["10.0.0.1", "192.0.2.2", "192.0.2.1"], [], None, ["10.0.0.9"]], pa.list_(pa.string()))})
    enricher = Enricher([BoundTable(TOR, {"T": ("p_any_ip_addresses",)})])
    got = enricher.enrich(batch, "T").column("p_enrichment").to_pylist()
    assert [v and [m["p_match"] for m in v["tor"]["p_any_ip_addresses"]] for v in got] == [
        ["192.0.2.2", "192.0.2.1"], None, None, None]


def test_the_column_type_is_the_same_whether_anything_matched_or_not() -> None:
    enricher = Enricher([BoundTable(TOR, {"T": ("srcAddr", "p_any_ip_addresses")})])
    types = set()
    for addresses in (["192.0.2.1"], ["10.0.0.1"]):
        batch = pa.record_batch({"srcAddr": addresses, "p_any_ip_addresses": [addresses]})
        types.add(enricher.enrich(batch, "T").schema.field("p_enrichment").type)
    assert len(types) == 1


def test_other_log_types_are_left_alone_and_missing_selectors_match_nothing() -> None:
    enricher = Enricher([BoundTable(TOR, {"T": ("srcAddr", "nosuch", "$.a.b")})])
    batch = flows(["192.0.2.1"], [None])
    assert enricher.enrich(batch, "Other") is batch
    got = enricher.enrich(batch, "T").column("p_enrichment").to_pylist()
    assert got == [{"tor": {"srcAddr": {"ip": "192.0.2.1", "flag": "Exit",
                                        "p_match": "192.0.2.1"}, "nosuch": None, "a.b": None}}]


def test_a_p_enrichment_column_the_input_carried_is_replaced() -> None:
    batch = flows(["10.0.0.1"], [None]).append_column("p_enrichment", pa.array([{"x": 1}]))
    enriched = Enricher([BoundTable(TOR, {"T": ("srcAddr",)})]).enrich(batch, "T")
    assert enriched.schema.names.count("p_enrichment") == 1
    assert enriched.column("p_enrichment").to_pylist() == [None]


def test_selector_values_that_are_not_text_match_as_their_text() -> None:
    table = TableLookup("ports", pa.table({"port": [22], "name": ["ssh"]}), "port")
    batch = pa.record_batch({"dstPort": pa.array([22, 80, None], pa.int64())})
    got = Enricher([BoundTable(table, {"T": ("dstPort",)})]).enrich(batch, "T")
    assert [v and v["ports"]["dstPort"]["name"] for v in
            got.column("p_enrichment").to_pylist()] == ["ssh", None, None]


@pytest.mark.parametrize("view", [None, {}, {"t": None}, {"t": {"s": None}}])
def test_an_enrichment_with_nothing_matched_shows_as_none(view: Any) -> None:
    assert enrichment_view(view) is None


def test_a_single_lookup_by_table_name_and_key() -> None:
    counting = Counting(TOR)
    enricher = Enricher([BoundTable(counting, {"T": ("srcAddr",)})])
    assert enricher.lookup("tor", "192.0.2.2") == {"ip": "192.0.2.2", "flag": "Exit"}
    assert enricher.lookup("tor", "192.0.2.2") == {"ip": "192.0.2.2", "flag": "Exit"}
    assert enricher.lookup("tor", "10.0.0.1") is None
    assert enricher.lookup("nosuch", "192.0.2.2") is None
    assert enricher.lookup("tor", None) is None
    assert counting.asked == Counter({"192.0.2.2": 1, "10.0.0.1": 1})


def test_values_without_a_text_form_and_empty_batches_match_nothing() -> None:
    enricher = Enricher([BoundTable(TOR, {"T": ("raw", "srcAddr")})])
    batch = pa.record_batch({"raw": pa.array([b"\xff", b"192.0.2.1"], pa.binary()),
                             "srcAddr": ["192.0.2.1", None]})
    got = enricher.enrich(batch, "T").column("p_enrichment").to_pylist()
    assert [enrichment_view(v) for v in got] == [
        {"tor": {"srcAddr": {"ip": "192.0.2.1", "flag": "Exit", "p_match": "192.0.2.1"}}}, None]
    empty = enricher.enrich(batch.slice(0, 0), "T")
    assert empty.num_rows == 0 and "p_enrichment" in empty.schema.names
