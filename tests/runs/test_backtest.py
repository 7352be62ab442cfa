from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from flowwarden.cli.backtest_view import render_backtest
from flowwarden.runs.backtest import load_sides, run_backtest
from tests.flowgen.generate import generate_flows, write_text
from tests.runs.test_checkpoint import T0, flow_line, write_flows


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """Admin-port probes: two sources, two days, three windows."""
    root = tmp_path_factory.mktemp("crafted")
    write_flows(root / "a.log", [
        flow_line(1), flow_line(2), flow_line(3),               # one alert, 3 events
        flow_line(70),                                            # next window: a second alert
        flow_line(5, src="45.33.32.157"),                        # another source
        flow_line(60 * 24, src="45.33.32.157", dport=3389),      # the next day
        flow_line(4, dport=443),                                  # no match
    ])
    return root


def test_counts_per_rule(default_pack, crafted):
    report = run_backtest([str(crafted)], [("default", default_pack)], engine="python",
                          rule_ids=["AWS.VPC.InboundAdminPort", "AWS.VPC.PortScan"])
    assert (report.records, report.dates) == (7, 2)
    assert report.days == pytest.approx((timedelta(days=1) - timedelta(minutes=1)) / timedelta(days=1))
    assert report.first_event == T0 + timedelta(minutes=1)
    assert report.last_event == T0 + timedelta(days=1)
    (side,) = report.sides
    admin = side.rules["AWS.VPC.InboundAdminPort"]
    assert (admin.matched_events, admin.alerts, admin.alerts_per_day) == (6, 4, 4.0)
    assert admin.first_alert == T0 + timedelta(minutes=1)
    assert admin.last_alert == T0 + timedelta(days=1)
    assert admin.by_day == {"2024-05-01": 3, "2024-05-02": 1}
    top = [(d.dedup, d.alerts, d.events) for d in admin.top_dedup]
    assert top[0] == ("45.33.32.156->10.0.0.8:22", 2, 4)
    assert len(top) == 3
    scan = side.rules["AWS.VPC.PortScan"]
    assert (scan.alerts, scan.first_alert, scan.top_dedup) == (0, None, [])


def test_two_configurations_side_by_side(default_pack, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_text(generate_flows(3000, seed=8, duration=timedelta(hours=6)), str(data / "f.log.gz"))
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text("allowed_inbound_ports: [80, 443, 25, 445, 8080]\n"
                     "disable: [AWS.VPC.SkipDataLogStatus]\n")
    sides = load_sides([], [str(tuned)])
    report = run_backtest([str(data)], [("default", default_pack), *sides], engine="python")
    default, tuned_side = report.sides
    assert tuned_side.name == str(tuned)
    assert "AWS.VPC.SkipDataLogStatus" in default.rules
    assert "AWS.VPC.SkipDataLogStatus" not in tuned_side.rules
    rule = "AWS.VPC.InboundPortWhitelist"
    assert tuned_side.rules[rule].matched_events < default.rules[rule].matched_events
    assert tuned_side.rules["AWS.VPC.PortScan"] == default.rules["AWS.VPC.PortScan"]
    text = render_backtest(report)
    assert f"side A: default\nside B: {tuned}" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("rule "))
    assert header.split() == ["rule", "side", "severity", "events", "alerts", "alerts/day",
                              "errors"]
    # one row per rule and side: the rule's name on its first row only
    skip = lines.index(next(line for line in lines if line.startswith("AWS.VPC.SkipDataLogStatus ")))
    assert lines[skip].split()[1] == "A" and lines[skip + 1].split() == ["B", "Info", "off"]
    assert max(len(line) for line in lines) <= 100
    assert "alerts/day: extrapolated from the 6 hours" in text
    rows = list(csv.DictReader(io.StringIO(render_backtest(report, "csv"))))
    assert [(r["side"], r["config"]) for r in rows if r["rule_id"] == rule] == [
        ("A", "default"), ("B", str(tuned))]
    assert all(r["extrapolated"] == "true" for r in rows)
    assert int(rows[0]["alerts"]) == default.rules[rows[0]["rule_id"]].alerts
    parsed = json.loads(render_backtest(report, "json"))
    assert [s["name"] for s in parsed["sides"]] == ["default", str(tuned)]
    assert parsed["records"] == 3000
    assert parsed["sides"][0]["rules"][rule]["alerts"] == default.rules[rule].alerts


def test_a_short_sample_gives_its_rate_per_day(default_pack, tmp_path):
    write_flows(tmp_path / "a.log", [flow_line(0), flow_line(120, src="45.33.32.157")])
    report = run_backtest([str(tmp_path)], [("default", default_pack)], engine="python",
                          rule_ids=["AWS.VPC.InboundAdminPort"])
    assert report.days == pytest.approx(2 / 24)
    assert report.sides[0].rules["AWS.VPC.InboundAdminPort"].alerts_per_day == 24.0
    assert "alerts/day: extrapolated from the 2 hours the events span" in render_backtest(report)


def test_a_sample_under_an_hour_says_what_its_rate_comes_from(default_pack, tmp_path):
    write_flows(tmp_path / "a.log", [flow_line(0), flow_line(10, src="45.33.32.157")])
    report = run_backtest([str(tmp_path)], [("default", default_pack)], engine="python",
                          rule_ids=["AWS.VPC.InboundAdminPort"])
    assert report.sides[0].rules["AWS.VPC.InboundAdminPort"].alerts_per_day == 48.0
    assert ("alerts/day: extrapolated from 1 hour (the events span 10 minutes; shorter spans "
            "count as 1 hour)") in render_backtest(report)


def test_text_report_of_one_side(default_pack, crafted):
    report = run_backtest([str(crafted)], [("default", default_pack)], engine="python",
                          rule_ids=["AWS.VPC.InboundAdminPort"])
    text = render_backtest(report)
    assert text.startswith("backtest: 7 records (0 rejected), events 2024-05-01 12:01 .. "
                           "2024-05-02 12:00 UTC (2 dates)\n"
                           "alerts/day: extrapolated from the 23 hours 59 minutes the events span")
    assert "side A" not in text and " side " not in text
    assert ("AWS.VPC.InboundAdminPort\n"
            "  alerts 2024-05-01 12:01 .. 2024-05-02 12:00; top dedup keys:\n"
            "         2 alerts         4 events  45.33.32.156->10.0.0.8:22") in text
    assert all(line == line.rstrip() and len(line) <= 100 for line in text.splitlines())


def test_long_dedup_keys_and_rule_ids_stay_within_100_columns(default_pack, crafted):
    report = run_backtest([str(crafted)], [("default", default_pack)], engine="python",
                          rule_ids=["AWS.VPC.InboundAdminPort"])
    stats = report.sides[0].rules.pop("AWS.VPC.InboundAdminPort")
    long_id = "Custom." + "VeryLongRuleName" * 8
    stats.top_dedup[0].dedup = "x" * 300
    report.sides[0].rules[long_id] = stats
    text = render_backtest(report)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "x" * 50 in text and "x" * 300 not in text  # cropped; JSON keeps it whole
    assert "x" * 300 in render_backtest(report, "json")


def test_a_backtest_writes_nothing(default_pack, crafted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_backtest([str(crafted)], [("default", default_pack)], engine="python")
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_and_empty_data(default_pack, tmp_path):
    report = run_backtest([str(tmp_path)], [("default", default_pack)], engine="python")
    assert report.records == 0 and report.days == 0 and report.dates == 0
    assert "no events" in render_backtest(report)
    with pytest.raises(ValueError, match="unknown format"):
        render_backtest(report, "xml")
