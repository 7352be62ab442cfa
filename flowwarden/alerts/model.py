"""The alert a user receives: one per rule, dedup string and dedup window."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

TACTICS = {
    "TA0001": "Initial Access", "TA0002": "Execution", "TA0003": "Persistence",
    "TA0004": "Privilege Escalation", "TA0005": "Defense Evasion", "TA0006": "Credential Access",
    "TA0007": "Discovery", "TA0008": "Lateral Movement", "TA0009": "Collection",
    "TA0010": "Exfiltration", "TA0011": "Command and Control", "TA0040": "Impact",
    "TA0042": "Resource Development", "TA0043": "Reconnaissance",
}
TECHNIQUES = {
    "T1021": "Remote Services", "T1021.004": "Remote Services: SSH", "T1046": "Network Service Discovery",
    "T1048": "Exfiltration Over Alternative Protocol", "T1071": "Application Layer Protocol",
    "T1071.004": "Application Layer Protocol: DNS", "T1090": "Proxy",
    "T1090.003": "Proxy: Multi-hop Proxy", "T1133": "External Remote Services",
    "T1190": "Exploit Public-Facing Application", "T1562": "Impair Defenses",
    "T1571": "Non-Standard Port", "T1572": "Protocol Tunneling", "T1595": "Active Scanning",
}


def mitre_entries(reports: tuple[str, ...]) -> list[dict[str, str]]:
    """`TA0011:T1071` entries as tactic and technique ids with names."""
    entries = []
    for item in reports:
        tactic, _, technique = item.partition(":")
        entries.append({
            "tactic_id": tactic, "tactic": TACTICS.get(tactic, ""),
            "technique_id": technique, "technique": TECHNIQUES.get(technique, ""),
        })
    return entries


def alert_id(rule_id: str, dedup: str, window_start: datetime) -> str:
    """Stable: the same rule, dedup string and window always give the same id."""
    key = f"{rule_id}\x1f{dedup}\x1f{window_start.isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class Alert:
    """An alert: its identity, what the rule said, and the events behind it (its context and
    samples as JSON values: times in ISO 8601 text, tuples as lists)."""

    id: str
    rule_id: str
    rule_name: str
    title: str
    severity: str
    dedup: str
    window_start: datetime
    first_event_time: datetime
    last_event_time: datetime
    event_count: int
    unique_count: int | None
    threshold: int
    mitre: list[dict[str, str]]
    runbook: str
    reference: str
    description: str
    log_types: list[str]
    alert_context: dict[str, Any] | None
    destinations: list[str] | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> str:
        """``id:event count:last event time``: what tells this alert from an earlier state of
        it (a digest of every alert's names an alert file, ``runs.checkpoint.alerts_name``)."""
        return f"{self.id}:{self.event_count}:{self.last_event_time.isoformat()}"
