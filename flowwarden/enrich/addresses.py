"""Addresses as integers, for matching them against networks: IPv4 parsed vectorized, anything
else through the running ``ipaddress`` module once per value.

Semantics are Python's ``ipaddress``: a key is an address when ``ipaddress.ip_address`` accepts
it (so ``fe80::1%eth0`` is the address ``fe80::1``, ``01.2.3.4`` is nothing), and an
IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) is an IPv6 address: it is inside ``::ffff:0:0/96``
or ``::/0``, never inside ``1.2.3.0/24``, as ``ip_address(x) in ip_network(y)`` says.

>>> import pyarrow as pa
>>> parsed = parse_addresses(pa.array(["10.0.0.1", "::1", "nope", None]))
>>> parsed.v4.tolist(), parsed.v4_value[0].item()
([True, False, False, False], 167772161)
>>> parsed.v6.tolist(), parsed.v6_lo[1].item()
([False, True, False, False], 1)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Exactly the strings ipaddress accepts as an IPv4 address: four canonical decimal octets, ASCII
# digits only, nothing before or after (RE2's ``$`` is the end of the text).
IPV4_TEXT = rf"^(?:{_OCTET}\.){{3}}{_OCTET}$"
# An IPv4 network as ``ipaddress.ip_network`` reads it at its simplest: an address as above and
# an optional canonical prefix length (other forms, ``/08`` or netmasks, go through Python).
IPV4_NETWORK_TEXT = (r"^" + r"\.".join(f"(?P<{name}>{_OCTET})" for name in "abcd")
                     + r"(?:/(?P<p>3[0-2]|[12]?[0-9]))?$")
LOW_64 = (1 << 64) - 1
OCTET_WEIGHTS = np.array([1 << 24, 1 << 16, 1 << 8, 1], dtype=np.uint64)


@dataclass(frozen=True)
class Parsed:
    """Per key: whether it is an IPv4 or an IPv6 address, and its value (IPv6 as two halves)."""

    v4: np.ndarray  # bool
    v4_value: np.ndarray  # uint64, meaningful where v4
    v6: np.ndarray  # bool
    v6_hi: np.ndarray  # uint64
    v6_lo: np.ndarray  # uint64


def parse_addresses(keys: pa.Array) -> Parsed:
    """Parse string keys; nulls and anything that is not an address are neither v4 nor v6."""
    count = len(keys)
    keys = keys.cast(pa.string())
    v4 = pc.fill_null(pc.match_substring_regex(keys, IPV4_TEXT), False).to_numpy(
        zero_copy_only=False)
    v4_value = np.zeros(count, dtype=np.uint64)
    if v4.any():
        quads = pc.split_pattern(keys.filter(pa.array(v4)), ".").flatten()
        octets = quads.cast(pa.uint64()).to_numpy().reshape(-1, 4)
        v4_value[v4] = octets @ OCTET_WEIGHTS
    v6 = np.zeros(count, dtype=bool)
    v6_hi = np.zeros(count, dtype=np.uint64)
    v6_lo = np.zeros(count, dtype=np.uint64)
    rest = np.flatnonzero(~v4 & keys.is_valid().to_numpy(zero_copy_only=False))
    for position, text in zip(rest.tolist(), keys.take(pa.array(rest)).to_pylist(), strict=True):
        address = address_of(text)
        if isinstance(address, ipaddress.IPv6Address):
            value = int(address)
            v6[position], v6_hi[position], v6_lo[position] = True, value >> 64, value & LOW_64
        elif address is not None:  # an IPv4 form the pattern did not foresee
            v4[position], v4_value[position] = True, int(address)
    return Parsed(v4, v4_value, v6, v6_hi, v6_lo)


@dataclass(frozen=True)
class ParsedNetworks:
    """Per key: whether it is an IPv4 network in the plain form ``IPV4_NETWORK_TEXT`` reads, and
    then its address (host bits not yet cleared) and prefix length."""

    v4: np.ndarray  # bool
    value: np.ndarray  # uint64, meaningful where v4
    length: np.ndarray  # uint64, meaningful where v4


def parse_v4_networks(keys: pa.Array) -> ParsedNetworks:
    """The plain IPv4 networks among string ``keys``, column-wise: what a CIDR feed mostly holds,
    so that only the other keys need ``network_of``.

    >>> found = parse_v4_networks(pa.array(["10.1.2.3/8", "1.2.3.4", "1.2.3.4/08", None]))
    >>> found.v4.tolist(), found.value[0].item(), found.length[:2].tolist()
    ([True, True, False, False], 167838211, [8, 32])
    """
    parts = pc.extract_regex(keys.cast(pa.string()), IPV4_NETWORK_TEXT)
    v4 = np.asarray(parts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    count = len(keys)
    value = np.zeros(count, dtype=np.uint64)
    length = np.full(count, 32, dtype=np.uint64)
    if v4.any():
        found = parts.filter(pa.array(v4))
        octets = np.stack([pc.cast(found.field(name), pa.uint64()).to_numpy(zero_copy_only=False)
                           for name in "abcd"], axis=1)
        value[v4] = octets @ OCTET_WEIGHTS
        written = found.field("p")
        length[v4] = pc.cast(pc.if_else(pc.equal(written, ""), "32", written), pa.uint64()) \
            .to_numpy(zero_copy_only=False)
    return ParsedNetworks(v4, value, length)


def address_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``ipaddress.ip_address(text)``, or None where it refuses the text."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def network_of(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A table key as a network: ``a.b.c.d/n`` (host bits cleared), or a plain address as its
    /32 or /128; None where ``ipaddress`` refuses it."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except (ValueError, TypeError):
        return None
