"""The catalog and the report opened in headless Chromium: what a person would see."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flowwarden.pages import build_catalog, build_report
from tests.pages.browser import console_errors, keep, screenshot
from tests.pages.store_fixture import EXPECTED_BUCKET_ALERTS, XSS_TITLE, make_store

CSS = "css selector"


@pytest.fixture(scope="module")
def site(default_pack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_catalog(default_pack, tmp_path_factory.mktemp("site"))


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@pytest.fixture(scope="module")
def served_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The report served by a localhost http.server, as a user sharing it would; it embeds the
    first 2 alerts of each rule, so one rule (3 alerts) has one left in the store."""
    root = tmp_path_factory.mktemp("served")
    build_report(make_store(root / "alerts.duckdb"), root / "report.html", limit=2)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/report.html"
    finally:
        server.shutdown()
        server.server_close()


def _visible_rule_ids(driver: Any) -> list[str]:
    rows = driver.find_elements(CSS, "#rule-index tbody tr")
    return [r.get_attribute("data-rule-id") for r in rows if r.is_displayed()]


def _choose(driver: Any, facet: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(CSS, f'select[data-facet="{facet}"]')).select_by_value(value)


def test_catalog_index_search_and_filters(browser: Any, site: Path, tmp_path: Path):
    browser.get(site.as_uri())
    assert len(_visible_rule_ids(browser)) == 8
    assert browser.find_element(CSS, "#rule-count").text == "8 of 8 rules"
    search = browser.find_element(CSS, "#rule-search")
    search.send_keys("dns")
    assert _visible_rule_ids(browser) == ["AWS.VPC.UnapprovedOutboundDNS"]
    assert browser.find_element(CSS, "#rule-count").text == "1 of 8 rules"
    search.clear()
    search.send_keys(" ")  # clear() fires no input event; a blank query shows everything
    assert len(_visible_rule_ids(browser)) == 8
    _choose(browser, "severity", "High")
    assert _visible_rule_ids(browser) == ["AWS.VPC.InboundAdminPort",
                                          "AWS.VPC.InboundPortWhitelist"]
    _choose(browser, "tactic", "Initial Access")
    assert _visible_rule_ids(browser) == ["AWS.VPC.InboundAdminPort"]
    _choose(browser, "severity", "")
    _choose(browser, "log-type", "OCSF.NetworkActivity")
    assert _visible_rule_ids(browser) == ["AWS.VPC.InboundAdminPort",
                                          "AWS.VPC.SSHAcceptedFromInternet"]
    assert console_errors(browser) == []
    _choose(browser, "log-type", "")
    _choose(browser, "tactic", "")
    assert len(_visible_rule_ids(browser)) == 8
    screenshot(browser, tmp_path, "catalog-index")


def test_catalog_rule_page_shows_conditions(browser: Any, site: Path, tmp_path: Path):
    browser.get((site.parent / "rules" / "AWS.VPC.UnapprovedOutboundDNS.html").as_uri())
    conditions = [e.text.splitlines()[0] for e in browser.find_elements(CSS, "li.condition")]
    assert conditions == [
        "not (destination_port ne 53 and destination_port ne 5353)",
        'not is_global(source_ip or "0.0.0.0/32")',
        'not is_private(destination_ip or "192.168.0.1/32")',
        "destination_ip is_not_null",
        'destination_ip not in ["1.1.1.1", "8.8.8.8"]',
    ]
    # The stylesheet is a local file and it applied: the severity badge is coloured.
    badge = browser.find_element(CSS, ".sev-medium")
    assert badge.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
    assert console_errors(browser) == []
    screenshot(browser, tmp_path, "catalog-rule-dns")


def test_catalog_attack_matrix(browser: Any, site: Path, tmp_path: Path):
    browser.get((site.parent / "attack.html").as_uri())
    assert len(browser.find_elements(CSS, "#attack-matrix thead th")) == 14
    c2 = browser.find_element(CSS, 'td[data-tactic="TA0011"]')
    assert {e.get_attribute("data-technique") for e in c2.find_elements(CSS, ".technique")} == {
        "T1071", "T1090.003", "T1571"}  # T1090.003: AWS.VPC.TorTraffic
    c2.find_element(CSS, 'a[href="rules/AWS.VPC.InboundPortWhitelist.html"]').click()
    assert browser.find_element(CSS, "h1").text == "VPC Flow Logs Inbound Port Allowlist"
    browser.back()
    screenshot(browser, tmp_path, "catalog-attack")


def test_report_in_the_browser(browser: Any, served_report: str, tmp_path: Path):
    browser.get(served_report)
    bars = browser.find_elements(CSS, "#alerts-over-time rect.bar")
    assert [int(b.get_attribute("data-value")) for b in bars] == list(EXPECTED_BUCKET_ALERTS)
    heights = [float(b.get_attribute("height")) for b in bars]
    assert sum(h > 0 for h in heights) == 3 and heights[0] == max(heights)
    rows = browser.find_elements(CSS, "#by-rule tbody tr")
    assert len(rows) == 3 and rows[0].text.startswith("AWS.VPC.InboundPortWhitelist")
    # Hostile strings are text on the page, and none of them ran.
    first = browser.find_element(CSS, "#alert-alert0 strong")
    assert first.text == XSS_TITLE
    ran = browser.execute_script(
        "return [window.__xss_title, window.__xss_img, window.__xss_attr, window.__xss_json]")
    assert ran == [None, None, None, None]
    assert browser.find_elements(CSS, "#alert-list img") == []
    # The page says what it holds: 4 of the 5 alerts, and how to list the one left out.
    assert browser.find_element(CSS, "#alert-scope").text.startswith(
        "This page embeds the first 2 alerts of each rule, by first event time, then id: "
        "4 of 5 alerts in the store. The filter searches the alerts on this page only")
    groups = browser.find_elements(CSS, "#alert-list .rule-alerts")
    assert [g.get_attribute("data-rule") for g in groups] == [
        "AWS.VPC.InboundPortWhitelist", "AWS.VPC.PortScan", "AWS.VPC.UnapprovedOutboundDNS"]
    whitelist = groups[0]
    assert [a.get_attribute("id") for a in whitelist.find_elements(CSS, ".alert")] == [
        "alert-alert0", "alert-alert1"]
    assert whitelist.find_element(CSS, ".more").text.startswith(
        "This page shows the first 2 of this rule's 3 alerts; 1 more is in the store.")
    assert whitelist.find_element(CSS, ".more-sql").text == (
        "SELECT * FROM alerts WHERE rule_id = 'AWS.VPC.InboundPortWhitelist' "
        "ORDER BY first_event_time, id OFFSET 2;")
    assert groups[1].find_element(CSS, ".more").text == "This page shows the rule's only alert."
    assert browser.find_element(CSS, "#alert-count").text == "4 alerts on this page"
    search = browser.find_element(CSS, "#alert-filter")
    search.send_keys("10.0.0.9")
    visible = [a for a in browser.find_elements(CSS, "#alert-list .alert") if a.is_displayed()]
    assert [a.get_attribute("data-rule") for a in visible] == ["AWS.VPC.UnapprovedOutboundDNS"]
    assert [g.get_attribute("data-rule") for g in groups if g.is_displayed()] == [
        "AWS.VPC.UnapprovedOutboundDNS"]
    assert browser.find_element(CSS, "#alert-count").text == "1 of 4 alerts on this page"
    search.send_keys("\b" * 8)
    assert all(g.is_displayed() for g in groups)
    assert browser.find_element(CSS, "#alert-count").text == "4 alerts on this page"
    assert console_errors(browser) == []
    chart = tmp_path / "report-chart.png"
    browser.find_element(CSS, "#alerts-over-time").screenshot(str(chart))
    keep(chart)
    screenshot(browser, tmp_path, "report")
