"""Alerts as OCSF 1.1.0 Detection Findings (class 2004), as JSON lines or Parquet.

One finding per alert, a pure function of the alert, so an alert emitted again (same id, same
counts) gives the same finding byte for byte:

- ``finding_info.uid`` is the alert id; ``analytic`` names the rule (type Rule); ``attacks`` holds
  the rule's MITRE ATT&CK reports (a ``T1021.004`` report becomes technique T1021 with
  sub-technique T1021.004).
- ``time`` is the last event's time, ``start_time``/``first_seen_time`` the first's,
  ``end_time``/``last_seen_time`` the last's (epoch milliseconds); ``count`` the event count.
- ``evidences[0]`` has the first event's ``src_endpoint``, ``dst_endpoint`` and
  ``connection_info``, mapped from AWS.VPCFlow as AWS's VPC dossier does (packet-level addresses as
  ``ip``, ENI-level ones as ``intermediate_ips``, the interface on the ENI's side of the flow).
  Endpoints carry their address as ``name`` too: the compiled schema asks each for a name or uid.
- ``cloud`` is AWS with the region and account of the alert context, else of the first event.
- ``unmapped`` keeps what OCSF has no place for: the alert context, dedup string, window start,
  threshold, unique count and log types.

>>> from flowwarden.alerts.formats.ocsf import SEVERITY_IDS
>>> SEVERITY_IDS["High"]
4
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden import __version__
from flowwarden.alerts.formats.jsonl import jsonable, write_lines
from flowwarden.alerts.model import TECHNIQUES, Alert
from flowwarden.util.files import atomic_writer

OCSF_VERSION = "1.1.0"
CLASS_UID, CATEGORY_UID, ACTIVITY_CREATE = 2004, 2, 1
SEVERITY_IDS = {"Info": 1, "Low": 2, "Medium": 3, "High": 4, "Critical": 5}
SEVERITY_CAPTIONS = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High",
                     5: "Critical"}
DIRECTIONS = {"ingress": (1, "Inbound"), "egress": (2, "Outbound")}
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp"}
IP_VERSIONS = {"IPv4": 4, "IPv6": 6}
# AWS traffic-path 1..8 is OCSF boundary 4..11, one to one.
BOUNDARIES = {1: "Same VPC", 2: "Internet/VPC Gateway", 3: "Virtual Private Gateway",
              4: "Intra-region VPC", 5: "Inter-region VPC", 6: "Local Gateway",
              7: "Gateway VPC", 8: "Internet Gateway"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OCSF_LOG_TYPE = "OCSF.NetworkActivity"

S, I32, I64 = pa.string(), pa.int32(), pa.int64()
ENDPOINT = pa.struct([
    ("name", S), ("uid", S), ("ip", S), ("port", I32), ("hostname", S), ("domain", S),
    ("instance_uid", S), ("interface_uid", S), ("interface_name", S), ("vpc_uid", S),
    ("subnet_uid", S), ("svc_name", S), ("zone", S), ("mac", S), ("type", S), ("type_id", I32),
    ("intermediate_ips", pa.list_(S)),
])
CONNECTION = pa.struct([
    ("direction_id", I32), ("direction", S), ("protocol_num", I32), ("protocol_name", S),
    ("protocol_ver", S), ("protocol_ver_id", I32), ("tcp_flags", I32), ("boundary_id", I32),
    ("boundary", S), ("uid", S),
])
NAMED = pa.struct([("uid", S), ("name", S)])
FINDING_SCHEMA = pa.schema([
    ("class_uid", I32), ("class_name", S), ("category_uid", I32), ("category_name", S),
    ("activity_id", I32), ("activity_name", S), ("type_uid", I64), ("type_name", S),
    ("severity_id", I32), ("severity", S), ("status_id", I32), ("status", S),
    ("time", I64), ("start_time", I64), ("end_time", I64), ("timezone_offset", I32),
    ("count", I32), ("message", S),
    ("metadata", pa.struct([
        ("version", S), ("uid", S), ("profiles", pa.list_(S)),
        ("product", pa.struct([("name", S), ("vendor_name", S), ("version", S)])),
    ])),
    ("cloud", pa.struct([
        ("provider", S), ("region", S), ("zone", S),
        ("account", pa.struct([("uid", S), ("type", S), ("type_id", I32)])),
    ])),
    ("finding_info", pa.struct([
        ("uid", S), ("title", S), ("desc", S), ("first_seen_time", I64),
        ("last_seen_time", I64), ("src_url", S), ("types", pa.list_(S)),
        ("data_sources", pa.list_(S)),
        ("analytic", pa.struct([("uid", S), ("name", S), ("type", S), ("type_id", I32)])),
        ("attacks", pa.list_(pa.struct([
            ("tactic", NAMED), ("technique", NAMED), ("sub_technique", NAMED),
        ]))),
    ])),
    ("remediation", pa.struct([("desc", S), ("references", pa.list_(S))])),
    ("evidences", pa.list_(pa.struct([
        ("src_endpoint", ENDPOINT), ("dst_endpoint", ENDPOINT), ("connection_info", CONNECTION),
        ("data", S),
    ]))),
    ("unmapped", pa.map_(S, S)),
])
ENDPOINT_FIELDS = frozenset(ENDPOINT.field(i).name for i in range(ENDPOINT.num_fields))
CONNECTION_FIELDS = frozenset(CONNECTION.field(i).name for i in range(CONNECTION.num_fields))


def to_finding(alert: Alert) -> dict[str, Any]:
    """The OCSF 1.1.0 Detection Finding of one alert (JSON-ready, nulls left out)."""
    severity_id = SEVERITY_IDS.get(alert.severity, 0)
    flow = first_flow(alert)
    finding: dict[str, Any] = {
        "class_uid": CLASS_UID, "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID, "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE, "activity_name": "Create",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE, "type_name": "Detection Finding: Create",
        "severity_id": severity_id, "severity": SEVERITY_CAPTIONS[severity_id],
        "status_id": 1, "status": "New",
        "time": epoch_ms(alert.last_event_time),
        "start_time": epoch_ms(alert.first_event_time),
        "end_time": epoch_ms(alert.last_event_time),
        "timezone_offset": 0,
        "count": alert.event_count,
        "message": alert.title,
        "metadata": {
            "version": OCSF_VERSION, "uid": alert.id, "profiles": ["cloud"],
            "product": {"name": "flowwarden", "vendor_name": "flowwarden", "version": __version__},
        },
        "cloud": _cloud(alert, flow),
        "finding_info": _finding_info(alert),
        "remediation": _remediation(alert),
        "evidences": _evidences(alert, flow),
        "unmapped": jsonable({
            "alert_context": alert.alert_context, "dedup": alert.dedup,
            "window_start": alert.window_start, "threshold": alert.threshold,
            "unique_count": alert.unique_count, "log_types": alert.log_types,
            "destinations": alert.destinations,
        }),
    }
    return _prune(finding)


def epoch_ms(when: datetime) -> int:
    """Epoch milliseconds (OCSF ``timestamp_t``) of an aware or UTC-naive datetime."""
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return (when - EPOCH) // timedelta(milliseconds=1)


def _finding_info(alert: Alert) -> dict[str, Any]:
    return {
        "uid": alert.id,
        "title": alert.title,
        "desc": alert.description or None,
        "first_seen_time": epoch_ms(alert.first_event_time),
        "last_seen_time": epoch_ms(alert.last_event_time),
        "src_url": alert.reference or None,
        **rule_info(alert.rule_id, alert.rule_name, alert.mitre, alert.log_types),
    }


def rule_info(rule_id: str, rule_name: str, mitre: list[dict[str, str]],
              log_types: list[str]) -> dict[str, Any]:
    """The parts of ``finding_info`` that depend on the rule alone (pruned as ``_prune`` does)."""
    tactics = list(dict.fromkeys(m["tactic"] for m in mitre if m.get("tactic")))
    return _prune({
        "types": tactics or ["Network Activity"],
        "data_sources": list(log_types) or None,
        "analytic": {"uid": rule_id, "name": rule_name, "type": "Rule", "type_id": 1},
        "attacks": [a for a in (_attack(m) for m in mitre) if a] or None,
    })


def _attack(entry: Mapping[str, str]) -> dict[str, Any] | None:
    attack: dict[str, Any] = {}
    if entry.get("tactic_id"):
        attack["tactic"] = _named(entry["tactic_id"], entry.get("tactic"))
    technique = entry.get("technique_id") or ""
    if "." in technique:
        parent = technique.split(".", 1)[0]
        attack["technique"] = _named(parent, TECHNIQUES.get(parent))
        name = entry.get("technique") or ""
        attack["sub_technique"] = _named(technique, name.rpartition(": ")[2] or None)
    elif technique:
        attack["technique"] = _named(technique, entry.get("technique"))
    return attack or None


def _named(uid: str, name: str | None) -> dict[str, str]:
    return {"uid": uid, "name": name} if name else {"uid": uid}


def _remediation(alert: Alert) -> dict[str, Any] | None:
    if not alert.runbook:
        return None
    return {"desc": alert.runbook, "references": [alert.reference] if alert.reference else None}


def first_flow(alert: Alert) -> dict[str, Any]:
    """The first event's flow as OCSF pieces: src/dst endpoint, connection info, cloud."""
    sample = alert.samples[0] if alert.samples else {}
    if sample.get("p_log_type") == OCSF_LOG_TYPE or "src_endpoint" in sample:
        return _from_ocsf(sample)
    context = alert.alert_context or {}
    if sample:
        return _from_vpcflow(sample)
    return _from_vpcflow({
        "srcAddr": context.get("source_ip"), "dstAddr": context.get("destination_ip"),
        "srcPort": context.get("source_port"), "dstPort": context.get("destination_port"),
        "protocol": context.get("protocol"), "interfaceId": context.get("interface_id"),
        "vpcId": context.get("vpc_id"), "account": context.get("account_id"),
        "region": context.get("region"),
    })


def _from_vpcflow(record: Mapping[str, Any]) -> dict[str, Any]:
    direction = str(record.get("flowDirection") or "").lower()
    src = _endpoint(record.get("srcAddr"), record.get("pktSrcAddr"), record.get("srcPort"),
                    record.get("pktSrcAwsService"))
    dst = _endpoint(record.get("dstAddr"), record.get("pktDstAddr"), record.get("dstPort"),
                    record.get("pktDstAwsService"))
    eni_side = dst if direction == "ingress" else src
    for key, column in (("interface_uid", "interfaceId"), ("instance_uid", "instanceId"),
                        ("vpc_uid", "vpcId"), ("subnet_uid", "subNetId")):
        if record.get(column):
            eni_side[key] = str(record[column])
    src, dst = _identified(src), _identified(dst)
    direction_id, direction_name = DIRECTIONS.get(direction, (0, "Unknown"))
    protocol = _int(record.get("protocol"))
    path = _int(record.get("trafficPath"))
    ip_version = IP_VERSIONS.get(str(record.get("trafficType")))
    connection = {
        "direction_id": direction_id, "direction": direction_name,
        "protocol_num": protocol, "protocol_name": PROTOCOLS.get(protocol or -1),
        "protocol_ver": record.get("trafficType") if ip_version else None,
        "protocol_ver_id": ip_version, "tcp_flags": _int(record.get("tcpFlags")),
        "boundary_id": path + 3 if path in BOUNDARIES else None,
        "boundary": BOUNDARIES.get(path or -1),
    }
    return {"src_endpoint": src, "dst_endpoint": dst, "connection_info": connection,
            "region": record.get("region"), "account": record.get("account"),
            "zone": record.get("azId")}


def _endpoint(addr: Any, packet_addr: Any, port: Any, service: Any) -> dict[str, Any]:
    endpoint: dict[str, Any] = {}
    addr, packet_addr = _text(addr), _text(packet_addr)
    shown = packet_addr or addr
    if shown:
        endpoint["name"] = shown
        if _is_ip(shown):
            endpoint["ip"] = shown
        if packet_addr and addr and packet_addr != addr and _is_ip(addr):
            endpoint["intermediate_ips"] = [addr]
    port = _int(port)
    if port is not None and 0 <= port <= 65535:
        endpoint["port"] = port
    if service:
        endpoint["svc_name"] = str(service)
    return endpoint


def _identified(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The endpoint with a name or uid (the schema wants one), or empty when it has neither."""
    if not endpoint.get("name") and not endpoint.get("uid"):
        uid = endpoint.get("instance_uid") or endpoint.get("interface_uid")
        if not uid:
            return {}
        endpoint["uid"] = uid
    return endpoint


def _from_ocsf(record: Mapping[str, Any]) -> dict[str, Any]:
    flow: dict[str, Any] = {}
    for side in ("src_endpoint", "dst_endpoint"):
        raw = record.get(side) or {}
        endpoint = {k: v for k, v in raw.items() if k in ENDPOINT_FIELDS and v is not None}
        if endpoint.get("ip") is not None and not _is_ip(str(endpoint["ip"])):
            endpoint.pop("ip")
        if not endpoint.get("name") and not endpoint.get("uid") and raw.get("ip"):
            endpoint["name"] = str(raw["ip"])
        flow[side] = _identified(endpoint)
    raw_connection = record.get("connection_info") or {}
    connection = {k: v for k, v in raw_connection.items() if k in CONNECTION_FIELDS}
    connection.setdefault("direction_id", 0)
    flow["connection_info"] = connection
    cloud = record.get("cloud") or {}
    account = cloud.get("account") or {}
    flow.update(region=cloud.get("region"), zone=cloud.get("zone"),
                account=account.get("uid") or cloud.get("account_uid"))
    return flow


def _cloud(alert: Alert, flow: Mapping[str, Any]) -> dict[str, Any]:
    context = alert.alert_context or {}
    account = _text(context.get("account_id")) or _text(flow.get("account"))
    return {
        "provider": "AWS",
        "region": _text(context.get("region")) or _text(flow.get("region")),
        "zone": _text(flow.get("zone")),
        "account": {"uid": account, "type": "AWS Account", "type_id": 10} if account else None,
    }


def _evidences(alert: Alert, flow: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    evidence = {key: flow.get(key) for key in ("src_endpoint", "dst_endpoint", "connection_info")}
    evidence = {k: v for k, v in evidence.items() if v}
    if not evidence.get("src_endpoint") and not evidence.get("dst_endpoint"):
        evidence = {"data": json.dumps(jsonable(alert.alert_context), sort_keys=True)} \
            if alert.alert_context else {}
    return [evidence] if evidence else None


def _prune(value: Any) -> Any:
    """Drop nulls and empty containers, recursively (OCSF leaves absent attributes out)."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "", "-") else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def finding_json(alert: Alert) -> str:
    return finding_text(to_finding(alert))


def finding_text(finding: Mapping[str, Any]) -> str:
    """A finding as its JSON line holds it (``finding_json``)."""
    return json.dumps(finding, sort_keys=True, ensure_ascii=False)


@runtime_checkable
class PreparedFindings(Protocol):
    """Alerts whose findings were made where the alerts were made (a Spark scan's executors,
    in parallel, asked for them): written as they are, not made again here one by one."""

    def finding_lines(self) -> Iterator[bytes]:
        """Every alert's ``finding_json`` and a newline, UTF-8, in order, in chunks."""
        ...

    def finding_tables(self) -> Iterator[pa.Table]:
        """Every alert's finding, in order, as ``securitylake.lake_table`` rows, in chunks."""
        ...


def write_prepared_parquet(alerts: PreparedFindings, out: Any) -> int:
    """``write_ocsf_parquet`` of prepared findings: a row group per chunk."""
    count = 0
    with pq.ParquetWriter(out, FINDING_SCHEMA, compression="zstd") as writer:
        for table in alerts.finding_tables():
            writer.write_table(table.select(FINDING_SCHEMA.names).cast(FINDING_SCHEMA))
            count += table.num_rows
        if not count:
            writer.write_table(findings_table([]))
    return count


def write_ocsf_jsonl(alerts: Iterable[Alert], out: IO[str]) -> int:
    """One finding per line; returns the number written."""
    return write_lines(alerts, out, finding_json)


def findings_table(findings: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Findings as an Arrow table of ``FINDING_SCHEMA`` (``unmapped`` as a string map)."""
    rows = []
    for finding in findings:
        row = dict(finding)
        row["unmapped"] = [
            (k, v if isinstance(v, str) else json.dumps(v, sort_keys=True))
            for k, v in (finding.get("unmapped") or {}).items()
        ]
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=FINDING_SCHEMA)


def write_ocsf_parquet(alerts: Iterable[Alert], where: str | os.PathLike[str] | Any,
                       chunk: int = 8192) -> int:
    """Write the alerts' findings as one Parquet file, a row group per ``chunk`` alerts (never
    all findings in memory at once); returns the number written."""
    if isinstance(where, str | os.PathLike):
        with atomic_writer(where) as out:
            return write_ocsf_parquet(alerts, out, chunk)
    count = 0
    with pq.ParquetWriter(where, FINDING_SCHEMA, compression="zstd") as writer:
        findings: list[dict[str, Any]] = []
        for alert in alerts:
            findings.append(to_finding(alert))
            if len(findings) == chunk:
                writer.write_table(findings_table(findings))
                count, findings = count + len(findings), []
        if findings or not count:
            writer.write_table(findings_table(findings))
            count += len(findings)
    return count
