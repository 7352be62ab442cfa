"""The IPv6 table of ``ipclass`` against the running ``ipaddress``: every boundary, the
IPv4-mapped range, random addresses and strings only Python decides."""

from __future__ import annotations

import ipaddress

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowwarden.engine.local.ipclass import IpClassifier, ipv6_table, module_ipv6_boundaries
from flowwarden.logic.render.probe import TRUTHY, Probe

CHECKS = [Probe("check", "network", True), Probe("check", "network", False),
          Probe("check", "address", True)]
CIDR = Probe("cidr", "address", True, ("fd00::/8", "10.0.0.0/8"))
ODD = ["fe80::1%eth0", "2600::1\n", "2600::/64", ":::", "1::2::3", "::ffff:256.1.1.1",
       "::ffff:1.2.3.04", "FFFF::", "0::0", "::", "::ffff:10.0.0.1", "2001:db8::1", "ff02::fb"]


def expected(values: list[str], probe: Probe) -> list[int]:
    return [probe.classify(v) | (TRUTHY if v else 0) for v in values]


def test_boundaries_include_the_module_networks_and_mapped_ipv4():
    bounds = module_ipv6_boundaries()
    assert bounds is not None  # CPython 3.11's checks consult membership and ipv4_mapped only
    assert int(ipaddress.IPv6Address("fc00::")) in bounds
    assert int(ipaddress.IPv6Address("::ffff:10.0.0.0")) in bounds
    assert ipv6_table(CIDR) is None  # membership of configured networks stays with Python


@pytest.mark.parametrize("probe", CHECKS, ids=["network", "network-not-strict", "address"])
def test_every_boundary_and_odd_string_equals_the_module(probe):
    points = {b + d for b in module_ipv6_boundaries() or () for d in (-1, 0, 1)}
    values = sorted({*(str(ipaddress.IPv6Address(p)) for p in points if 0 <= p < 2**128), *ODD})
    got = IpClassifier().classify_distinct(pa.array(values), probe)
    assert got.tolist() == expected(values, probe)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
    st.integers(0, 2**32 - 1).map(lambda n: f"::ffff:{ipaddress.IPv4Address(n)}"),
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv6Address((0xFFFF << 32) + n))),
), min_size=1, max_size=30, unique=True), st.sampled_from([*CHECKS, CIDR]))
def test_random_ipv6_equals_the_module(values, probe):
    got = IpClassifier().classify_distinct(pa.array(values), probe)
    assert got.tolist() == expected(values, probe)
