"""``generate_flows(..., clean=True)``: traffic without attacks, on which the tuned pack's rules
rarely match (the rare-match row of ``benchmarks/engine.py``)."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from flowwarden.engine.scan import Scanner
from flowwarden.rules.loader import load_pack, resolve_pack_paths
from tests.flowgen.generate import generate_flows
from tests.flowgen.scenarios import APPROVED_DNS, MDNS

RECORDS = 40_000


def test_clean_traffic_has_no_attacks() -> None:
    rows = pa.Table.from_batches(list(generate_flows(RECORDS, 5, clean=True))).to_pylist()
    assert len(rows) == RECORDS
    assert Counter(r["status"] for r in rows)["SKIPDATA"] == 0
    assert not any(r["action"] == "REJECT" for r in rows)  # no internet noise, no port scan
    resolvers = {r["dstAddr"] for r in rows if r["dstPort"] in (53, 5353)}
    assert resolvers <= {*APPROVED_DNS, MDNS}


def test_the_tuned_pack_matches_under_one_percent_of_clean_traffic(tmp_path) -> None:
    from flowwarden.logs import read
    from tests.flowgen.generate import write_parquet

    path = tmp_path / "clean.parquet"
    write_parquet(generate_flows(RECORDS, 5, clean=True), str(path))
    pack = load_pack(resolve_pack_paths(["tuned"]))
    result = Scanner(pack, pack.active_rules(), "duckdb").scan(read([str(path)]))
    assert result.records == RECORDS
    assert 0 < sum(result.matches.values()) < RECORDS / 100


def test_default_traffic_is_unchanged_by_the_option() -> None:
    assert (pa.Table.from_batches(list(generate_flows(3000, 9)))
            == pa.Table.from_batches(list(generate_flows(3000, 9, clean=False))))
