"""A small alert store with known numbers and hostile strings, for the report tests."""

from __future__ import annotations

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
