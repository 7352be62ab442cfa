from flowwarden_flow_helpers import flow_context


def rule(event):
    return event.udm("log_status") == "SKIPDATA"


def title(event):
    return f"Flow log records skipped on interface [{event.udm('interface_id')}]"


def dedup(event):
    return f"{event.udm('account_id')}:{event.udm('interface_id')}"


def alert_context(event):
    return flow_context(event)
