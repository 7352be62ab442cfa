"""Hypothesis strategies for flow events in AWS.VPCFlow and OCSF.NetworkActivity shapes.

Addresses come from every range ``ipaddress`` treats specially (drawn inside the range and at
its edges), IPv4-mapped IPv6, CIDR strings with and without host bits, and invalid strings.
A batch fixes each column's type first (ports as int or as str, addresses as str or int), so
``pa.Table.from_pylist`` always has one type per column, and leaves fields out at random.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import strategies as st

SPECIAL_V4 = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "127.0.0.0/8", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32", "192.0.0.0/24",
    "192.0.0.0/29", "192.0.0.170/31", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24",
    "203.0.113.0/24", "0.0.0.0/0",
]
SPECIAL_V6 = [
    "::1/128", "::/128", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "ff02::/16",
    "2001:db8::/32", "2001::/23", "2001::/32", "2001:1::1/128", "2001:2::/48", "2001:3::/32",
    "2001:10::/28", "2001:20::/28", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "100::/64",
    "::ffff:0:0/96", "2000::/3", "::/0",
]
FIXED = ["224.0.0.251", "ff02::fb", "::ffff:8.8.8.8", "::ffff:10.0.0.1", "8.8.8.8", "1.1.1.1",
         "9.9.9.9", "2606:4700::1111", "100.64.0.0", "100.127.255.255"]
INVALID = ["", " ", "garbage", "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.0.0.1", "1.2.3.4 ",
           " 1.2.3.4", "1.2.3.4\n", "::g", "١.٢.٣.٤", "1.2.3.4/33", "10.0.0.0/8/8", "-1",
           "0x0a000001", "1.2.3.04", "fe80::1%eth0", "::ffff:1.2.3"]


def _in_network(cidr: str) -> st.SearchStrategy[str]:
    """Addresses inside the network, and at and just beyond its edges."""
    net = ipaddress.ip_network(cidr)
    cls = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    top = 2**32 - 1 if net.version == 4 else 2**128 - 1
    inside = st.integers(0, net.num_addresses - 1).map(lambda i: str(net[i]))
    edges = sorted({e for e in (int(net[0]) - 1, int(net[0]), int(net[-1]), int(net[-1]) + 1)
                    if 0 <= e <= top})
    return st.one_of(inside, st.sampled_from(edges).map(lambda i: str(cls(i))))


ipv4 = st.one_of(*[_in_network(c) for c in SPECIAL_V4])
ipv6 = st.one_of(*[_in_network(c) for c in SPECIAL_V6])
mapped = ipv4.map(lambda a: f"::ffff:{a}")
cidr = st.tuples(st.one_of(ipv4, ipv6), st.integers(0, 128)).map(
    lambda t: f"{t[0]}/{min(t[1], 32 if '.' in t[0] and ':' not in t[0] else 128)}")
clean_cidr = cidr.map(lambda c: str(ipaddress.ip_network(c, strict=False)))
address = st.one_of(ipv4, ipv4, ipv6, mapped, cidr, clean_cidr, st.sampled_from(FIXED),
                    st.sampled_from(INVALID), st.text(max_size=6))
port = st.one_of(st.sampled_from([0, 20, 22, 53, 80, 123, 443, 3389, 5353, 5900, 8080, 49152]),
                 st.integers(0, 65535), st.integers(-5, 5))
ACTIONS = ["ACCEPT", "REJECT", "Allowed", "Denied", "", "accept"]
STATUSES = ["OK", "NODATA", "SKIPDATA", ""]


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, None, or left out of the record (``MISSING``)."""
    return st.one_of(strategy, strategy, strategy, st.none(), st.just(MISSING))


MISSING = object()


def _record(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not MISSING}


@st.composite
def modes(draw: st.DrawFn) -> tuple[bool, bool]:
    """(ports as str, addresses as int): odd column types, fixed for one batch."""
    return draw(st.booleans()) and draw(st.booleans()), draw(st.integers(0, 9)) == 0


def _port(draw: st.DrawFn, as_str: bool) -> Any:
    value = draw(maybe(port))
    return str(value) if as_str and isinstance(value, int) else value


def _addr(draw: st.DrawFn, as_int: bool) -> Any:
    value = draw(maybe(address))
    return draw(st.integers(0, 2**32)) if as_int and isinstance(value, str) else value


@st.composite
def vpcflow_batch(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A list of AWS.VPCFlow records with consistent column types."""
    str_ports, int_addrs = draw(modes())
    records = []
    for _ in range(draw(st.integers(1, 6))):
        records.append(_record({
            "srcAddr": _addr(draw, int_addrs), "dstAddr": _addr(draw, int_addrs),
            "srcPort": _port(draw, str_ports), "dstPort": _port(draw, str_ports),
            "protocol": draw(maybe(st.sampled_from(["6", "17"] if str_ports else [6, 17, 1, 0]))),
            "action": draw(maybe(st.sampled_from(ACTIONS))),
            "status": draw(maybe(st.sampled_from(STATUSES))),
            "interfaceId": draw(maybe(st.sampled_from(["eni-1", ""]))),
            "p_log_type": "AWS.VPCFlow",
        }))
    return records


@st.composite
def ocsf_batch(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A list of OCSF.NetworkActivity records (nested endpoints) with consistent types."""
    str_ports, int_addrs = draw(modes())

    def endpoint() -> Any:
        if draw(st.integers(0, 5)) == 0:
            return draw(st.sampled_from([None, MISSING]))
        return _record({"ip": _addr(draw, int_addrs), "port": _port(draw, str_ports),
                        "interface_uid": draw(maybe(st.sampled_from(["eni-9", ""])))})

    records = []
    for _ in range(draw(st.integers(1, 6))):
        protocol = draw(maybe(st.sampled_from(["6", "17"] if str_ports else [6, 17, 1])))
        records.append(_record({
            "src_endpoint": endpoint(), "dst_endpoint": endpoint(),
            "connection_info": draw(st.sampled_from([MISSING, None, _record({"protocol_num": protocol})])),
            "action": draw(maybe(st.sampled_from(ACTIONS))),
            "status_code": draw(maybe(st.sampled_from(STATUSES))),
            "p_log_type": "OCSF.NetworkActivity",
        }))
    return records
