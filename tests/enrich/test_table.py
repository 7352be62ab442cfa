from __future__ import annotations

import ipaddress

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowwarden.enrich.networks import NO_ROW, Intervals, NetworkIndex
from flowwarden.enrich.table import CIDR, EXACT, TableLookup


def brute_force(networks: list[str], key: str | None) -> int:
    """The reference: the last-listed of the longest networks containing the key, by
    ``ip_address(key) in ip_network(network)``."""
    if key is None:
        return NO_ROW
    try:
        address = ipaddress.ip_address(key)
    except ValueError:
        return NO_ROW
    best, best_len = NO_ROW, -1
    for row, text in enumerate(networks):
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if address in network and network.prefixlen >= best_len:
            best, best_len = row, network.prefixlen
    return best


@st.composite
def v4_network(draw: st.DrawFn) -> str:
    value = draw(st.integers(0, 2**32 - 1))
    # few distinct high bits, so networks nest and overlap often
    value = (draw(st.sampled_from([0x0A000000, 0xC0A80000, 0x08080800, 0])) & 0xFFFF0000) | (
        value & 0xFFFF)
    prefix = draw(st.sampled_from([0, 8, 16, 20, 24, 28, 31, 32]))
    network = ipaddress.ip_network((value, prefix), strict=False)
    # a /32 is written as a plain address half of the time
    plain = prefix == 32 and draw(st.booleans())
    return str(network.network_address) if plain else str(network)


@st.composite
def v6_network(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from([0x2001_0DB8 << 96, 0, 0xFFFF << 32, 0xFE80 << 112]))
    value = base | draw(st.integers(0, 2**40 - 1)) << draw(st.sampled_from([0, 64, 80]))
    value &= 2**128 - 1
    prefix = draw(st.sampled_from([0, 32, 64, 96, 100, 120, 127, 128]))
    return str(ipaddress.ip_network((value, prefix), strict=False))


def networks() -> st.SearchStrategy[str]:
    return st.one_of(v4_network(), v6_network(),
                     st.sampled_from(["0.0.0.0/0", "::/0", "::ffff:0:0/96", "not-a-cidr"]))


@st.composite
def keys(draw: st.DrawFn, table: list[str]) -> str | None:
    inside = []
    for text in table:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        inside.extend([str(network.network_address), str(network.broadcast_address),
                       str(network.network_address + 1) if network.num_addresses > 1
                       else str(network.network_address)])
    choices = [
        st.sampled_from(inside) if inside else st.just("10.0.0.1"),
        st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v))),
        st.integers(0, 2**128 - 1).map(lambda v: str(ipaddress.IPv6Address(v))),
        st.sampled_from(["::ffff:10.0.0.1", "::ffff:192.168.0.1", "fe80::1%eth0", "010.0.0.1",
                         "1.2.3.4/32", "", " 10.0.0.1", "10.0.0.256", "::", "0.0.0.0",
                         "255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]),
        st.none(),
    ]
    return draw(st.one_of(*choices))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_cidr_lookup_agrees_with_brute_force_longest_prefix(data: st.DataObject) -> None:
    table = data.draw(st.lists(networks(), max_size=25))
    asked = data.draw(st.lists(keys(table), max_size=30))
    index = NetworkIndex.build(table)
    assert index.find(pa.array(asked, pa.string())).tolist() == [
        brute_force(table, k) for k in asked]


EDGES = [
    ("0.0.0.0/0", "255.255.255.255", 0), ("0.0.0.0/0", "0.0.0.0", 0),
    ("0.0.0.0/0", "::1", NO_ROW), ("::/0", "10.0.0.1", NO_ROW),
    ("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0), ("::/0", "::", 0),
    ("10.0.0.1", "10.0.0.1", 0), ("10.0.0.1/32", "10.0.0.2", NO_ROW),
    ("2001:db8::1", "2001:db8::1", 0), ("2001:db8::1/128", "2001:db8::2", NO_ROW),
    # IPv4-mapped addresses are IPv6, as ``ip_address(x) in ip_network(y)`` says
    ("1.2.3.0/24", "::ffff:1.2.3.4", NO_ROW), ("::ffff:0:0/96", "::ffff:1.2.3.4", 0),
    ("::ffff:0:0/96", "1.2.3.4", NO_ROW),
    ("10.0.0.5/24", "10.0.0.200", 0),  # host bits in a table key are cleared
    ("fe80::/10", "fe80::1%eth0", 0),
    # forms the column-wise IPv4 reading leaves to ipaddress: a netmask, a zero-padded length
    ("10.0.0.0/255.0.0.0", "10.2.3.4", 0), ("10.0.0.0/08", "10.2.3.4", 0),
    ("10.0.0.0/0.0.0.255", "10.0.0.7", 0), ("010.0.0.0/8", "10.0.0.1", NO_ROW),
]


@pytest.mark.parametrize(("network", "key", "row"), EDGES, ids=[f"{n} {k}" for n, k, _ in EDGES])
def test_edge_cases_follow_python_ipaddress(network: str, key: str, row: int) -> None:
    assert NetworkIndex.build([network]).find(pa.array([key])).tolist() == [row]
    assert brute_force([network], key) == row


def test_nested_networks_longest_prefix_wins_and_the_parent_resumes_after_a_child() -> None:
    table = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "10.200.0.0/16"]
    asked = ["10.1.2.3", "10.1.2.4", "10.1.3.0", "10.2.0.0", "10.200.1.1", "10.201.0.0",
             "9.255.255.255", "11.0.0.0"]
    assert NetworkIndex.build(table).find(pa.array(asked)).tolist() == [3, 2, 1, 0, 4, 0,
                                                                       NO_ROW, NO_ROW]


def test_the_same_network_twice_keeps_the_later_row() -> None:
    assert NetworkIndex.build(["10.0.0.0/8", "10.0.0.0/8"]).find(
        pa.array(["10.0.0.1"])).tolist() == [1]
    # written differently (host bits set, a netmask), still the same network
    assert NetworkIndex.build(pa.array(["10.0.0.0/8", "10.9.9.9/8", "10.0.0.0/255.0.0.0"])).find(
        pa.array(["10.0.0.1"])).tolist() == [2]


def test_intervals_are_disjoint_and_ascending() -> None:
    flat = Intervals.flatten([(0, 99, 0), (10, 19, 1), (10, 14, 2), (50, 50, 3)], 2**32 - 1)
    assert flat.starts == [0, 10, 15, 20, 50, 51, 100]
    assert flat.rows == [0, 2, 1, 0, 3, 0, NO_ROW]


def test_table_lookup_rows_carry_every_column_and_null_where_nothing_matched() -> None:
    rows = pa.table({"ip": ["1.2.3.4", "5.6.7.8", None], "note": ["a", "b", "c"],
                     "score": [1, 2, 3]})
    table = TableLookup("t", rows, "ip", EXACT)
    found = table.match(pa.array(["5.6.7.8", "9.9.9.9", None, "1.2.3.4"]))
    assert found.type == table.row_type
    assert found.to_pylist() == [{"ip": "5.6.7.8", "note": "b", "score": 2}, None, None,
                                 {"ip": "1.2.3.4", "note": "a", "score": 1}]


def test_exact_lookup_compares_text_and_a_cidr_lookup_compares_addresses() -> None:
    rows = pa.table({"ip": ["2001:db8::1"]})
    assert TableLookup("t", rows, "ip", EXACT).match(pa.array(["2001:DB8::1"])).to_pylist() == [
        None]
    assert TableLookup("t", rows, "ip", CIDR).match(pa.array(["2001:DB8::1"])).to_pylist() == [
        {"ip": "2001:db8::1"}]


def test_integer_keys_match_as_their_text() -> None:
    rows = pa.table({"account": [123456789012, 42], "owner": ["x", "y"]})
    table = TableLookup("t", rows, "account")
    assert table.match(pa.array(["42", "7"])).field("owner").to_pylist() == ["y", None]


def test_unparseable_cidr_keys_are_reported_and_never_match() -> None:
    rows = pa.table({"cidr": ["10.0.0.0/8", "bogus", None]})
    table = TableLookup("t", rows, "cidr", CIDR)
    assert table.unparsed_rows == (1, 2)
    assert table.match(pa.array(["bogus", "10.0.0.1", "::"])).field("cidr").to_pylist() == [
        None, "10.0.0.0/8", None]


def test_an_empty_table_matches_nothing() -> None:
    rows = pa.table({"cidr": pa.array([], pa.string())})
    for kind in (EXACT, CIDR):
        assert TableLookup("t", rows, "cidr", kind).match(pa.array(["1.1.1.1", None])
                                                          ).to_pylist() == [None, None]


def test_a_missing_key_column_or_an_unknown_match_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="no primary key column 'ip'"):
        TableLookup("t", pa.table({"a": [1]}), "ip")
    with pytest.raises(ValueError, match="match must be one of"):
        TableLookup("t", pa.table({"a": [1]}), "a", "prefix")  # type: ignore[arg-type]
