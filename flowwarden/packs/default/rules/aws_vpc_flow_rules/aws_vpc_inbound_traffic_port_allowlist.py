from ipaddress import ip_network

from flowwarden_config import setting
from flowwarden_flow_helpers import flow_context

# Configuration Required: `allowed_inbound_ports` in flowwarden.yaml (default 80, 443)
APPROVED_PORTS = setting("allowed_inbound_ports")


def rule(event):
    # Can't perform this check without a destination port
    if not event.udm("destination_port"):
        return False
    # Only monitor for non allowlisted ports
    if event.udm("destination_port") in APPROVED_PORTS:
        return False
    # Only monitor for traffic coming from non-private IP space
    # Defaults to True (no alert) if the source address is not present
    if not ip_network(event.udm("source_ip") or "0.0.0.0/32").is_global:
        return False
    # Alert if the traffic is destined for internal IP addresses
    # Defaults to False (no alert) if the destination address is not present
    return not ip_network(event.udm("destination_ip") or "1.0.0.0/32").is_global


def title(event):
    return (
        f"Inbound traffic from [{event.udm('source_ip')}] "
        f"to non-allowlisted port [{event.udm('destination_port')}] on [{event.udm('destination_ip')}]"
    )


def alert_context(event):
    return flow_context(event)
