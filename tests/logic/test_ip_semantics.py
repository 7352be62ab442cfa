"""IP classification: pinned 3.11.7 behaviour, and the derived tables against the module."""

from __future__ import annotations

import doctest
import ipaddress
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowwarden.engine.local import ipclass
from flowwarden.engine.local.ipclass import (
    IPV4_PATTERN,
    IpClassifier,
    ipv4_table,
    module_ipv4_networks,
)
from flowwarden.logic.render.probe import TRUTHY, VALID, Probe
from tests.logic.flow_events import INVALID, address

CHECK = Probe("check", "network", True)
PROBES = [
    CHECK, Probe("check", "network", False), Probe("check", "address", True),
    Probe("cidr", "address", True, ("10.0.0.0/8", "100.64.0.0/10", "fd00::/8")),
    Probe("cidr", "address", True, ("192.168.0.0/16", "10.0.0.1/8")),  # 2nd raises when reached
]
PROBE_IDS = ["network", "network-not-strict", "address", "cidr", "cidr-bad-network"]


def bits(value: str | None, probe: Probe = CHECK) -> dict[str, bool]:
    code = probe.classify(value)
    return {"valid": bool(code & VALID), "global": bool(code & Probe.bit("is_global")),
            "private": bool(code & Probe.bit("is_private"))}


@pytest.mark.parametrize(("value", "is_global", "is_private"), [
    ("100.64.0.1", False, False),          # shared address space: neither
    ("224.0.0.251", True, False),          # mDNS multicast is global on 3.11
    ("::ffff:8.8.8.8", False, True),       # IPv4-mapped: private and not global on 3.11.7
    ("::ffff:10.0.0.1", False, True),
    ("fc00::1", False, True),
    ("192.0.0.9", True, False),            # not in 3.11.7's private list (newer releases differ)
    ("8.8.8.8", True, False),
    ("10.0.0.0/8", False, True),
    ("0.0.0.0/32", False, True),
    ("1.0.0.0/32", True, False),
])
def test_pinned_311_semantics(value, is_global, is_private):
    # The table pins CPython 3.11.7; another interpreter's ipaddress is the reference there
    # (the tables are derived from the running module), so the probe must equal it instead.
    if sys.version_info[:3] != (3, 11, 7):
        network = ipaddress.ip_network(value, strict=True)
        is_global, is_private = network.is_global, network.is_private
    assert bits(value) == {"valid": True, "global": is_global, "private": is_private}


@pytest.mark.parametrize("value", ["10.0.0.1/8", "garbage", "", None, "1.2.3.4\n", "01.2.3.4"])
def test_values_that_raise_have_no_valid_bit(value):
    assert bits(value)["valid"] is False


def test_table_boundaries_come_from_the_module():
    networks = {str(n) for n in module_ipv4_networks()}
    assert {"100.64.0.0/10", "10.0.0.0/8", "240.0.0.0/4"} <= networks  # literal, constants
    starts, codes = ipv4_table(CHECK)
    assert starts[0] == 0 and np.all(np.diff(starts) > 0)
    assert (codes != ipclass.UNKNOWN).all()


@pytest.mark.parametrize("probe", PROBES, ids=PROBE_IDS)
def test_table_agrees_with_the_module_at_every_boundary(probe):
    starts, _ = ipv4_table(probe)
    points = sorted({int(p) + d for p in starts for d in (-1, 0, 1) if 0 <= int(p) + d < 2**32})
    values = pa.array([str(ipaddress.IPv4Address(p)) for p in points])
    got = IpClassifier().classify_distinct(values, probe)
    want = [probe.classify(v) | TRUTHY for v in values.to_pylist()]
    assert got.tolist() == want


@settings(max_examples=300, deadline=None)
@given(st.lists(address, min_size=1, max_size=40, unique=True), st.sampled_from(PROBES))
def test_classifier_equals_the_module(values, probe):
    got = IpClassifier().classify_distinct(pa.array(values, pa.string()), probe)
    assert got.tolist() == [probe.classify(v) | (TRUTHY if v else 0) for v in values]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(PROBES))
def test_random_ipv4_equals_the_module(number, probe):
    value = str(ipaddress.IPv4Address(number))
    assert IpClassifier().classify_distinct(pa.array([value]), probe)[0] == (
        probe.classify(value) | TRUTHY)


@pytest.mark.parametrize("value", [*INVALID, "1.2.3.4", "0.0.0.0", "255.255.255.255"], ids=repr)
def test_ipv4_pattern_accepts_exactly_what_ipaddress_parses(value):
    import pyarrow.compute as pc

    matched = pc.match_substring_regex(pa.array([value]), IPV4_PATTERN)[0].as_py()
    try:
        ipaddress.IPv4Address(value)
        parses = True
    except ValueError:
        parses = False
    assert matched == parses


def test_codes_map_back_to_rows_with_nulls_and_dictionaries():
    classifier = IpClassifier()
    values = ["10.0.0.1", None, "8.8.8.8", "", "10.0.0.1"]
    probe = CHECK
    for array in (pa.array(values), pa.array(values).dictionary_encode(),
                  pa.chunked_array([values[:2], values[2:]]), pa.array(values, pa.large_string())):
        codes = classifier.codes(array, probe).to_pylist()
        assert codes == [probe.classify(v) | (TRUTHY if v else 0) for v in values]
    assert classifier.codes(pa.nulls(2), probe).to_pylist() == [probe.classify(None)] * 2


def test_a_shared_dictionary_is_classified_once(monkeypatch):
    classifier = IpClassifier()
    column = pa.array(["10.0.0.1", "8.8.8.8"] * 40).dictionary_encode()
    calls = []
    original = classifier.classify_distinct
    monkeypatch.setattr(classifier, "classify_distinct",
                        lambda values, probe: calls.append(1) or original(values, probe))
    first = classifier.codes(column.slice(0, 40), CHECK)
    second = classifier.codes(column.slice(40, 40), CHECK)
    assert calls == [1] and first.to_pylist() == second.to_pylist()


def test_doctests():
    result = doctest.testmod(ipclass)
    assert result.attempted > 0 and result.failed == 0


def test_an_oversized_dictionary_classifies_only_used_entries(monkeypatch):
    classifier = IpClassifier()
    dictionary = pa.array([f"10.0.{i // 256}.{i % 256}" for i in range(1000)] + ["bad"])
    column = pa.DictionaryArray.from_arrays(pa.array([3, None, 1000, 3], pa.int32()), dictionary)
    seen = []
    original = classifier.classify_distinct
    monkeypatch.setattr(classifier, "classify_distinct",
                        lambda values, probe: seen.append(len(values)) or original(values, probe))
    codes = classifier.codes(column, CHECK).to_pylist()
    assert seen == [2]
    assert codes == [CHECK.classify(v) | (TRUTHY if v else 0)
                     for v in ["10.0.0.3", None, "bad", "10.0.0.3"]]
