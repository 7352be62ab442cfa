"""False positives and recall of the spec rules against the tuned pack, on labeled VPC traffic.

Generates a seeded mix of connections in two VPCs (IPv4, shared-address-space EKS pods, VPC IPv6
ranges, NAT gateways, a transit gateway ENI), writes every flow log record each connection makes
(both directions, every ENI it crosses, one record per aggregation interval, in the v2, v3 or v5
format), runs the spec rules (default pack) and the tuned rules through ``Scanner``, and prints
per rule: true positives, false positives, false negatives, precision and recall.

Counting is **per labeled connection**: a connection is every record of one session (request and
reply, on each ENI it crosses, including a NAT gateway's translated leg). It is a true positive
for a rule when it is labeled an attack for that rule and at least one of its records alerted; a
false positive when it is not an attack and at least one alerted. ``split`` counts detected
connections whose matching records carry more than one dedup key (one connection, several
alerts). Then the scan time of the tuned rules relative to the spec rules, per engine.

    python benchmarks/fp_eval.py                      # 100k records, seed 7, duckdb and python
    python benchmarks/fp_eval.py --records 5000 --engine python --repeat 1
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from flowwarden.config import Config, default_config, parse_config
from flowwarden.engine.scan import Scanner
from flowwarden.logs.model import LogBatch
from flowwarden.rules.loader import Pack, load_pack, resolve_pack_paths

LOG_TYPE = "AWS.VPCFlow"
ACCOUNT = "123456789012"
REGION = "us-east-1"
START = datetime(2024, 5, 1, tzinfo=UTC)
BATCH_ROWS = 65536
# (family, spec rule, tuned rule): a connection's label is the family it attacks, if any
RULES = (
    ("inbound", "AWS.VPC.InboundPortWhitelist", "AWS.VPC.InboundPortWhitelist.Tuned"),
    ("dns", "AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.UnapprovedOutboundDNS.Tuned"),
)
APPROVED_DNS = ("1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "2001:4860:4860::8888")
ROGUE_DNS_V4 = ("45.90.28.1", "94.140.14.14", "77.88.8.8", "185.228.168.9", "176.103.130.130")
ROGUE_DNS_V6 = ("2a10:50c0::ad1:ff", "2a02:6b8::feed:ff", "2a0d:2a00:1::2")
AMAZON_DNS = ("169.254.169.253", "fd00:ec2::253")
PUBLIC_V6_PREFIXES = ("2a00:1450", "2a03:2880", "2606:4700", "2a02:6b8", "2001:67c", "2c0f:fb50")
ATTACK_PORTS_TCP = (22, 23, 445, 1433, 2375, 3306, 3389, 5432, 5900, 6379, 8080, 9200, 27017)
ATTACK_PORTS_UDP = (161, 1900, 5060, 11211, 137)
WEB_PORTS = (443,) * 40 + (80,) * 6 + (6443, 9443, 27017)  # a few uncommon service ports
FORMATS = (2, 3, 5)  # v2 default (no flags/direction/pkt), v3 (flags, pkt), v5 (+ direction)
FORMAT_WEIGHTS = (25, 25, 50)
INTERVALS, INTERVAL_WEIGHTS = (1, 2, 3), (70, 20, 10)
# scenario: (weight, attacked rule family or None)
SCENARIOS: dict[str, tuple[int, str | None]] = {
    "outbound_web_v4": (300, None),
    "outbound_web_v6": (50, None),
    "approved_dns_v4": (150, None),
    "approved_dns_v6": (25, None),
    "ntp_v4": (30, None),
    "internal_dns": (60, None),
    "amazon_dns": (10, None),
    "eks_dns": (30, None),
    "mdns": (40, None),
    "east_west_v4": (100, None),
    "east_west_v6": (30, None),
    "inbound_allowed": (60, None),
    "nodata": (10, None),
    "inbound_scan_v4": (50, "inbound"),
    "inbound_udp_v4": (12, "inbound"),
    "inbound_scan_v6": (20, "inbound"),
    "inbound_shared": (5, "inbound"),
    "inbound_via_tgw": (6, "inbound"),
    "rogue_dns_v4": (10, "dns"),
    "rogue_dns_nat": (10, "dns"),
    "rogue_dns_pod": (5, "dns"),
    "rogue_dns_v6": (6, "dns"),
}
SCHEMA = pa.schema([
    ("version", pa.int64()), ("account", pa.string()), ("interfaceId", pa.string()),
    ("srcAddr", pa.string()), ("dstAddr", pa.string()), ("srcPort", pa.int64()),
    ("dstPort", pa.int64()), ("protocol", pa.int64()), ("packets", pa.int64()),
    ("bytes", pa.int64()), ("start", pa.timestamp("s", tz="UTC")),
    ("end", pa.timestamp("s", tz="UTC")), ("action", pa.string()), ("status", pa.string()),
    ("vpcId", pa.string()), ("subNetId", pa.string()), ("instanceId", pa.string()),
    ("tcpFlags", pa.int64()), ("trafficType", pa.string()), ("pktSrcAddr", pa.string()),
    ("pktDstAddr", pa.string()), ("region", pa.string()), ("flowDirection", pa.string()),
    ("p_log_type", pa.string()), ("p_event_time", pa.timestamp("us", tz="UTC")),
    ("p_row_id", pa.string()),
])


# -- topology ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Eni:
    id: str
    vpc: str
    subnet: str
    instance: str | None
    ip: str  # primary private IPv4: srcaddr/dstaddr for traffic of its secondary IPs


@dataclass(frozen=True)
class Host:
    eni: Eni
    ipv4: str
    ipv6: str | None = None
    public: bool = False  # has a public IPv4: egress goes straight to the internet gateway


@dataclass
class Vpc:
    id: str
    networks: tuple[str, ...]  # what `internal_networks` lists for it
    nat: Eni
    hosts: list[Host] = field(default_factory=list)
    pods: list[Host] = field(default_factory=list)  # EKS pods on 100.64 secondary IPs
    resolver: Host | None = None
    resolver_v6: Host | None = None
    coredns: Host | None = None
    tgw: Eni | None = None


@dataclass(frozen=True)
class Connection:
    id: int
    scenario: str
    attack: str | None
    fmt: int
    start: datetime


@dataclass(frozen=True)
class Obs:
    """How one ENI logs the request packets of a connection (the reply is the mirror image)."""

    eni: Eni
    src: str
    dst: str
    sport: int
    dport: int
    pkt_src: str
    pkt_dst: str
    direction: str

    def reply(self) -> Obs:
        flipped = "ingress" if self.direction == "egress" else "egress"
        return Obs(self.eni, self.dst, self.src, self.dport, self.sport, self.pkt_dst,
                   self.pkt_src, flipped)


@dataclass(frozen=True)
class Plan:
    observations: tuple[Obs, ...]
    protocol: int
    replies: bool = True
    action: str = "ACCEPT"


@dataclass
class Traffic:
    """The generated records (Panther column names) and each connection's label."""

    rows: list[dict[str, Any]]
    connections: dict[int, Connection]
    internal_networks: tuple[str, ...]
    nat_addresses: tuple[str, ...]

    def batches(self) -> list[LogBatch]:
        return [LogBatch(LOG_TYPE, "fp_eval", pa.RecordBatch.from_pylist(
            self.rows[i:i + BATCH_ROWS], schema=SCHEMA)) for i in range(0, len(self.rows), BATCH_ROWS)]


class Generator:
    """Seeded generator: one method per scenario returns how the connection is logged."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.vpcs = [self._vpc("a", "10.0", "2600:1f18:4a3:6b", pods=True),
                     self._vpc("b", "172.31", "2600:1f14:8c0:d2", pods=False)]
        self.servers = [self.public_v4() for _ in range(300)]
        self.servers_v6 = [self.public_v6() for _ in range(60)]
        self.scanners = [self.public_v4() for _ in range(150)]
        self.scanners_v6 = [self.public_v6() for _ in range(40)]

    # -- addresses and topology --------------------------------------------------------------
    def public_v4(self) -> str:
        while True:
            address = ipaddress.IPv4Address(self.rng.randrange(0x01000000, 0xE0000000))
            if address.is_global:
                return str(address)

    def public_v6(self) -> str:
        groups = ":".join(f"{self.rng.randrange(1, 0xFFFF):x}" for _ in range(3))
        return str(ipaddress.IPv6Address(f"{self.rng.choice(PUBLIC_V6_PREFIXES)}:{groups}::1"))

    def _eni(self, vpc: str, subnet: str, ip: str, instance: bool = True) -> Eni:
        suffix = f"{self.rng.getrandbits(64):017x}"[:17]
        return Eni(f"eni-{suffix}", vpc, f"subnet-{vpc[-8:]}{subnet}",
                   f"i-{suffix}" if instance else None, ip)

    def _host(self, vpc: str, v4: str, v6_prefix: str, subnet: int, public: bool,
              dual: bool) -> Host:
        ip = f"{v4}.{subnet}.{self.rng.randrange(4, 250)}"
        v6 = f"{v6_prefix}{subnet:02x}::{self.rng.randrange(1, 0xFFFF):x}" if dual else None
        return Host(self._eni(vpc, f"{subnet:03d}", ip), ip, v6, public)

    def _vpc(self, name: str, v4: str, v6: str, pods: bool) -> Vpc:
        vpc_id = f"vpc-0{name * 16}"
        networks = (f"{v4}.0.0/16", f"{v6}00::/56") + (("100.64.0.0/16",) if pods else ())
        nat_ip = f"{v4}.0.{220 if pods else 150}"
        vpc = Vpc(vpc_id, networks, self._eni(vpc_id, "000", nat_ip, instance=False))
        for index in range(40):
            vpc.hosts.append(self._host(vpc_id, v4, v6, 1 + index % 2, public=index % 2 == 0,
                                        dual=index % 3 == 0))
        vpc.resolver = self._host(vpc_id, v4, v6, 5, public=False, dual=False)
        vpc.resolver_v6 = Host(vpc.resolver.eni, vpc.resolver.ipv4, f"{v6}00::53")
        vpc.tgw = self._eni(vpc_id, "000", f"{v4}.0.70", instance=False)
        if pods:
            enis = [self._eni(vpc_id, "064", f"100.64.1.{4 + i}") for i in range(3)]
            vpc.pods = [Host(enis[i % 3], f"100.64.1.{20 + i}") for i in range(15)]
            vpc.coredns = vpc.pods[0]
        return vpc

    # -- paths --------------------------------------------------------------------------------
    def ephemeral(self) -> int:
        return self.rng.randrange(32768, 61000)

    @staticmethod
    def _own(host: Host, ip: str) -> str:
        """The ENI-level address of the host's side: its ENI's primary IP for a secondary IPv4."""
        return host.eni.ip if ip == host.ipv4 and ip != host.eni.ip else ip

    def out(self, vpc: Vpc, host: Host, ip: str, server: str, dport: int) -> tuple[Obs, ...]:
        """Host to an internet server: straight out, or through the VPC's NAT gateway."""
        sport = self.ephemeral()
        first = Obs(host.eni, self._own(host, ip), server, sport, dport, ip, server, "egress")
        if host.public or ":" in ip:
            return (first,)
        nat, translated = vpc.nat, self.rng.randrange(1024, 65536)
        return (first,
                Obs(nat, ip, nat.ip, sport, dport, ip, server, "ingress"),
                Obs(nat, nat.ip, server, translated, dport, nat.ip, server, "egress"))

    def inbound(self, client: str, host: Host, ip: str, dport: int) -> tuple[Obs, ...]:
        return (Obs(host.eni, client, self._own(host, ip), self.ephemeral(), dport, client, ip,
                    "ingress"),)

    def lateral(self, a: Host, a_ip: str, b: Host, b_ip: str, dport: int) -> tuple[Obs, ...]:
        sport = self.ephemeral()
        return (Obs(a.eni, self._own(a, a_ip), self._own(b, b_ip), sport, dport, a_ip, b_ip, "egress"),
                Obs(b.eni, self._own(a, a_ip), self._own(b, b_ip), sport, dport, a_ip, b_ip, "ingress"))

    def pick(self, vpcs: Sequence[Vpc] | None = None, dual: bool = False,
             public: bool | None = None) -> tuple[Vpc, Host]:
        vpc = self.rng.choice(list(vpcs or self.vpcs))
        hosts = [h for h in vpc.hosts if (not dual or h.ipv6) and public in (None, h.public)]
        return vpc, self.rng.choice(hosts)

    # -- scenarios ----------------------------------------------------------------------------
    def outbound_web_v4(self) -> Plan:
        vpc, host = self.pick()
        return Plan(self.out(vpc, host, host.ipv4, self.rng.choice(self.servers),
                             self.rng.choice(WEB_PORTS)), 6)

    def outbound_web_v6(self) -> Plan:
        vpc, host = self.pick(dual=True)
        return Plan(self.out(vpc, host, host.ipv6, self.rng.choice(self.servers_v6), 443), 6)

    def approved_dns_v4(self) -> Plan:
        vpc, host = self.pick()
        return Plan(self.out(vpc, host, host.ipv4, self.rng.choice(APPROVED_DNS[:2]), 53), 17)

    def approved_dns_v6(self) -> Plan:
        vpc, host = self.pick(dual=True)
        return Plan(self.out(vpc, host, host.ipv6, self.rng.choice(APPROVED_DNS[2:]), 53), 17)

    def ntp_v4(self) -> Plan:
        vpc, host = self.pick()
        return Plan(self.out(vpc, host, host.ipv4, self.rng.choice(self.servers[:10]), 123), 17)

    def internal_dns(self) -> Plan:
        vpc, host = self.pick(dual=True) if self.rng.random() < 0.3 else self.pick()
        resolver = vpc.resolver_v6 if host.ipv6 else vpc.resolver
        ip, target = (host.ipv6, resolver.ipv6) if host.ipv6 else (host.ipv4, resolver.ipv4)
        return Plan(self.lateral(host, ip, resolver, target, 53), 17)

    def amazon_dns(self) -> Plan:
        # Not logged by AWS for instances, but logged by other sensors (and OCSF producers)
        vpc, host = self.pick(dual=True)
        ip, target = self.rng.choice(((host.ipv4, AMAZON_DNS[0]), (host.ipv6, AMAZON_DNS[1])))
        sport = self.ephemeral()
        return Plan((Obs(host.eni, ip, target, sport, 53, ip, target, "egress"),), 17)

    def eks_dns(self) -> Plan:
        vpc = self.vpcs[0]
        client = self.rng.choice(vpc.pods[1:] + vpc.hosts[:5])
        return Plan(self.lateral(client, client.ipv4, vpc.coredns, vpc.coredns.ipv4, 53), 17)

    def mdns(self) -> Plan:
        vpc, host = self.pick()
        ip, group = (host.ipv4, "224.0.0.251") if self.rng.random() < 0.7 else (
            f"fe80::{self.rng.randrange(1, 0xFFFF):x}:ff:fe00:1", "ff02::fb")
        return Plan((Obs(host.eni, ip, group, 5353, 5353, ip, group, "egress"),), 17, replies=False)

    def east_west_v4(self) -> Plan:
        vpc, a = self.pick()
        b = self.rng.choice(vpc.hosts)
        return Plan(self.lateral(a, a.ipv4, b, b.ipv4, self.rng.choice((22, 5432, 6379, 8080))), 6)

    def east_west_v6(self) -> Plan:
        vpc, a = self.pick(dual=True)
        _, b = self.pick([vpc], dual=True)
        return Plan(self.lateral(a, a.ipv6, b, b.ipv6, self.rng.choice((22, 5432, 8080))), 6)

    def inbound_allowed(self) -> Plan:
        vpc, host = self.pick(public=True)
        return Plan(self.inbound(self.rng.choice(self.scanners + self.servers), host, host.ipv4,
                                 self.rng.choice((80, 443))), 6)

    def inbound_scan_v4(self) -> Plan:
        vpc, host = self.pick(public=True)
        plan = Plan(self.inbound(self.rng.choice(self.scanners), host, host.ipv4,
                                 self.rng.choice(ATTACK_PORTS_TCP)), 6)
        return replace(plan, replies=False, action="REJECT") if self.rng.random() < 0.7 else plan

    def inbound_udp_v4(self) -> Plan:
        vpc, host = self.pick(public=True)
        return Plan(self.inbound(self.rng.choice(self.scanners), host, host.ipv4,
                                 self.rng.choice(ATTACK_PORTS_UDP)), 17, replies=False)

    def inbound_scan_v6(self) -> Plan:
        vpc, host = self.pick(dual=True)
        plan = Plan(self.inbound(self.rng.choice(self.scanners_v6), host, host.ipv6,
                                 self.rng.choice(ATTACK_PORTS_TCP)), 6)
        return replace(plan, replies=False, action="REJECT") if self.rng.random() < 0.5 else plan

    def inbound_shared(self) -> Plan:
        # An internet client reaching a pod (NLB IP target with client IP preservation)
        pod = self.rng.choice(self.vpcs[0].pods)
        return Plan(self.inbound(self.rng.choice(self.scanners), pod, pod.ipv4, 8080), 6)

    def inbound_via_tgw(self) -> Plan:
        # Inbound through a central inspection VPC: the transit gateway ENI forwards the packet
        vpc, host = self.pick()
        client, sport, dport = self.rng.choice(self.scanners), self.ephemeral(), 5432
        return Plan((Obs(vpc.tgw, vpc.tgw.ip, host.ipv4, sport, dport, client, host.ipv4, "egress"),
                     Obs(host.eni, client, host.ipv4, sport, dport, client, host.ipv4, "ingress")), 6)

    def rogue_dns_v4(self) -> Plan:
        vpc, host = self.pick(public=True)
        return Plan(self.out(vpc, host, host.ipv4, self.rng.choice(ROGUE_DNS_V4), 53),
                    6 if self.rng.random() < 0.1 else 17)

    def rogue_dns_nat(self) -> Plan:
        vpc, host = self.pick(public=False)
        return Plan(self.out(vpc, host, host.ipv4, self.rng.choice(ROGUE_DNS_V4), 53), 17)

    def rogue_dns_pod(self) -> Plan:
        vpc = self.vpcs[0]
        pod = self.rng.choice(vpc.pods[1:])
        return Plan(self.out(vpc, pod, pod.ipv4, self.rng.choice(ROGUE_DNS_V4), 53), 17)

    def rogue_dns_v6(self) -> Plan:
        vpc, host = self.pick(dual=True)
        return Plan(self.out(vpc, host, host.ipv6, self.rng.choice(ROGUE_DNS_V6), 53), 17)

    # -- records ------------------------------------------------------------------------------
    def generate(self, records: int) -> Traffic:
        names = list(SCENARIOS)
        weights = [SCENARIOS[n][0] for n in names]
        rows: list[dict[str, Any]] = []
        connections: dict[int, Connection] = {}
        while len(rows) < records:
            name = self.rng.choices(names, weights)[0]
            conn = Connection(len(connections), name, SCENARIOS[name][1],
                              self.rng.choices(FORMATS, FORMAT_WEIGHTS)[0],
                              START + timedelta(seconds=self.rng.randrange(6 * 3600)))
            connections[conn.id] = conn
            if name == "nodata":
                rows.append(self._nodata(conn, len(rows)))
                continue
            rows.extend(self._records(conn, getattr(self, name)(), len(rows)))
        networks = tuple(n for vpc in self.vpcs for n in vpc.networks)
        return Traffic(rows, connections, networks, tuple(v.nat.ip for v in self.vpcs))

    def _records(self, conn: Connection, plan: Plan, first_row: int) -> list[dict[str, Any]]:
        count = 1 if plan.action == "REJECT" else self.rng.choices(INTERVALS, INTERVAL_WEIGHTS)[0]
        out = []
        for interval in range(count):
            when = conn.start + timedelta(seconds=60 * interval)
            for obs in plan.observations:
                sides = [(obs, True), (obs.reply(), False)] if plan.replies else [(obs, True)]
                for seen, initiator in sides:
                    flags = _tcp_flags(interval, count, initiator) if plan.protocol == 6 else 0
                    out.append(self._row(conn, seen, plan, flags, when, first_row + len(out)))
        return out

    def _row(self, conn: Connection, obs: Obs, plan: Plan, flags: int, when: datetime,
             row: int) -> dict[str, Any]:
        record: dict[str, Any] = {
            "version": conn.fmt, "account": ACCOUNT, "interfaceId": obs.eni.id,
            "srcAddr": obs.src, "dstAddr": obs.dst, "srcPort": obs.sport, "dstPort": obs.dport,
            "protocol": plan.protocol, "packets": self.rng.randrange(1, 40),
            "bytes": self.rng.randrange(60, 40000), "start": when,
            "end": when + timedelta(seconds=59), "action": plan.action, "status": "OK",
            "p_log_type": LOG_TYPE, "p_event_time": when, "p_row_id": f"{conn.id}-{row}",
        }
        if conn.fmt >= 3:
            record.update(vpcId=obs.eni.vpc, subNetId=obs.eni.subnet, instanceId=obs.eni.instance,
                          tcpFlags=flags, trafficType="IPv6" if ":" in obs.src else "IPv4",
                          pktSrcAddr=obs.pkt_src, pktDstAddr=obs.pkt_dst)
        if conn.fmt >= 5:
            record.update(region=REGION, flowDirection=obs.direction)
        return record

    def _nodata(self, conn: Connection, row: int) -> dict[str, Any]:
        eni = self.rng.choice(self.vpcs[0].hosts).eni
        return {"version": conn.fmt, "account": ACCOUNT, "interfaceId": eni.id,
                "start": conn.start, "end": conn.start + timedelta(seconds=59),
                "status": "NODATA", "p_log_type": LOG_TYPE, "p_event_time": conn.start,
                "p_row_id": f"{conn.id}-{row}"}


def _tcp_flags(interval: int, count: int, initiator: bool) -> int:
    """tcp-flags OR-ed over one interval: SYN (2) or SYN-ACK (18) first, FIN (1) last."""
    flags = (2 if initiator else 18) if interval == 0 else 0
    return flags | 1 if interval == count - 1 else flags


def generate(records: int, seed: int) -> Traffic:
    """Labeled traffic of at least ``records`` records (whole connections)."""
    return Generator(seed).generate(records)


# -- evaluation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    """One rule's outcome on one run, per labeled connection."""

    rule_id: str
    run: str
    family: str
    detected: frozenset[int]  # connections with at least one alerting record
    attacks: frozenset[int]
    alerts: int
    split: frozenset[int]  # detected connections whose records carry more than one dedup key

    @property
    def tp(self) -> int:
        return len(self.detected & self.attacks)

    @property
    def fp(self) -> int:
        return len(self.detected - self.attacks)

    @property
    def fn(self) -> int:
        return len(self.attacks - self.detected)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.tp / len(self.attacks) if self.attacks else 1.0


def eval_config(traffic: Traffic) -> Config:
    """The operator's flowwarden.yaml for the generated VPCs (the spec rules ignore the extras)."""
    return parse_config({
        "internal_networks": list(traffic.internal_networks),
        "approved_dns_servers": list(APPROVED_DNS),
        "nat_gateway_addresses": list(traffic.nat_addresses),
    }, "<fp_eval>")


def rule_ids(pack_name: str) -> list[str]:
    """The pack's two rule ids: the spec rules in `default`, their tuned versions in `tuned`."""
    return [r[1] if pack_name == "default" else r[2] for r in RULES]


def load(pack_name: str, config: Config, rule_ids: Sequence[str]) -> tuple[Pack, list[Any]]:
    pack = load_pack(resolve_pack_paths([pack_name]), config)
    if pack.problems:
        raise RuntimeError(f"pack {pack_name}: {pack.problems[0]}")
    return pack, [pack.rule(r) for r in rule_ids]


def score_run(traffic: Traffic, pack_name: str, config: Config, run: str,
              engine: str = "python") -> list[Score]:
    """Scan the traffic with one pack's two rules and score each rule per connection."""
    pack, rules = load(pack_name, config, rule_ids(pack_name))
    result = Scanner(pack, rules, engine=engine, max_samples=len(traffic.rows)).scan(
        traffic.batches())
    if result.error_counts:
        raise RuntimeError(f"{run}: rules raised {dict(result.error_counts)}")
    detected: dict[str, set[int]] = defaultdict(set)
    keys: dict[tuple[str, int], set[str]] = defaultdict(set)
    alerts: Counter[str] = Counter()
    for alert in result.alerts:
        alerts[alert.rule_id] += 1
        if len(alert.samples) != alert.event_count:
            raise RuntimeError("alert samples do not hold every matching record")
        for record in alert.samples:
            conn = int(record["p_row_id"].split("-")[0])
            detected[alert.rule_id].add(conn)
            keys[(alert.rule_id, conn)].add(alert.dedup)
    scores = []
    for (family, *_), rule_id in zip(RULES, rule_ids(pack_name), strict=True):
        attacks = frozenset(c.id for c in traffic.connections.values() if c.attack == family)
        split = frozenset(c for c in detected[rule_id] if len(keys[(rule_id, c)]) > 1)
        scores.append(Score(rule_id, run, family, frozenset(detected[rule_id]), attacks,
                            alerts[rule_id], split))
    return scores


def evaluate(traffic: Traffic, engine: str = "python") -> list[Score]:
    """Spec rules, tuned rules (operator config) and tuned rules (default config)."""
    config = eval_config(traffic)
    return [*score_run(traffic, "default", config, "spec", engine),
            *score_run(traffic, "tuned", config, "tuned", engine),
            *score_run(traffic, "tuned", default_config(), "tuned, default config", engine)]


def time_scan(traffic: Traffic, pack_name: str, engine: str, repeat: int) -> tuple[float, int]:
    """Best full scan time of one pack's two rules (seconds) and the rows Python had to decide."""
    pack, rules = load(pack_name, eval_config(traffic), rule_ids(pack_name))
    batches = traffic.batches()
    best, python_rows = float("inf"), 0
    for attempt in range(repeat + 1):  # the first run warms the process-wide IPv4 range tables
        scanner = Scanner(pack, rules, engine=engine)
        began = time.perf_counter()
        result = scanner.scan(batches)
        if attempt:
            best = min(best, time.perf_counter() - began)
        python_rows = result.python_rows
    return best, python_rows


def time_conditions(traffic: Traffic, pack_name: str, repeat: int) -> float:
    """Best time of the vectorized verdicts alone (SQL and IP probes, no alert functions)."""
    from flowwarden.engine.local.vectorized import compile_pack, evaluate_batch

    pack, rules = load(pack_name, eval_config(traffic), rule_ids(pack_name))
    batches = traffic.batches()
    best = float("inf")
    for attempt in range(repeat + 1):
        compiled = compile_pack(pack, rules)
        began = time.perf_counter()
        for item in batches:
            evaluate_batch(compiled, item.batch, item.log_type)
        if attempt:
            best = min(best, time.perf_counter() - began)
    return best


def engine_available(engine: str) -> bool:
    if engine == "python":
        return True
    try:
        from flowwarden.engine import vectorized  # noqa: F401
    except ImportError:
        return False
    return True


# -- report -----------------------------------------------------------------------------------
def format_scores(scores: Sequence[Score]) -> str:
    header = (f"{'rule':<38} {'run':<22} {'TP':>5} {'FP':>5} {'FN':>5} {'precision':>9} "
              f"{'recall':>7} {'alerts':>6} {'split':>5}")
    lines = [header, "-" * len(header)]
    for s in scores:
        lines.append(f"{s.rule_id:<38} {s.run:<22} {s.tp:>5} {s.fp:>5} {s.fn:>5} "
                     f"{s.precision:>9.1%} {s.recall:>7.1%} {s.alerts:>6} {len(s.split):>5}")
    return "\n".join(lines)


def format_targets(scores: Sequence[Score]) -> str:
    by = {(s.family, s.run): s for s in scores}
    lines = []
    for family, *_ in RULES:
        spec, tuned = by[(family, "spec")], by[(family, "tuned")]
        cut = 1 - tuned.fp / spec.fp if spec.fp else 1.0
        kept = (spec.detected & spec.attacks) <= tuned.detected
        lines.append(f"{family:<8} spec TPs kept: {'yes' if kept else 'NO'}; recall "
                     f"{tuned.recall:.1%}; false positives cut {cut:.1%} "
                     f"({spec.fp} -> {tuned.fp}); split connections {len(tuned.split)} "
                     f"({len(tuned.split & tuned.attacks)} of them attacks)")
    return "\n".join(lines)


def format_scenarios(traffic: Traffic, scores: Sequence[Score]) -> str:
    runs = [s for s in scores if s.run in ("spec", "tuned")]
    header = f"{'scenario':<18} {'attacks':<8} {'conns':>6} " + " ".join(
        f"{s.family + '/' + s.run:>14}" for s in runs)
    lines = [header, "-" * len(header)]
    for name in SCENARIOS:
        conns = {c.id for c in traffic.connections.values() if c.scenario == name}
        cells = " ".join(f"{len(s.detected & conns):>14}" for s in runs)
        lines.append(f"{name:<18} {SCENARIOS[name][1] or '-':<8} {len(conns):>6} {cells}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to generate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engine", choices=("duckdb", "python", "both"), default="duckdb",
                        help="engine(s) to score and time with (duckdb falls back to python "
                             "when the vectorized engine is unavailable)")
    parser.add_argument("--repeat", type=int, default=2, help="timing repetitions (best is kept)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    traffic = generate(args.records, args.seed)
    attacks = Counter(c.attack for c in traffic.connections.values() if c.attack)
    print(f"{len(traffic.rows)} records, {len(traffic.connections)} connections "
          f"({attacks['inbound']} inbound attacks, {attacks['dns']} rogue-DNS), seed {args.seed}")
    print(f"internal_networks: {', '.join(traffic.internal_networks)}\n")
    engines = [e for e in (("duckdb", "python") if args.engine == "both" else (args.engine,))
               if engine_available(e)] or ["python"]
    scores = evaluate(traffic, engines[0])
    print(f"Per labeled connection (every record of a session, on every ENI it crosses), "
          f"--engine {engines[0]}:")
    print(format_scores(scores))
    print()
    print(format_targets(scores))
    print("\nConnections with an alert, by scenario:")
    print(format_scenarios(traffic, scores))
    print("\nScan time of the tuned rules vs the spec rules on the same records (best of "
          f"{args.repeat}):")
    if not engine_available("duckdb"):
        print("  --engine duckdb: the vectorized engine is not available")
    for engine in engines:
        spec, spec_rows = time_scan(traffic, "default", engine, args.repeat)
        tuned, tuned_rows = time_scan(traffic, "tuned", engine, args.repeat)
        print(f"  --engine {engine}: spec {spec:.3f}s, tuned {tuned:.3f}s, ratio "
              f"{tuned / spec:.2f}x (rows decided by Python: spec {spec_rows}, tuned {tuned_rows})")
        if engine == "duckdb":
            spec, tuned = (time_conditions(traffic, p, args.repeat) for p in ("default", "tuned"))
            print(f"  --engine duckdb, conditions only (no alert functions): spec {spec:.3f}s, "
                  f"tuned {tuned:.3f}s, ratio {tuned / spec:.2f}x")

if __name__ == "__main__":
    main()
