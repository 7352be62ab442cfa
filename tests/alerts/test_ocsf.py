from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from flowwarden.alerts.delivery import OutputSpec, deliver
from flowwarden.alerts.formats.ocsf import (
    FINDING_SCHEMA,
    findings_table,
    to_finding,
    write_ocsf_jsonl,
    write_ocsf_parquet,
)
from flowwarden.engine.scan import Scanner
from flowwarden.logs import ReadOptions, read
from tests.alerts.ocsf_jsonschema import validate
from tests.conftest import SAMPLES
from tests.flowgen.generate import generate_flows, write_text

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Item:
    def __init__(self, rows, log_type="AWS.VPCFlow", source="mem"):
        self.batch = pa.RecordBatch.from_pylist(rows)
        self.log_type, self.source = log_type, source


def flow(minute, **extra):
    row = {"srcAddr": "45.33.32.156", "dstAddr": "10.0.0.8", "srcPort": 40000, "dstPort": 22,
           "protocol": 6, "action": "ACCEPT", "status": "OK", "account": "123456789012",
           "region": "eu-west-1", "interfaceId": "eni-1", "vpcId": "vpc-9",
           "flowDirection": "ingress", "trafficPath": 8, "trafficType": "IPv4", "pktSrcAddr": None,
           "p_log_type": "AWS.VPCFlow", "p_event_time": T0 + timedelta(minutes=minute)}
    row.update(extra)
    return row


def alerts_of(pack, rows, rule_ids=(), log_type="AWS.VPCFlow"):
    scanner = Scanner(pack, pack.active_rules(rule_ids), "python")
    return scanner.scan([Item(rows, log_type)]).alerts


@pytest.fixture(scope="module")
def ssh_finding(default_pack):
    rows = [flow(5), flow(1, pktSrcAddr="198.51.100.7", srcPort=40001), flow(30)]
    (alert,) = alerts_of(default_pack, rows, ["AWS.VPC.SSHAcceptedFromInternet"])
    return alert, to_finding(alert)


def test_a_finding_carries_the_alert(ssh_finding):
    alert, finding = ssh_finding
    assert validate(finding) == []
    assert (finding["class_uid"], finding["category_uid"], finding["type_uid"]) == (2004, 2, 200401)
    assert finding["activity_id"] == 1 and finding["metadata"]["version"] == "1.1.0"
    assert finding["metadata"]["product"]["name"] == "flowwarden"
    assert (finding["severity_id"], finding["severity"]) == (5, "Critical")
    assert finding["count"] == 3 and finding["status_id"] == 1
    info = finding["finding_info"]
    assert info["uid"] == alert.id and info["title"] == alert.title
    assert info["first_seen_time"] == int((T0 + timedelta(minutes=1)).timestamp() * 1000)
    assert info["last_seen_time"] == finding["time"] == int((T0 + timedelta(minutes=30)).timestamp() * 1000)
    assert info["analytic"] == {"uid": "AWS.VPC.SSHAcceptedFromInternet", "type": "Rule", "type_id": 1,
                                "name": "VPC Flow Logs SSH Accepted from the Internet"}
    assert info["attacks"] == [
        {"tactic": {"uid": "TA0001", "name": "Initial Access"},
         "technique": {"uid": "T1133", "name": "External Remote Services"}},
        {"tactic": {"uid": "TA0008", "name": "Lateral Movement"},
         "technique": {"uid": "T1021", "name": "Remote Services"},
         "sub_technique": {"uid": "T1021.004", "name": "SSH"}},
    ]
    assert info["types"] == ["Initial Access", "Lateral Movement"]
    assert finding["cloud"] == {"provider": "AWS", "region": "eu-west-1",
                                "account": {"uid": "123456789012", "type": "AWS Account", "type_id": 10}}
    assert finding["unmapped"]["alert_context"]["destination_port"] == 22
    assert finding["unmapped"]["dedup"] == alert.dedup


def test_evidence_is_the_first_event_mapped_like_aws_does(ssh_finding):
    _, finding = ssh_finding
    (evidence,) = finding["evidences"]
    # The first event (minute 1) went through NAT: the packet address is the endpoint's ip.
    assert evidence["src_endpoint"] == {"name": "198.51.100.7", "ip": "198.51.100.7", "port": 40001,
                                        "intermediate_ips": ["45.33.32.156"]}
    assert evidence["dst_endpoint"] == {"name": "10.0.0.8", "ip": "10.0.0.8", "port": 22,
                                        "interface_uid": "eni-1", "vpc_uid": "vpc-9"}
    assert evidence["connection_info"] == {
        "direction_id": 1, "direction": "Inbound", "protocol_num": 6, "protocol_name": "tcp",
        "protocol_ver": "IPv4", "protocol_ver_id": 4, "boundary_id": 11, "boundary": "Internet Gateway"}


def test_severities_map_to_ocsf_ids(default_pack):
    rows = [flow(1, status="SKIPDATA", srcAddr=None, dstAddr=None, srcPort=None, dstPort=None,
                 flowDirection="egress")]
    (alert,) = alerts_of(default_pack, rows, ["AWS.VPC.SkipDataLogStatus"])
    finding = to_finding(alert)
    assert (finding["severity_id"], finding["severity"]) == (1, "Informational")
    assert finding["evidences"][0]["src_endpoint"] == {"uid": "eni-1", "interface_uid": "eni-1",
                                                       "vpc_uid": "vpc-9"}
    assert validate(finding) == []
    (scan,) = alerts_of(default_pack, [flow(m, dstPort=7000 + m) for m in range(10)],
                        ["AWS.VPC.PortScan"])
    assert to_finding(scan)["severity_id"] == 3


def test_a_bad_address_is_a_name_not_an_ip(default_pack):
    rows = [flow(1, srcAddr="not-an-ip"), flow(2)]
    alerts = alerts_of(default_pack, rows, ["AWS.VPC.InboundAdminPort"])
    for alert in alerts:
        alert.samples = [{**flow(1, srcAddr="not-an-ip")}]
        finding = to_finding(alert)
        assert finding["evidences"][0]["src_endpoint"]["name"] == "not-an-ip"
        assert "ip" not in finding["evidences"][0]["src_endpoint"]
        assert validate(finding) == []


def test_without_samples_the_alert_context_gives_the_evidence(default_pack):
    (alert,) = alerts_of(default_pack, [flow(1)], ["AWS.VPC.InboundAdminPort"])
    alert.samples = []
    finding = to_finding(alert)
    assert finding["evidences"][0]["dst_endpoint"]["port"] == 22
    assert validate(finding) == []


def test_ocsf_input_gives_valid_findings(default_pack):
    reader = read([str(SAMPLES / "ocsf" / "vpcflow_ocsf_1.1.0.jsonl")], ReadOptions())
    scanner = Scanner(default_pack, default_pack.active_rules(), "python")
    alerts = scanner.scan(reader).alerts
    assert alerts
    for alert in alerts:
        finding = to_finding(alert)
        assert validate(finding) == [], finding
        assert finding["cloud"]["account"]["uid"] in ("123456789010", "123456789012")
        assert finding["evidences"][0]["src_endpoint"]


def test_every_finding_over_generated_flows_is_valid(default_pack, tmp_path):
    write_text(generate_flows(4000, seed=11), str(tmp_path / "flows.log.gz"))
    scanner = Scanner(default_pack, default_pack.active_rules(), "python")
    alerts = scanner.scan(read([str(tmp_path)])).alerts
    assert len({a.rule_id for a in alerts}) >= 3
    for alert in alerts:
        assert validate(to_finding(alert)) == []


def test_jsonl_and_parquet_writers(ssh_finding, tmp_path):
    alert, finding = ssh_finding
    out = io.StringIO()
    assert write_ocsf_jsonl([alert, alert], out) == 2
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [finding, finding]
    path = tmp_path / "findings.jsonl"
    deliver([alert], OutputSpec("ocsf", output=str(path)), "findings")
    assert json.loads(path.read_text()) == finding
    assert not list(tmp_path.glob(".*.tmp"))
    parquet = tmp_path / "findings.parquet"
    assert write_ocsf_parquet([alert], parquet) == 1
    row = duckdb.connect().execute(
        f"SELECT finding_info.uid, severity_id, evidences[1].src_endpoint.ip, "
        f"unmapped['dedup'], cloud.account.uid FROM '{parquet}'").fetchone()
    assert row == (alert.id, 5, "198.51.100.7", alert.dedup, "123456789012")


def test_findings_table_has_the_fixed_schema(ssh_finding):
    _, finding = ssh_finding
    table = findings_table([finding])
    assert table.schema == FINDING_SCHEMA
    assert findings_table([]).num_rows == 0
