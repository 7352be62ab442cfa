"""Which of a flow's addresses a lookup table matched, read from ``p_enrichment``.

Panther puts a table's match for a selector at ``p_enrichment.<LookupName>.<selector>``: the
table row plus ``p_match`` (the value that matched) for a field such as ``srcAddr``, or a list of
such rows for a list field such as ``p_any_ip_addresses``. A JSON-path selector is keyed without
its ``$.`` (``$.src_endpoint.ip`` appears as ``src_endpoint.ip``).
"""

from collections.abc import Mapping, Sequence

# The p_enrichment keys of a flow's source and destination address: AWS.VPCFlow's fields (the
# selectors of Panther's own tables, such as tor_exit_nodes) and OCSF.NetworkActivity's.
SOURCE_KEYS = ("srcAddr", "src_endpoint.ip")
DESTINATION_KEYS = ("dstAddr", "dst_endpoint.ip")
# In the order matches are found: source first.
FLOW_KEYS = SOURCE_KEYS + DESTINATION_KEYS
# A table may select every address of the record at once instead.
LIST_KEY = "p_any_ip_addresses"
SOURCE, DESTINATION = "source", "destination"


# The last event's matches, by table: a rule's title, dedup, severity and context each ask for
# them, so an alert's first event would otherwise walk its enrichment four times.
_LAST: dict = {"event": None, "matches": {}}


def flow_matches(event, table):
    """The table's matches of the flow's addresses, source first: a list of dicts with
    ``direction`` (source or destination), ``address``, ``selector`` and ``row``."""
    if _LAST["event"] is not event:
        _LAST["event"], _LAST["matches"] = event, {}
    if table not in _LAST["matches"]:
        _LAST["matches"][table] = _flow_matches(event, table)
    return [dict(match) for match in _LAST["matches"][table]]


def _flow_matches(event, table):
    found = []
    for direction, keys in ((SOURCE, SOURCE_KEYS), (DESTINATION, DESTINATION_KEYS)):
        for key in keys:
            row = event.deep_get("p_enrichment", table, key)
            # a matched row holds p_match, the address (Panther adds it to every match)
            address = row.get("p_match") if isinstance(row, Mapping) else None
            if address:
                found.append(_match(direction, address, key, row))
    for row in event.deep_get("p_enrichment", table, LIST_KEY) or []:
        address = row.get("p_match") if isinstance(row, Mapping) else None
        direction = _direction(event, address)
        if address and direction:
            found.append(_match(direction, address, LIST_KEY, row))
    return _distinct(found)


def first_match(event, tables):
    """The first match of the first table (in ``tables`` order) that matched, with its
    ``table``; None when none did."""
    for table in tables:
        for match in flow_matches(event, table):
            return {**match, "table": table}
    return None


def _direction(event, address):
    """Which side of the flow an address matched through a list selector is on (the packet
    addresses of NAT traffic count for the side they stand for)."""
    if address in (event.udm("source_ip"), event.udm("packet_source_ip")):
        return SOURCE
    if address in (event.udm("destination_ip"), event.udm("packet_destination_ip")):
        return DESTINATION
    return None


def _match(direction, address, selector, row):
    return {"direction": direction, "address": address, "selector": selector, "row": row}


def _distinct(matches):
    seen, out = set(), []
    for match in matches:
        key = (match["direction"], match["address"])
        if key not in seen:
            seen.add(key)
            out.append(match)
    return out


def other_address(event, match):
    """The flow's address on the other side of a match."""
    other = DESTINATION if match["direction"] == SOURCE else SOURCE
    return event.udm(f"{other}_ip")


def plain(value):
    """A matched row as plain dicts and lists (rows read from an event are read-only views)."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(item) for item in value]
    return value
