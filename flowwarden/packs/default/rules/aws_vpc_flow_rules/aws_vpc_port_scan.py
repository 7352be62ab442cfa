from flowwarden_config import setting
from flowwarden_flow_helpers import flow_context

# Configuration Required: `common_ports` in flowwarden.yaml
COMMON_PORTS = setting("common_ports")


def rule(event):
    if not event.udm("source_ip") or not event.udm("destination_ip"):
        return False
    if event.udm("destination_port") is None:
        return False
    if event.udm("destination_port") in COMMON_PORTS:
        return False
    # A reply from a well-known service port is return traffic, not a probe
    return event.udm("source_port") not in COMMON_PORTS


def title(event):
    return f"Port scan from [{event.udm('source_ip')}] against [{event.udm('destination_ip')}]"


def dedup(event):
    return f"{event.udm('source_ip')}->{event.udm('destination_ip')}"


def unique(event):
    return str(event.udm("destination_port"))


def alert_context(event):
    return flow_context(event)
