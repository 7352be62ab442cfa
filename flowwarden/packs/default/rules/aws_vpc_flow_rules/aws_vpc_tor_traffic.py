from flowwarden_enrichment_helpers import FLOW_KEYS, flow_matches, other_address, plain
from flowwarden_flow_helpers import flow_context

# Panther's own Tor table (panther-analysis lookup_tables/tor/tor_exit_nodes.yml): LookupName
# tor_exit_nodes, PrimaryKey ip, AWS.VPCFlow selectors srcAddr and dstAddr. For OCSF, give the
# table the selectors $.src_endpoint.ip and $.dst_endpoint.ip.
TOR_TABLE = "tor_exit_nodes"
ACCEPTED = {"ACCEPT", "Allowed"}


def rule(event):
    if event.udm("action") not in ACCEPTED:
        return False
    for key in FLOW_KEYS:  # the flow's source and destination address, AWS's and OCSF's
        # p_match: the matched address, which Panther adds to every matched row (a string test
        # compiles into the query; the row itself would need Python)
        if event.deep_get("p_enrichment", TOR_TABLE, key, "p_match"):
            return True
    return False


def _match(event):
    found = flow_matches(event, TOR_TABLE)
    return found[0] if found else {}


def _exit_node(event):
    return _match(event).get("address")


def title(event):
    match = _match(event)
    if match.get("direction") == "source":
        return (f"Accepted inbound traffic from Tor exit node [{match.get('address')}] "
                f"to [{other_address(event, match)}]")
    return (f"Accepted outbound traffic from [{other_address(event, match)}] "
            f"to Tor exit node [{match.get('address')}]")


def dedup(event):
    # The exit node's address, as _match finds it, written out so that the query computes it
    # for every match.
    for key in FLOW_KEYS:
        address = event.deep_get("p_enrichment", TOR_TABLE, key, "p_match")
        if address:
            return str(address)
    return str(_exit_node(event))


def severity(event):
    # A host of yours reaching out to Tor (a proxy for C2 or exfiltration) matters more than
    # Tor users reaching a service you expose.
    return "HIGH" if _match(event).get("direction") == "destination" else "DEFAULT"


def alert_context(event):
    match = _match(event)
    return {
        **flow_context(event),
        "tor": {
            "direction": "inbound" if match.get("direction") == "source" else "outbound",
            "exit_node": match.get("address"),
            "selector": match.get("selector"),
            "row": plain(match.get("row")),
            "exonerator": "https://metrics.torproject.org/exonerator.html?ip="
                          f"{match.get('address')}",
        },
    }
