from flowwarden_config import setting
from flowwarden_enrichment_helpers import FLOW_KEYS, first_match, other_address, plain
from flowwarden_flow_helpers import flow_context

# Configuration Required: `threat_intel_tables` in flowwarden.yaml (default: threat_intel), the
# LookupName of each of your indicator (IOC) tables; sorted, so that the first match is the same
# on every run.
IOC_TABLES = sorted(setting("threat_intel_tables"))
ACCEPTED = {"ACCEPT", "Allowed"}
# Where a table's match of the flow's addresses appears under p_enrichment.<table> (see
# flowwarden_enrichment_helpers): under FLOW_KEYS, AWS.VPCFlow's fields and OCSF's paths, each a
# matched row whose p_match (which Panther adds to every matched row) is the address; or, for a
# table selecting every address at once, a list of such rows. Testing p_match, a string, rather
# than the row keeps the test in the compiled query.
LIST_KEY = "p_any_ip_addresses"
# Confidence (0-100, as STIX 2.1 and most feeds score it) to severity. Confidence alone never
# makes an alert Critical: an indicator says an address was seen doing harm, not that this flow
# did; raise it per table or indicator in your own tuned copy if your feed warrants it.
HIGH_CONFIDENCE = 80
MEDIUM_CONFIDENCE = 50


def rule(event):
    if event.udm("action") not in ACCEPTED:
        return False
    for table in IOC_TABLES:
        for key in FLOW_KEYS:
            if event.deep_get("p_enrichment", table, key, "p_match"):
                return True
        if event.deep_get("p_enrichment", table, LIST_KEY):
            return True
    return False


def _match(event):
    return first_match(event, IOC_TABLES) or {}


def title(event):
    match = _match(event)
    other = other_address(event, match)
    if match.get("direction") == "source":
        return f"Accepted traffic from threat-intel address [{match.get('address')}] to [{other}]"
    return f"Accepted traffic from [{other}] to threat-intel address [{match.get('address')}]"


def dedup(event):
    # The first match's address, as _match finds it, written out so that the query computes it
    # for every match; only a table matched through the list selector asks Python.
    for table in IOC_TABLES:
        for key in FLOW_KEYS:
            address = event.deep_get("p_enrichment", table, key, "p_match")
            if address:
                return str(address)
        if event.deep_get("p_enrichment", table, LIST_KEY):
            return str(_match(event).get("address"))
    return str(None)


def severity(event):
    confidence = _confidence(_match(event).get("row"))
    if confidence is None:
        return "DEFAULT"
    if confidence >= HIGH_CONFIDENCE:
        return "HIGH"
    if confidence >= MEDIUM_CONFIDENCE:
        return "MEDIUM"
    return "LOW"


def _confidence(row):
    """The indicator's confidence as a number; None when the row has none (a CSV feed may write
    it as text)."""
    value = row.get("confidence") if row else None
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def alert_context(event):
    match = _match(event)
    return {
        **flow_context(event),
        "threat_intel": {
            "table": match.get("table"),
            "selector": match.get("selector"),
            "direction": match.get("direction"),
            "address": match.get("address"),
            "indicator": plain(match.get("row")),
        },
    }
