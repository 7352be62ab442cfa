from ipaddress import ip_network

from flowwarden_config import setting
from flowwarden_flow_helpers import flow_context

# Configuration Required: `admin_ports` in flowwarden.yaml (default 22, 3389)
ADMIN_PORTS = setting("admin_ports")


def rule(event):
    if event.udm("destination_port") not in ADMIN_PORTS:
        return False
    if not event.udm("source_ip") or not event.udm("destination_ip"):
        return False
    if not ip_network(event.udm("source_ip")).is_global:
        return False
    return not ip_network(event.udm("destination_ip")).is_global


def title(event):
    return (
        f"Inbound traffic from [{event.udm('source_ip')}] to administrative port "
        f"[{event.udm('destination_port')}] on [{event.udm('destination_ip')}]"
    )


def dedup(event):
    return f"{event.udm('source_ip')}->{event.udm('destination_ip')}:{event.udm('destination_port')}"


def alert_context(event):
    return flow_context(event)
