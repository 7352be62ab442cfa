from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flowwarden.errors import UsageError
from flowwarden.pages import build_report
from flowwarden.pages.report_data import load_report_data
from tests.pages.store_fixture import (
    EXPECTED_BUCKET_ALERTS,
    SCRIPT_CLOSE,
    XSS_ATTR,
    XSS_IMG,
    XSS_TITLE,
    make_store,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "alerts.duckdb")


@pytest.fixture(scope="module")
def report_html(store: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = build_report(store, tmp_path_factory.mktemp("report") / "sub" / "report.html")
    assert out.name == "report.html"
    return out.read_text(encoding="utf-8")


def test_data_counts(store: Path):
    data = load_report_data(store)
    assert len(data.alerts) == 5
    assert {k: dict(v) for k, v in data.by_rule_severity().items()} == {
        "AWS.VPC.InboundPortWhitelist": {"High": 3},
        "AWS.VPC.PortScan": {"Medium": 1},
        "AWS.VPC.UnapprovedOutboundDNS": {"Medium": 1},
    }
    width, buckets = data.buckets()
    assert width.total_seconds() == 3600
    assert tuple(b.alerts for b in buckets) == EXPECTED_BUCKET_ALERTS
    assert buckets[0].events == 7
    assert data.file_totals() == {"read": 110, "parsed": 107, "rejected": 3}


def test_top_endpoints_are_weighted_by_events(store: Path):
    tops = load_report_data(store).top_endpoints("AWS.VPC.InboundPortWhitelist")
    assert tops["source_ip"] == [("52.1.2.3", 7, 2), ("198.51.100.7", 1, 1)]
    assert tops["destination_port"] == [("22", 6, 2), ("3389", 2, 1)]


def test_report_sections(report_html: str):
    for section in ("summary", "rules", "timeline", "endpoints", "inputs", "alerts"):
        assert f'id="{section}"' in report_html
    assert report_html.count('class="bar"') == len(EXPECTED_BUCKET_ALERTS)
    assert report_html.count('<article class="alert"') == 5
    assert '<code>flows-ok.log.gz</code>' in report_html
    assert "line 5: too few fields" in report_html


def test_report_is_self_contained(report_html: str):
    loads = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]*)"', report_html)
    assert loads == ["data:,"]  # the empty favicon
    assert "http://" not in report_html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in report_html


def test_every_log_derived_string_is_escaped(report_html: str):
    for payload in (XSS_TITLE, XSS_IMG, XSS_ATTR, SCRIPT_CLOSE):
        assert payload not in report_html
    assert "&lt;script&gt;window.__xss_title = 1&lt;/script&gt;" in report_html  # alert title
    assert "bad&lt;img src=x onerror=&quot;window.__xss_img=1&quot;&gt;.log" in report_html
    assert "&quot; onerror=&quot;window.__xss_attr=1&quot; x=&quot;" in report_html  # rule name
    # The only script elements are the report's own.
    assert report_html.count("<script") == 2


def test_json_in_script_cannot_close_the_element(report_html: str):
    match = re.search(r'<script type="application/json" id="alert-index">(.*?)</script>',
                      report_html, re.S)
    assert match is not None
    assert "<" not in match.group(1)
    index = json.loads(match.group(1))
    assert index[0]["title"] == XSS_TITLE


def test_missing_or_wrong_store_is_a_usage_error(tmp_path: Path):
    with pytest.raises(UsageError, match="alert store not found"):
        build_report(tmp_path / "nope.duckdb", tmp_path / "r.html")
    other = tmp_path / "other.duckdb"
    import duckdb

    duckdb.connect(str(other)).close()
    with pytest.raises(UsageError, match="no alerts table"):
        build_report(other, tmp_path / "r.html")


def test_empty_store_renders(tmp_path: Path):
    from flowwarden.alerts.store import AlertStore

    AlertStore(tmp_path / "empty.duckdb").close()
    html = build_report(tmp_path / "empty.duckdb", tmp_path / "r.html").read_text()
    assert "No alerts." in html
    assert 'class="bar"' not in html
