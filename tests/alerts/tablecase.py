"""Scans whose alerts stay in DuckDB (``groupstore.AlertTable``), for the table sinks' tests:
generated flows with awkward strings in some records, the default pack plus a rule whose
titles, dedup strings and alert contexts hold unicode, quotes, backslashes, control
characters, nested dicts and None."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from flowwarden.engine.scan import Scanner
from flowwarden.logs import ReadOptions, read
from flowwarden.rules.loader import load_pack, resolve_pack_paths
from tests.conftest import SAMPLES
from tests.flowgen.generate import generate_flows, write_parquet, write_text

# Values put in some records' interface ids (so in samples, contexts and titles).
AWKWARD = ["é\"q\\b\x01\x1f", "日本\u2028\t\n", "plain", "\\u00e9 not an escape", "🙂\x7f"]
ODD_RULE_PY = '''
def rule(event):
    return event.udm("destination_port") in (22, 53, 443, 3389)


def title(event):
    return "odd " + str(event.get("interfaceId")) + " \\\\ \\"q\\" ü"


def dedup(event):
    return str(event.get("interfaceId")) + "|" + str(event.get("dstPort"))


def alert_context(event):
    return {"iface": event.get("interfaceId"), "nested": {"none": None, "list": [1, None, "ß"],
            "deep": {"ctl": "\\x00\\x1f", "quote": '"'}}, "none": None, "port": event.get("dstPort"),
            "float": 0.1, "empty": {}, "empty_list": []}
'''
ODD_RULE_YML = """AnalysisType: rule
Filename: odd.py
RuleID: Test.Odd
Enabled: true
Severity: High
LogTypes: [AWS.VPCFlow, OCSF.NetworkActivity]
DedupPeriodMinutes: 15
Reports:
  MITRE ATT&CK: ["TA0011:T1071.004", "TA0007:T1046"]
Runbook: "check ü"
Reference: https://example.com/ü
"""


# OCSF events only, one alert per event; a flat context with nulls and empty values.
PLAIN_RULE_PY = '''
def rule(event):
    return event.udm("destination_port") == 22


def dedup(event):
    return str(event.get("time"))


def alert_context(event):
    context = {"a": None, "b": "x\\"\\\\", "c": [], "d": {}, "e": 5, "f": True,
               "region": "r/x 1"}
    if len(str(event.udm("source_ip") or "")) % 2:
        context["g"] = "ü"
    return context
'''
PLAIN_RULE_YML = """AnalysisType: rule
Filename: plain.py
RuleID: Test.Plain
Enabled: true
Severity: Info
LogTypes: [OCSF.NetworkActivity]
"""


def odd_pack(folder: Path) -> Any:
    """The default pack, ``Test.Odd`` and ``Test.Plain``."""
    rules = folder / "odd-rules"
    rules.mkdir(exist_ok=True)
    (rules / "odd.py").write_text(ODD_RULE_PY)
    (rules / "odd.yml").write_text(ODD_RULE_YML)
    (rules / "plain.py").write_text(PLAIN_RULE_PY)
    (rules / "plain.yml").write_text(PLAIN_RULE_YML)
    return load_pack([*resolve_pack_paths([]), rules])


def flows_file(folder: Path, records: int = 3000, parquet: bool = True,
               awkward: bool = True) -> Path:
    """Generated flows, every 7th record's interface id one of ``AWKWARD`` (if ``awkward``)."""
    batches = []
    for batch in generate_flows(records, seed=7):
        if not awkward:
            batches.append(batch)
            continue
        ids = batch.column("interfaceId").to_pylist()
        ids = [AWKWARD[i % len(AWKWARD)] if i % 7 == 0 else v for i, v in enumerate(ids)]
        at = batch.schema.get_field_index("interfaceId")
        batches.append(batch.set_column(at, "interfaceId", pa.array(ids, pa.string())))
    stem = f"flows-{records}{'' if awkward else '-plain'}"
    if parquet:
        path = folder / f"{stem}.parquet"
        write_parquet(batches, str(path))
    else:
        path = folder / f"{stem}.log.gz"
        write_text(batches, str(path))
    return path


# OCSF endpoints, connections and clouds of every shape ``ocsf._from_ocsf`` tells apart.
OCSF_VARIANTS: list[dict[str, Any]] = [
    {"src_endpoint": {"name": "", "uid": "", "instance_uid": "i-1", "port": 40000}},
    {"src_endpoint": {"ip": "not-an-ip", "port": 40001, "hostname": "hôte\"\\"}},
    {"src_endpoint": {"ip": "fe80::1%eth0", "intermediate_ips": ["10.0.0.1", "10.0.0.2"]}},
    {"src_endpoint": {"ip": "1.2.3.04", "svc_name": "S3", "mac": "00:11"}},
    {"src_endpoint": {"ip": "2001:db8::1", "type": "x", "type_id": 3, "zone": "z"}},
    {"src_endpoint": {}, "dst_endpoint": {"port": 22}},
    {"src_endpoint": {"interface_name": "eth0", "domain": "d"}, "dst_endpoint": {"port": 22}},
    {"cloud": {"provider": "AWS", "account_uid": "210987654321", "region": "eu-west-1",
               "zone": "euw1-az1"}},
    {"cloud": {"provider": "AWS", "account": {"uid": ""}, "account_uid": "999"}},
    {"cloud": {"provider": "AWS", "region": "-"}},
    {"connection_info": {"boundary": "x", "boundary_id": 11, "direction": "Inbound",
                         "direction_id": 1, "protocol_ver_id": 4, "tcp_flags": 2, "uid": "c"}},
    {"connection_info": {"protocol_name": "tcp"}},
]


def ocsf_file(folder: Path) -> Path:
    """The OCSF sample lines, then each with every ``OCSF_VARIANTS`` change (port 22)."""
    sample = SAMPLES / "ocsf" / "vpcflow_ocsf_1.1.0.jsonl"
    lines = sample.read_text().splitlines()
    base = json.loads(lines[0])
    for at, change in enumerate(OCSF_VARIANTS):
        record = {**base, **change, "time": base["time"] + 3_660_000 * (at + 1)}
        record["dst_endpoint"] = {"ip": "172.31.16.21", "port": 22, **change.get("dst_endpoint", {})}
        lines.append(json.dumps(record))
    path = folder / "ocsf.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def scan(pack: Any, path: Path | str, engine: str = "duckdb", max_samples: int = 3) -> Any:
    """A scan's alerts (an ``AlertTable``)."""
    scanner = Scanner(pack, pack.active_rules(), engine, max_samples=max_samples)
    return scanner.scan(read([str(path)], ReadOptions())).alerts
