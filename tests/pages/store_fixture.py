"""A small alert store with known numbers and hostile strings, for the report tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flowwarden.alerts.model import Alert, mitre_entries
from flowwarden.alerts.store import AlertStore

XSS_TITLE = '<script>window.__xss_title = 1</script>'
XSS_ATTR = '" onerror="window.__xss_attr=1" x="'
XSS_IMG = '<img src=x onerror="window.__xss_img=1">'
SCRIPT_CLOSE = "</script><script>window.__xss_json=1</script>"
BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# (rule id, severity, minutes after BASE, events, source ip, destination port)
ALERTS = (
    ("AWS.VPC.InboundPortWhitelist", "High", 0, 5, "52.1.2.3", 22),
    ("AWS.VPC.InboundPortWhitelist", "High", 3, 2, "52.1.2.3", 3389),
    ("AWS.VPC.InboundPortWhitelist", "High", 70, 1, "198.51.100.7", 22),
    ("AWS.VPC.UnapprovedOutboundDNS", "Medium", 75, 4, "10.0.0.9", 53),
    ("AWS.VPC.PortScan", "Medium", 800, 12, "203.0.113.5", 6379),
)
# 800 minutes is too long for 47 15-minute buckets, so the chart has 1-hour buckets from 12:00
# to 01:00 the next day: 2 alerts at 12:00, 2 at 13:00, 1 at 01:00.
EXPECTED_BUCKET_ALERTS = (2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)


def _alert(index: int, rule_id: str, severity: str, minutes: int, events: int, source: str,
           port: int, title: str) -> Alert:
    when = BASE + timedelta(minutes=minutes)
    context: dict[str, Any] = {
        "source_ip": source, "destination_ip": "10.0.0.1", "source_port": 40000 + index,
        "destination_port": port, "action": "ACCEPT", "note": None,
    }
    if index == 0:
        context["hostile"] = XSS_IMG
        context["attr"] = XSS_ATTR
    return Alert(
        id=f"alert{index}", rule_id=rule_id, rule_name=XSS_ATTR if index == 0 else f"Rule {index}",
        title=title,
        severity=severity, dedup=f"{source}:{port}", window_start=when, first_event_time=when,
        last_event_time=when + timedelta(minutes=1), event_count=events, unique_count=None,
        threshold=1, mitre=mitre_entries(("TA0011:T1571",)), runbook="", reference="",
        description="", log_types=["AWS.VPCFlow"], alert_context=context,
        samples=[{"srcAddr": source, "dstPort": port, "note": SCRIPT_CLOSE}],
    )


def make_store(path: Path) -> Path:
    store = AlertStore(path)
    try:
        alerts = [
            _alert(i, *row, title=XSS_TITLE if i == 0 else f"Alert {i} from {row[4]}")
            for i, row in enumerate(ALERTS)
        ]
        store.add(alerts)
        store.add_scan_files("scan1", [
            {"source": "flows-ok.log.gz", "log_type": "AWS.VPCFlow", "read": 100, "parsed": 100,
             "rejected": 0, "rejections": []},
            {"source": f"bad{XSS_IMG}.log", "log_type": "AWS.VPCFlow", "read": 10, "parsed": 7,
             "rejected": 3, "rejections": [{"line": 2, "reason": f"bad field {XSS_TITLE}"},
                                           {"line": 5, "reason": "too few fields"},
                                           {"line": 9, "reason": "too few fields"}]},
        ])
    finally:
        store.close()
    return path


# A rule id that needs quoting in SQL and escaping in HTML (rule ids come from rule files).
ODD_RULE = "Custom.O'Brien<b>&\"Rule\""
RANDOM_RULES = ("AWS.VPC.InboundPortWhitelist", "AWS.VPC.PortScan", "OCSF.Custom", ODD_RULE)
_IPS = ("10.0.0.1", "10.0.0.2", "52.1.2.3", "198.51.100.7", "203.0.113.5", "2001:db8::1", "")
_PORTS = (22, 53, 443, 3389, 8080, 6379)


_MISSING = object()


def _maybe(rng: random.Random, pool: tuple[Any, ...]) -> Any:
    """A value from `pool`, or None, or missing (the `_MISSING` marker)."""
    roll = rng.random()
    if roll < 0.12:
        return None
    if roll < 0.22:
        return _MISSING
    return rng.choice(pool)


def _put(record: dict[str, Any], key: str, value: Any) -> None:
    if value is not _MISSING:
        record[key] = value


def _random_context(rng: random.Random) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.08:
        return None
    context: dict[str, Any] = {"action": "ACCEPT"}
    if roll < 0.16:  # raw-record keys in the context: the second path of each kind
        _put(context, "srcAddr", _maybe(rng, _IPS))
        _put(context, "dstPort", _maybe(rng, _PORTS))
        return context
    for key, pool in (("source_ip", _IPS), ("destination_ip", _IPS),
                      ("source_port", _PORTS), ("destination_port", _PORTS)):
        _put(context, key, _maybe(rng, pool))
    if rng.random() < 0.3:  # used only where source_ip is missing, null or empty
        _put(context, "srcAddr", _maybe(rng, _IPS))
    return context


def _random_sample(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.1:
        return "not a record"
    if roll < 0.5:  # OCSF: nested endpoints
        sample: dict[str, Any] = {"p_log_type": "OCSF.NetworkActivity"}
        for side in ("src_endpoint", "dst_endpoint"):
            if rng.random() < 0.2:
                sample[side] = "flat"
                continue
            endpoint: dict[str, Any] = {}
            _put(endpoint, "ip", _maybe(rng, _IPS))
            _put(endpoint, "port", _maybe(rng, _PORTS))
            sample[side] = endpoint
        return sample
    sample = {"p_log_type": "AWS.VPCFlow", "note": SCRIPT_CLOSE}
    for key, pool in (("srcAddr", _IPS), ("dstAddr", _IPS), ("srcPort", _PORTS),
                      ("dstPort", _PORTS)):
        _put(sample, key, _maybe(rng, pool))
    return sample


def random_alerts(seed: int, count: int, span: timedelta) -> list[Alert]:
    """`count` alerts of a few rules with every shape of endpoint data `ENDPOINT_KEYS` reads:
    data-model keys in the context, raw keys in the context, AWS and OCSF samples, values that
    are missing, null or empty, samples that are not records, no samples at all."""
    rng = random.Random(seed)
    alerts = []
    for index in range(count):
        rule_id = rng.choice(RANDOM_RULES)
        when = BASE + timedelta(seconds=rng.randrange(int(span.total_seconds()) + 1))
        events = rng.choice((None, 0, 1, 1, 2, 3, 7))
        alerts.append(Alert(
            id=f"r{seed}-{index:05d}", rule_id=rule_id, rule_name=f"Name of {rule_id}",
            title=f"Random alert {index}", severity=rng.choice(("Critical", "High", "Medium",
                                                                 "Low", "Info")),
            dedup=str(index), window_start=when,
            # a few alerts without a first event time: the chart leaves them out
            first_event_time=None if rng.random() < 0.03 else when,
            last_event_time=when, event_count=events, unique_count=None,
            threshold=1, mitre=[], runbook="", reference="", description="",
            log_types=["AWS.VPCFlow"], alert_context=_random_context(rng),
            samples=[_random_sample(rng) for _ in range(rng.choice((0, 1, 2, 3, 3, 5)))],
        ))
    # two alerts of one rule at the same time: the id breaks the tie
    twin = alerts[0]
    alerts.append(Alert(**{**twin.__dict__, "id": "r-twin", "dedup": "twin"}))
    return alerts


def make_random_store(path: Path, seed: int, count: int, span: timedelta) -> Path:
    store = AlertStore(path)
    try:
        store.add(random_alerts(seed, count, span))
    finally:
        store.close()
    return path
