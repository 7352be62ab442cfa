"""AWS.VPC.UnapprovedOutboundDNS with its known false positives and blind spots fixed.

Differences from the spec rule (flowwarden/packs/default, kept exact):
- multicast DNS (224.0.0.251, ff02::fb on 5353) is service discovery, not a resolver;
- the Route 53 Resolver (169.254.169.253, fd00:ec2::253, VPC base + 2) is approved by definition;
- "ours" is private or in `internal_networks`, for both the client and the resolver, so VPC IPv6
  clients are seen and 100.64.0.0/10 is decided by configuration;
- addresses are the packet's own (pkt-srcaddr/pkt-dstaddr) when the format has them, and the
  NAT gateway's translated leg is skipped, so one query makes one alert.

rule() uses only forms the condition extractor compiles without residual (module constants,
literal comparisons, `or` defaults, ipaddress predicates, a `for` over INTERNAL_NETWORKS).
"""

from ipaddress import ip_address, ip_network

from flowwarden_config import setting
from flowwarden_flow_helpers import flow_context

# Configuration Required: `approved_dns_servers` in flowwarden.yaml (default 1.1.1.1, 8.8.8.8)
APPROVED_DNS_SERVERS = setting("approved_dns_servers")
# Configuration Required: `internal_networks` in flowwarden.yaml: your VPC CIDRs, IPv4 and IPv6
INTERNAL_NETWORKS = setting("internal_networks")
DNS_PORTS = {53, 5353}
# Amazon-provided DNS (Route 53 Resolver) at its fixed IPv4 and IPv6 addresses; the third one,
# VPC base + 2, lies inside the VPC CIDR: private, or listed in internal_networks
AMAZON_DNS_SERVERS = {"169.254.169.253", "fd00:ec2::253"}
# Private IPs of your NAT gateways (`nat_gateway_addresses` in flowwarden.yaml): their translated
# leg (NAT IP -> resolver) repeats a query the client's own record already attributes
NAT_GATEWAY_ADDRESSES = setting("nat_gateway_addresses")


def rule(event):
    # Common DNS ports, for better security use an application layer aware network monitor
    if event.udm("destination_port") not in DNS_PORTS:
        return False
    # Both ends are needed to attribute the query (the packet's own addresses where logged)
    if not (event.udm("packet_source_ip") or event.udm("source_ip")):
        return False
    if not (event.udm("packet_destination_ip") or event.udm("destination_ip")):
        return False
    # Multicast DNS (224.0.0.251, ff02::fb): a multicast group is link-local service discovery,
    # not a resolver, although ipaddress calls it global
    if ip_network(event.udm("packet_destination_ip") or event.udm("destination_ip")).is_multicast:
        return False
    # The Route 53 Resolver is an approved resolver by definition
    if (event.udm("packet_destination_ip") or event.udm("destination_ip")) in AMAZON_DNS_SERVERS:
        return False
    # No need to alert if the destination is an approved DNS server
    if (event.udm("packet_destination_ip") or event.udm("destination_ip")) in APPROVED_DNS_SERVERS:
        return False
    # A NAT gateway's translated leg: the client's own record carries the query
    if (event.udm("packet_source_ip") or event.udm("source_ip")) in NAT_GATEWAY_ADDRESSES:
        return False
    # A private resolver is ours (custom resolvers, Route 53 Resolver endpoints, VPC base + 2)
    if ip_network(event.udm("packet_destination_ip") or event.udm("destination_ip")).is_private:
        return False
    # So is a resolver in internal_networks (VPC IPv6, shared address space such as EKS ranges)
    for network in INTERNAL_NETWORKS:
        if ip_address(event.udm("packet_destination_ip") or event.udm("destination_ip")) in ip_network(network):
            return False
    # Alert if the client is ours: in internal_networks (VPC IPv6, shared address space)
    for network in INTERNAL_NETWORKS:
        if ip_address(event.udm("packet_source_ip") or event.udm("source_ip")) in ip_network(network):
            return True
    # Alert if the client is ours: private (RFC 1918, IPv6 ULA); 100.64.0.0/10 only when listed
    return ip_network(event.udm("packet_source_ip") or event.udm("source_ip")).is_private


def _source(event):
    return event.udm("packet_source_ip") or event.udm("source_ip")


def _destination(event):
    return event.udm("packet_destination_ip") or event.udm("destination_ip")


def title(event):
    return (
        f"Unapproved outbound DNS traffic from [{_source(event)}] "
        f"to [{_destination(event)}]:{event.udm('destination_port')}"
    )


def dedup(event):
    # One query, one alert: the client's ENI and the NAT gateway's ingress leg share this key
    return f"{_source(event)}->{_destination(event)}:{event.udm('destination_port')}"


def alert_context(event):
    context = flow_context(event)
    for name in ("source_port", "packet_source_ip", "packet_destination_ip", "tcp_flags",
                 "flow_direction"):
        context[name] = event.udm(name)
    return context
