from ipaddress import ip_network

from flowwarden_config import setting
from flowwarden_flow_helpers import flow_context

# Configuration Required: `approved_dns_servers` in flowwarden.yaml (default 1.1.1.1, 8.8.8.8)
APPROVED_DNS_SERVERS = setting("approved_dns_servers")


def rule(event):
    # Common DNS ports, for better security use an application layer aware network monitor
    if event.udm("destination_port") != 53 and event.udm("destination_port") != 5353:
        return False
    # Only monitor traffic that is originating internally
    # Defaults to True (no alert) if the source address is not present
    if ip_network(event.udm("source_ip") or "0.0.0.0/32").is_global:
        return False
    # No clients should be making DNS requests directly to external DNS servers
    # Defaults to True (no alert) if the destination address is not present
    if ip_network(event.udm("destination_ip") or "192.168.0.1/32").is_private:
        return False
    # No need to alert if the destination is an approved DNS server
    return (
        event.udm("destination_ip") is not None
        and event.udm("destination_ip") not in APPROVED_DNS_SERVERS
    )


def title(event):
    return (
        f"Unapproved outbound DNS traffic from [{event.udm('source_ip')}] "
        f"to [{event.udm('destination_ip')}]:{event.udm('destination_port')}"
    )


def alert_context(event):
    return flow_context(event)
