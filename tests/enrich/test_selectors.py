from __future__ import annotations

import pyarrow as pa
import pytest

from flowwarden.enrich.selectors import path_of, select

ENDPOINT = pa.struct([("ip", pa.string()), ("port", pa.int64())])
BATCH = pa.record_batch({
    "srcAddr": pa.array(["192.0.2.1", None, "192.0.2.3"]),
    "src_endpoint": pa.array([{"ip": "10.0.0.1", "port": 1}, None, {"ip": None, "port": 3}],
                             ENDPOINT),
    "observables": pa.array([[{"ip": "a", "port": 1}, {"ip": "b", "port": 2}], None,
                             [{"ip": "c", "port": 3}]], pa.list_(ENDPOINT)),
    "p_any_ip_addresses": pa.array([["x"], [], ["y", "z"]], pa.list_(pa.string())),
    "dotted.name": pa.array(["d1", "d2", "d3"]),
})


@pytest.mark.parametrize(("selector", "values", "rows"), [
    ("srcAddr", ["192.0.2.1", None, "192.0.2.3"], None),
    ("SRCADDR", ["192.0.2.1", None, "192.0.2.3"], None),  # any case, as Panther's events
    ("$.src_endpoint.ip", ["10.0.0.1", None, None], None),
    ("src_endpoint.ip", ["10.0.0.1", None, None], None),
    ("$.src_endpoint.port", [1, None, 3], None),
    ("$.observables[*].ip", ["a", "b", "c"], [0, 0, 2]),
    ("observables.ip", ["a", "b", "c"], [0, 0, 2]),
    ("p_any_ip_addresses", ["x", "y", "z"], [0, 2, 2]),
    ("dotted.name", ["d1", "d2", "d3"], None),
])
def test_selectors_read_columns_paths_and_lists(selector: str, values: list[object],
                                                rows: list[int] | None) -> None:
    found = select(BATCH, selector)
    assert found is not None
    assert found.values.to_pylist() == values
    assert (found.rows.tolist() if found.rows is not None else None) == rows
    assert found.is_list == (rows is not None)


@pytest.mark.parametrize("selector", ["nosuch", "$.src_endpoint.nosuch", "$.srcAddr.ip",
                                      "src_endpoint", "observables", "$."])
def test_selectors_the_batch_cannot_answer_select_nothing(selector: str) -> None:
    assert select(BATCH, selector) is None


def test_paths() -> None:
    assert path_of("$.a.b") == ("a", "b")
    assert path_of("$['a']['b']") == ("a", "b")
    assert path_of("a") == ("a",)
