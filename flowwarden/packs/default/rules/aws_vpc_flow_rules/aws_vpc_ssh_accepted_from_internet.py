from ipaddress import ip_network

from flowwarden_flow_helpers import flow_context

ACCEPTED = {"ACCEPT", "Allowed"}


def rule(event):
    if event.udm("destination_port") != 22:
        return False
    if event.udm("protocol") != 6:
        return False
    if event.udm("action") not in ACCEPTED:
        return False
    if not event.udm("source_ip") or not event.udm("destination_ip"):
        return False
    if not ip_network(event.udm("source_ip")).is_global:
        return False
    return not ip_network(event.udm("destination_ip")).is_global


def title(event):
    return f"SSH from [{event.udm('source_ip')}] accepted by [{event.udm('destination_ip')}]"


def dedup(event):
    return f"{event.udm('source_ip')}->{event.udm('destination_ip')}"


def alert_context(event):
    return flow_context(event)
