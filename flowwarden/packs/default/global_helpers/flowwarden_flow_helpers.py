"""Helpers shared by the built-in flow rules."""

# The flow's own fields, by data-model name: what an analyst needs to triage a flow alert.
FLOW_CONTEXT_FIELDS = (
    "source_ip",
    "source_port",
    "destination_ip",
    "destination_port",
    "protocol",
    "action",
    "account_id",
    "region",
    "interface_id",
    "vpc_id",
    "bytes",
    "packets",
    "start_time",
    "end_time",
    "log_status",
)


def flow_context(event):
    return {name: event.udm(name) for name in FLOW_CONTEXT_FIELDS}
