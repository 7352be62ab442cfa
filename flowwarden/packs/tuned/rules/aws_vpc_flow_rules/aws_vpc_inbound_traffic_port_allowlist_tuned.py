"""AWS.VPC.InboundPortWhitelist with its known false positives and blind spots fixed.

Differences from the spec rule (flowwarden/packs/default, kept exact):
- only the record that opens a connection from the internet alerts, never its return traffic
  (TCP flags when logged, otherwise the service-port -> ephemeral-port pair);
- addresses are the packet's own (pkt-srcaddr/pkt-dstaddr) when the format has them;
- "ours" is private or in `internal_networks` (VPC IPv6 ranges are global unicast, and
  100.64.0.0/10 is neither private nor global); "the internet" is global and not ours;
- egress copies logged by middlebox ENIs (NAT/transit gateway) are left to the ENI that receives
  the packet, and the dedup key is the packet-level flow, so one connection makes one alert.

rule() uses only forms the condition extractor compiles without residual (module constants,
literal comparisons, `or` defaults, ipaddress predicates, a `for` over INTERNAL_NETWORKS).
"""

from ipaddress import ip_address, ip_network

from flowwarden_config import setting
from flowwarden_flow_helpers import flow_context

# Configuration Required: `allowed_inbound_ports` in flowwarden.yaml (default 80, 443)
APPROVED_PORTS = setting("allowed_inbound_ports")
# Configuration Required: `internal_networks` in flowwarden.yaml: your VPC CIDRs, IPv4 and IPv6
INTERNAL_NETWORKS = setting("internal_networks")
# Well-known service ports (`common_ports`): a reply leaves one of them towards an ephemeral port
SERVICE_PORTS = setting("common_ports")
# Lowest client port: NAT gateways translate to 1024-65535; Linux uses 32768+, Windows 49152+
EPHEMERAL_MIN = 1024
TCP = 6
# tcp-flags is OR-ed over the aggregation interval: FIN 1, SYN 2, RST 4, (PSH 8), ACK 16, (URG 32);
# AWS logs SYN-ACK as 18. The initiator's opening record has SYN without ACK.
SYN = 2
ACK = 16
INITIATOR_FLAGS = frozenset(v for v in range(64) if v & SYN and not v & ACK)


def rule(event):
    # Can't perform this check without a destination port (NODATA/SKIPDATA, ICMP's port 0)
    if not event.udm("destination_port"):
        return False
    # Only monitor for non allowlisted ports
    if event.udm("destination_port") in APPROVED_PORTS:
        return False
    # TCP flags logged: only the connection's opening record (SYN without SYN-ACK) is an inbound
    # attempt; SYN-ACK marks the responder (return traffic) and a record without SYN continues a
    # connection whose opening record was already judged
    if (
        event.udm("protocol") == TCP
        and event.udm("tcp_flags") is not None
        and event.udm("tcp_flags") not in INITIATOR_FLAGS
    ):
        return False
    # No TCP flags (UDP, or a format without tcp-flags): a reply travels from a service port to
    # the client's ephemeral port (HTTPS/DNS responses to outbound requests)
    if (
        (event.udm("protocol") != TCP or event.udm("tcp_flags") is None)
        and event.udm("source_port") in SERVICE_PORTS
        and event.udm("destination_port") >= EPHEMERAL_MIN
    ):
        return False
    # Both ends are needed to call it inbound (the packet's own addresses where logged)
    if not (event.udm("packet_source_ip") or event.udm("source_ip")):
        return False
    if not (event.udm("packet_destination_ip") or event.udm("destination_ip")):
        return False
    # The source must be the internet: globally routable (never private or shared 100.64.0.0/10)
    if not ip_network(event.udm("packet_source_ip") or event.udm("source_ip")).is_global:
        return False
    # A source in internal_networks is ours (VPC IPv6 ranges are global unicast)
    for network in INTERNAL_NETWORKS:
        if ip_address(event.udm("packet_source_ip") or event.udm("source_ip")) in ip_network(network):
            return False
    # An egress record of an internet-sourced packet is a middlebox ENI (NAT or transit gateway)
    # forwarding it; the receiving ENI logs the same packet as ingress
    if event.udm("flow_direction") == "egress":
        return False
    # Alert if the destination is ours: in internal_networks (VPC IPv6, shared address space)
    for network in INTERNAL_NETWORKS:
        if ip_address(event.udm("packet_destination_ip") or event.udm("destination_ip")) in ip_network(network):
            return True
    # Alert if the destination is ours: private (RFC 1918, IPv6 ULA); 100.64.0.0/10 only when listed
    return ip_network(event.udm("packet_destination_ip") or event.udm("destination_ip")).is_private


def _source(event):
    return event.udm("packet_source_ip") or event.udm("source_ip")


def _destination(event):
    return event.udm("packet_destination_ip") or event.udm("destination_ip")


def title(event):
    return (
        f"Inbound traffic from [{_source(event)}] "
        f"to non-allowlisted port [{event.udm('destination_port')}] on [{_destination(event)}]"
    )


def dedup(event):
    # One connection, one alert: every ENI that logs the packet sees the same packet-level flow
    return (
        f"{_source(event)}->{_destination(event)}:{event.udm('destination_port')}"
        f"/{event.udm('protocol')}"
    )


def alert_context(event):
    context = flow_context(event)
    for name in ("source_port", "packet_source_ip", "packet_destination_ip", "tcp_flags",
                 "flow_direction"):
        context[name] = event.udm(name)
    return context
