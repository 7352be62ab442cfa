"""Traffic recipes for the generator: address pools and one vectorized builder per category."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

Columns = dict[str, pa.Array]
APPROVED_DNS = ("1.1.1.1", "8.8.8.8")
ROGUE_DNS = ("9.9.9.9", "208.67.222.222", "185.228.168.9", "45.90.28.0", "94.140.14.14")
MDNS = "224.0.0.251"
PUBLIC_V6 = (
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
    "2600:9000:2000::1",
    "2001:4860::8888",
)
PUBLIC_FIRST_OCTETS = (3, 13, 18, 23, 34, 35, 44, 52, 54, 62, 66, 77, 91, 104, 142, 151, 185, 209)
COMMON_INTERNAL_PORTS = (443, 5432, 3306, 6379, 8080, 9200, 2049, 80)
INBOUND_PORTS = (22, 3389, 23, 445, 1433, 3306, 5900, 8080, 8443, 25, 80, 443, 6379, 9200, 2375)
AWS_SERVICES = ("S3", "AMAZON", "DYNAMODB", "EC2")
ACCOUNTS = (
    ("123456789012", "us-east-1", "use1-az", "10.0", "vpc-0a1b2c3d4e5f60718"),
    ("210987654321", "eu-west-1", "euw1-az", "172.31", "vpc-0f9e8d7c6b5a40312"),
)
SCAN_BURST = "port_scan"

# Relative weight of each category in a batch (the port scan is a separate, timed burst).
CATEGORIES: dict[str, int] = {
    "web_egress": 2800,
    "web_return": 2400,
    "internal": 1500,
    "dns_approved": 600,
    "dns_return": 300,
    "dns_rogue": 60,
    "mdns": 100,
    "inbound_noise": 800,
    SCAN_BURST: 100,
    "ipv6": 500,
    "nat_pod": 200,
    "icmp": 100,
    "aws_service": 150,
    "nodata": 150,
    "skipdata": 10,
}
# What the built-in rules are meant to find: rogue resolvers, internet noise to odd ports, the
# port scan, skipped records.
ATTACKS = ("dns_rogue", "inbound_noise", SCAN_BURST, "skipdata")
# ``clean`` traffic: no attacks, internal services on ``common_ports`` only, and fewer mDNS and
# ICMP records (the port-scan rule matches every one of them, ports 5353 and 0 not being
# common): the tuned pack then matches about 0.5% of the records, all of them port-scan rule
# matches that stay under its threshold.
CLEAN_CATEGORIES: dict[str, int] = {
    **{name: weight for name, weight in CATEGORIES.items() if name not in ATTACKS},
    "mdns": 20,
    "icmp": 20,
}
CLEAN_INTERNAL_PORTS = (443, 5432, 3306, 8080, 80)


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


@dataclass(frozen=True)
class Pools:
    """Hosts the traffic is drawn from; index ``i`` of each host column is one ENI."""

    host: pa.Table
    public: pa.Array
    scanner: str
    target: int

    @classmethod
    def build(cls, rng: random.Random, private_hosts: int, public_hosts: int) -> Pools:
        rows: dict[str, list[str]] = {
            k: []
            for k in (
                "addr",
                "v6",
                "pod",
                "interfaceId",
                "instanceId",
                "subNetId",
                "vpcId",
                "account",
                "region",
                "azId",
            )
        }
        for i in range(private_hosts):
            account, region, az, net, vpc = ACCOUNTS[0 if rng.random() < 0.85 else 1]
            subnet = rng.randrange(8)
            rows["addr"].append(f"{net}.{subnet * 16 + rng.randrange(16)}.{rng.randrange(4, 255)}")
            rows["v6"].append(f"2600:1f18:{vpc[-2:]}:{subnet:x}00:{_hex(rng, 4)}:{i:x}::1")
            rows["pod"].append(f"10.0.{200 + subnet}.{rng.randrange(2, 255)}")
            rows["interfaceId"].append(f"eni-{_hex(rng, 17)}")
            rows["instanceId"].append(f"i-{_hex(rng, 17)}")
            rows["subNetId"].append(f"subnet-{_hex(rng, 17)}" if i % 7 else f"subnet-{subnet}")
            rows["vpcId"].append(vpc)
            rows["account"].append(account)
            rows["region"].append(region)
            rows["azId"].append(f"{az}{subnet % 3 + 1}")
        public = [
            f"{rng.choice(PUBLIC_FIRST_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}."
            f"{rng.randrange(1, 255)}"
            for _ in range(public_hosts)
        ]
        return cls(pa.table(rows), pa.array(public), public[0], rng.randrange(private_hosts))


def _u(rng: random.Random, k: int) -> pa.Array:
    return pc.random(k, initializer=rng.getrandbits(62))


def _ints(rng: random.Random, k: int, lo: int, hi: int) -> pa.Array:
    return pc.add(pc.floor(pc.multiply(_u(rng, k), hi - lo + 1)).cast(pa.int64()), lo)


def _skewed(rng: random.Random, k: int, size: int) -> pa.Array:
    """Indices below ``size``, heavily favouring low ones (a few hosts do most of the talking)."""
    return pc.floor(pc.multiply(pc.power(_u(rng, k), 3), size)).cast(pa.int64())


def _choice(rng: random.Random, k: int, values: tuple[object, ...]) -> pa.Array:
    return pa.array(values).take(_ints(rng, k, 0, len(values) - 1))


def _const(value: object, k: int) -> pa.Array:
    return pa.repeat(pa.scalar(value), k)


def _eni_side(pools: Pools, idx: pa.Array) -> Columns:
    taken = pools.host.take(idx)
    names = ("interfaceId", "instanceId", "subNetId", "vpcId", "account", "region", "azId")
    return {n: taken.column(n).combine_chunks() for n in names}


def _flow(
    rng: random.Random, k: int, proto: int, flags: tuple[int, ...], size: tuple[int, int]
) -> Columns:
    packets = pc.add(pc.floor(pc.multiply(pc.power(_u(rng, k), 2), size[0])).cast(pa.int64()), 1)
    per_packet = _ints(rng, k, 40, size[1])
    return {
        "protocol": _const(proto, k),
        "packets": packets,
        "bytes": pc.multiply(packets, per_packet),
        "tcpFlags": _choice(rng, k, flags) if proto == 6 else _const(0, k),
        "action": _const("ACCEPT", k),
        "status": _const("OK", k),
        "trafficType": _const("IPv4", k),
    }


def _egress(pools: Pools, rng: random.Random, k: int, dst: pa.Array, port: pa.Array) -> Columns:
    idx = _skewed(rng, k, len(pools.host))
    src = pools.host.column("addr").take(idx).combine_chunks()
    return {
        **_eni_side(pools, idx),
        "srcAddr": src,
        "dstAddr": dst,
        "srcPort": _ints(rng, k, 32768, 60999),
        "dstPort": port,
        "pktSrcAddr": src,
        "pktDstAddr": dst,
        "flowDirection": _const("egress", k),
        "trafficPath": _const(8, k),
    }


def _ingress(
    pools: Pools,
    rng: random.Random,
    k: int,
    src: pa.Array,
    sport: pa.Array,
    dport: pa.Array,
    idx: pa.Array | None = None,
) -> Columns:
    idx = _skewed(rng, k, len(pools.host)) if idx is None else idx
    dst = pools.host.column("addr").take(idx).combine_chunks()
    return {
        **_eni_side(pools, idx),
        "srcAddr": src,
        "dstAddr": dst,
        "srcPort": sport,
        "dstPort": dport,
        "pktSrcAddr": src,
        "pktDstAddr": dst,
        "flowDirection": _const("ingress", k),
    }


def _public(pools: Pools, rng: random.Random, k: int) -> pa.Array:
    return pools.public.take(_skewed(rng, k, len(pools.public)))


def web_egress(p: Pools, r: random.Random, k: int) -> Columns:
    port = _choice(r, k, (443, 443, 443, 80))
    return {
        **_flow(r, k, 6, (2, 3, 19, 27, 0), (60, 1500)),
        **_egress(p, r, k, _public(p, r, k), port),
    }


def web_return(p: Pools, r: random.Random, k: int) -> Columns:
    ports = _choice(r, k, (443, 443, 80))
    return {
        **_flow(r, k, 6, (18, 19, 27, 16), (200, 1500)),
        **_ingress(p, r, k, _public(p, r, k), ports, _ints(r, k, 32768, 60999)),
    }


def internal(p: Pools, r: random.Random, k: int, ports: tuple[int, ...] = COMMON_INTERNAL_PORTS
             ) -> Columns:
    dst = p.host.column("addr").take(_skewed(r, k, len(p.host))).combine_chunks()
    cols = _egress(p, r, k, dst, _choice(r, k, ports))
    return {**_flow(r, k, 6, (2, 3, 19), (100, 1400)), **cols, "trafficPath": _const(1, k)}


def clean_internal(p: Pools, r: random.Random, k: int) -> Columns:
    return internal(p, r, k, CLEAN_INTERNAL_PORTS)


def dns_approved(p: Pools, r: random.Random, k: int) -> Columns:
    dst = _choice(r, k, APPROVED_DNS)
    return {**_flow(r, k, 17, (0,), (3, 120)), **_egress(p, r, k, dst, _const(53, k))}


def dns_return(p: Pools, r: random.Random, k: int) -> Columns:
    src = _choice(r, k, APPROVED_DNS)
    return {
        **_flow(r, k, 17, (0,), (3, 300)),
        **_ingress(p, r, k, src, _const(53, k), _ints(r, k, 32768, 60999)),
    }


def dns_rogue(p: Pools, r: random.Random, k: int) -> Columns:
    dst = _choice(r, k, ROGUE_DNS)
    return {
        **_flow(r, k, 17, (0,), (3, 120)),
        **_egress(p, r, k, dst, _choice(r, k, (53, 53, 5353))),
    }


def mdns(p: Pools, r: random.Random, k: int) -> Columns:
    cols = _egress(p, r, k, _const(MDNS, k), _const(5353, k))
    return {
        **_flow(r, k, 17, (0,), (2, 200)),
        **cols,
        "srcPort": _const(5353, k),
        "trafficPath": _const(1, k),
    }


def inbound_noise(p: Pools, r: random.Random, k: int) -> Columns:
    port = _choice(r, k, INBOUND_PORTS)
    cols = _ingress(p, r, k, _public(p, r, k), _ints(r, k, 1024, 65535), port)
    action = pc.if_else(pc.less(_u(r, k), 0.8), "REJECT", "ACCEPT")
    return {**_flow(r, k, 6, (2,), (3, 60)), **cols, "action": action}


def port_scan(p: Pools, r: random.Random, k: int) -> Columns:
    target = pa.repeat(pa.scalar(p.target, pa.int64()), k)
    cols = _ingress(p, r, k, _const(p.scanner, k), _const(51515, k), _ints(r, k, 1, 65535), target)
    return {
        **_flow(r, k, 6, (2,), (1, 44)),
        **cols,
        "action": _const("REJECT", k),
        "packets": _const(1, k),
        "bytes": _const(44, k),
        "_burst": _const(True, k),
    }


def ipv6(p: Pools, r: random.Random, k: int) -> Columns:
    idx = _skewed(r, k, len(p.host))
    mine = p.host.column("v6").take(idx).combine_chunks()
    theirs = _choice(r, k, PUBLIC_V6)
    out = pc.less(_u(r, k), 0.5)
    src, dst = pc.if_else(out, mine, theirs), pc.if_else(out, theirs, mine)
    eph = _ints(r, k, 32768, 60999)
    sport, dport = pc.if_else(out, eph, 443), pc.if_else(out, 443, eph)
    return {
        **_flow(r, k, 6, (2, 3, 18, 19), (50, 1400)),
        **_eni_side(p, idx),
        "srcAddr": src,
        "dstAddr": dst,
        "srcPort": sport,
        "dstPort": dport,
        "pktSrcAddr": src,
        "pktDstAddr": dst,
        "trafficType": _const("IPv6", k),
        "flowDirection": pc.if_else(out, "egress", "ingress"),
        "trafficPath": pc.if_else(out, pa.scalar(8), pa.scalar(None, pa.int64())),
    }


def nat_pod(p: Pools, r: random.Random, k: int) -> Columns:
    idx = _skewed(r, k, len(p.host))
    cols = _egress(p, r, k, _public(p, r, k), _const(443, k))
    return {
        **_flow(r, k, 6, (2, 3, 19), (50, 1400)),
        **cols,
        "pktSrcAddr": p.host.column("pod").take(idx).combine_chunks(),
    }


def icmp(p: Pools, r: random.Random, k: int) -> Columns:
    cols = _ingress(p, r, k, _public(p, r, k), _const(0, k), _const(0, k))
    return {**_flow(r, k, 1, (0,), (4, 84)), **cols, "tcpFlags": _const(None, k)}


def aws_service(p: Pools, r: random.Random, k: int) -> Columns:
    cols = _egress(p, r, k, _public(p, r, k), _const(443, k))
    return {
        **_flow(r, k, 6, (3, 19), (100, 1500)),
        **cols,
        "pktDstAwsService": _choice(r, k, AWS_SERVICES),
    }


def _empty(status: str) -> Callable[[Pools, random.Random, int], Columns]:
    def build(p: Pools, r: random.Random, k: int) -> Columns:
        return {**_eni_side(p, _skewed(r, k, len(p.host))), "status": _const(status, k)}

    return build


BUILDERS: dict[str, Callable[[Pools, random.Random, int], Columns]] = {
    "web_egress": web_egress,
    "web_return": web_return,
    "internal": internal,
    "dns_approved": dns_approved,
    "dns_return": dns_return,
    "dns_rogue": dns_rogue,
    "mdns": mdns,
    "inbound_noise": inbound_noise,
    SCAN_BURST: port_scan,
    "ipv6": ipv6,
    "nat_pod": nat_pod,
    "icmp": icmp,
    "aws_service": aws_service,
    "nodata": _empty("NODATA"),
    "skipdata": _empty("SKIPDATA"),
}


def categories(clean: bool = False) -> dict[str, int]:
    """The categories of a batch and their weights (``clean``: see ``CLEAN_CATEGORIES``)."""
    return CLEAN_CATEGORIES if clean else CATEGORIES


def build_category(name: str, count: int, pools: Pools, rng: random.Random,
                   clean: bool = False) -> Columns:
    """``count`` records of traffic category ``name``; every category yields the same keys.
    ``clean`` internal traffic goes to ``common_ports`` only."""
    build = clean_internal if clean and name == "internal" else BUILDERS[name]
    cols = build(pools, rng, count)
    cols.setdefault("_burst", _const(False, count))
    return {key: cols.get(key, pa.nulls(count)) for key in ALL_KEYS}


ALL_KEYS = (
    "account",
    "interfaceId",
    "srcAddr",
    "dstAddr",
    "srcPort",
    "dstPort",
    "protocol",
    "packets",
    "bytes",
    "action",
    "status",
    "vpcId",
    "subNetId",
    "instanceId",
    "tcpFlags",
    "trafficType",
    "pktSrcAddr",
    "pktDstAddr",
    "region",
    "azId",
    "pktSrcAwsService",
    "pktDstAwsService",
    "flowDirection",
    "trafficPath",
    "_burst",
)
