from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from flowwarden.alerts.grouping import window_start
from flowwarden.engine.scan import Scanner

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Item:
    def __init__(self, rows, log_type="AWS.VPCFlow", source="mem"):
        self.batch = pa.RecordBatch.from_pylist(rows)
        self.log_type = log_type
        self.source = source


def flow(minute, src="45.33.32.156", dst="10.0.0.8", port=8081, sport=40000):
    return {"srcAddr": src, "dstAddr": dst, "srcPort": sport, "dstPort": port,
            "p_log_type": "AWS.VPCFlow", "p_event_time": T0 + timedelta(minutes=minute)}


def scan(pack, rows, rule_ids, engine="python"):
    scanner = Scanner(pack, pack.active_rules(rule_ids), engine)
    return scanner.scan([Item(rows)])


def test_window_start_is_aligned_to_the_epoch():
    assert window_start(datetime(2024, 5, 1, 12, 59, tzinfo=UTC), 60) == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert window_start(datetime(2024, 5, 1, 12, 7, tzinfo=UTC), 15) == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_matches_with_one_dedup_string_in_one_window_are_one_alert(default_pack):
    rows = [flow(m, port=22) for m in (1, 5, 30)] + [flow(70, port=22)]
    result = scan(default_pack, rows, ["AWS.VPC.InboundAdminPort"])
    assert [a.event_count for a in result.alerts] == [3, 1]
    first = result.alerts[0]
    assert first.first_event_time == T0 + timedelta(minutes=1)
    assert first.last_event_time == T0 + timedelta(minutes=30)
    assert first.dedup == "45.33.32.156->10.0.0.8:22"
    assert first.mitre[0] == {"tactic_id": "TA0001", "tactic": "Initial Access",
                              "technique_id": "T1133", "technique": "External Remote Services"}
    assert len(first.samples) == 3


def test_unique_threshold_needs_ten_distinct_ports(default_pack):
    nine = [flow(m, port=8000 + m) for m in range(9)] + [flow(20, port=8000)]
    assert scan(default_pack, nine, ["AWS.VPC.PortScan"]).alerts == []
    ten = nine + [flow(21, port=9999)]
    alerts = scan(default_pack, ten, ["AWS.VPC.PortScan"]).alerts
    assert len(alerts) == 1
    assert alerts[0].unique_count == 10 and alerts[0].event_count == 11


def test_alert_ids_are_stable_and_order_independent(default_pack):
    rows = [flow(m, port=22, src=f"45.33.32.{m}") for m in range(1, 6)]
    one = [a.id for a in scan(default_pack, rows, ["AWS.VPC.InboundAdminPort"]).alerts]
    two = [a.id for a in scan(default_pack, rows[::-1], ["AWS.VPC.InboundAdminPort"]).alerts]
    assert one == two and len(set(one)) == 5


def test_alert_context_carries_flow_fields(default_pack):
    row = {**flow(1, port=22), "protocol": 6, "action": "REJECT", "account": "123456789012",
           "interfaceId": "eni-1", "bytes": 40, "packets": 1, "status": "OK"}
    alert = scan(default_pack, [row], ["AWS.VPC.InboundAdminPort"]).alerts[0]
    context = alert.alert_context
    assert context["source_ip"] == "45.33.32.156" and context["destination_port"] == 22
    assert context["action"] == "REJECT" and context["account_id"] == "123456789012"
    assert context["interface_id"] == "eni-1" and context["log_status"] == "OK"
    assert "eventName" not in context


def test_a_rule_that_raises_is_an_error_result_not_a_crash(default_pack):
    rows = [flow(1, port=22, src="not-an-ip"), flow(2, port=22)]
    result = scan(default_pack, rows, ["AWS.VPC.InboundAdminPort"])
    assert result.error_counts[("AWS.VPC.InboundAdminPort", "rule")] == 1
    assert "ValueError" in result.errors[0].error and result.errors[0].position == 0
    assert len(result.alerts) == 1


def test_rules_only_run_on_their_log_types(default_pack):
    scanner = Scanner(default_pack, default_pack.active_rules(["AWS.VPC.InboundAdminPort"]), "python")
    result = scanner.scan([Item([flow(1, port=22)], log_type="Other.Log")])
    assert result.alerts == [] and result.records == 1
