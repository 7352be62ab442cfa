# OCSF 1.1.0 nests the account (cloud.account.uid); 1.0.0-rc.2 has it flat (cloud.account_uid).
def get_account_id(event):
    return event.deep_get("cloud", "account", "uid") or event.deep_get("cloud", "account_uid")


# The AWS mapping puts the ENI on the destination for ingress and on the source for egress.
def _endpoint_value(event, key):
    return event.deep_get("dst_endpoint", key) or event.deep_get("src_endpoint", key)


def get_interface_id(event):
    return _endpoint_value(event, "interface_uid")


def get_vpc_id(event):
    return _endpoint_value(event, "vpc_uid")


DIRECTIONS = {1: "ingress", 2: "egress"}


def get_flow_direction(event):
    return DIRECTIONS.get(event.deep_get("connection_info", "direction_id"))
