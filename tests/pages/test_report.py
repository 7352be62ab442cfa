from __future__ import annotations

import gzip
import html
import json
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flowwarden.alerts.store import ALERT_COLUMNS, JSON_COLUMNS
from flowwarden.errors import UsageError
from flowwarden.pages import build_report
from flowwarden.pages.markup import esc
from flowwarden.pages.report_data import (
    BUCKET_WIDTHS,
    ENDPOINT_KEYS,
    MAX_BUCKETS,
    TOP_N,
    Bucket,
    load_report_data,
)
from tests.pages.store_fixture import (
    EXPECTED_BUCKET_ALERTS,
    ODD_RULE,
    SCRIPT_CLOSE,
    XSS_ATTR,
    XSS_IMG,
    XSS_TITLE,
    make_random_store,
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
    assert (data.total_alerts, data.total_events) == (5, 24)
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
    page = build_report(tmp_path / "empty.duckdb", tmp_path / "r.html").read_text()
    assert "No alerts." in page
    assert 'class="bar"' not in page
    assert_well_formed(page)
    for section in ("summary", "rules", "timeline", "endpoints", "inputs", "alerts"):
        assert f'id="{section}"' in page
    assert "<article" not in page
    assert re.findall(r'data-stat="alerts"><span class="value">(\d+)<', page) == ["0"]
    index = re.search(r'<script type="application/json" id="alert-index">(.*?)</script>', page)
    assert index is not None and json.loads(index.group(1)) == []


# --- the page at scale: only the first alerts of each rule are embedded ---------------------


class _Balance(HTMLParser):
    """Every element the report opens is closed, in order (void elements aside)."""

    VOID = {"meta", "link", "input", "br", "img", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()


def assert_well_formed(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>\n<html")
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert parser.problems == [] and parser.open == []


def _groups(page: str) -> dict[str, dict[str, Any]]:
    """Per rule, the alert group the page shows: counts, alert ids, the note and its query."""
    groups = {}
    for match in re.finditer(r'<section class="rule-alerts" id="[^"]*" data-rule="([^"]*)" '
                             r'data-alerts="(\d+)" data-shown="(\d+)">(.*?)</section>', page,
                             re.S):
        body = match.group(4)
        sql = re.search(r'<pre class="more-sql"><code>(.*?)</code></pre>', body, re.S)
        note = re.search(r'<p class="more[^"]*">(.*?)</p>', body, re.S)
        groups[html.unescape(match.group(1))] = {
            "alerts": int(match.group(2)), "shown": int(match.group(3)),
            "ids": [html.unescape(i) for i in re.findall(r'<article class="alert" id="alert-([^"]*)"',
                                                        body)],
            "note": note.group(1) if note else "",
            "sql": html.unescape(sql.group(1)) if sql else None,
        }
    return groups


def _ids_in_order(store: Path, rule_id: str) -> list[str]:
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute("SELECT id FROM alerts WHERE rule_id = ? ORDER BY first_event_time, id",
                           [rule_id]).fetchall()
    return [row[0] for row in rows]


def _run(store: Path, sql: str) -> list[str]:
    with duckdb.connect(str(store), read_only=True) as con:
        return [row[0] for row in con.execute(sql).fetchall()]


def test_only_the_first_alerts_of_each_rule_are_embedded(store: Path, tmp_path: Path):
    page = build_report(store, tmp_path / "r.html", limit=1).read_text()
    assert_well_formed(page)
    assert page.count('<article class="alert"') == 3  # one per rule, of 5
    groups = _groups(page)
    assert list(groups) == ["AWS.VPC.InboundPortWhitelist", "AWS.VPC.PortScan",
                            "AWS.VPC.UnapprovedOutboundDNS"]
    whitelist = groups["AWS.VPC.InboundPortWhitelist"]
    assert (whitelist["alerts"], whitelist["shown"], whitelist["ids"]) == (3, 1, ["alert0"])
    assert ("This page shows the first 1 of this rule's 3 alerts; 2 more are in the store."
            in whitelist["note"])
    assert "<code>duckdb -readonly alerts.duckdb</code>" in whitelist["note"]
    assert whitelist["sql"] == ("SELECT * FROM alerts WHERE rule_id = "
                                "'AWS.VPC.InboundPortWhitelist' ORDER BY first_event_time, id "
                                "OFFSET 1;")
    # The query on the page lists exactly the alerts the page leaves out, in the same order.
    assert _run(store, whitelist["sql"]) == ["alert1", "alert2"]
    assert groups["AWS.VPC.PortScan"]["note"] == "This page shows the rule's only alert."
    assert groups["AWS.VPC.PortScan"]["sql"] is None
    # The numbers above the list still count the whole store.
    assert re.findall(r'data-stat="alerts"><span class="value">(\d+)<', page) == ["5"]
    assert re.findall(r'data-stat="alerts-on-this-page"><span class="value">(\d+)<', page) == [
        "3"]
    assert "This page embeds the first 1 alert of each rule, by first event time, then id: " \
           "3 of 5 alerts in the store. The filter searches the alerts on this page only" in page
    assert 'placeholder="Filter the alerts on this page"' in page
    assert '<p id="alert-count" class="muted">3 alerts on this page</p>' in page
    index = re.search(r'<script type="application/json" id="alert-index">(.*?)</script>', page)
    assert index is not None
    assert [a["id"] for a in json.loads(index.group(1))] == ["alert0", "alert4", "alert3"]


def test_limit_zero_embeds_no_alert_and_a_negative_limit_is_refused(store: Path, tmp_path: Path):
    page = build_report(store, tmp_path / "r.html", limit=0).read_text()
    assert "<article" not in page
    groups = _groups(page)
    assert {rule: (g["alerts"], g["shown"]) for rule, g in groups.items()} == {
        "AWS.VPC.InboundPortWhitelist": (3, 0), "AWS.VPC.PortScan": (1, 0),
        "AWS.VPC.UnapprovedOutboundDNS": (1, 0)}
    assert _run(store, groups["AWS.VPC.PortScan"]["sql"]) == ["alert4"]
    with pytest.raises(UsageError, match="0 or more"):
        build_report(store, tmp_path / "r.html", limit=-1)


# --- differential: SQL aggregation against a plain Python computation on a small store -------

SPANS = {"2 hours": timedelta(hours=2), "9 days": timedelta(days=9),
         "400 days": timedelta(days=400)}


@pytest.fixture(scope="module", params=list(SPANS))
def random_store(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("random")
    return make_random_store(folder / "alerts.duckdb", seed=len(request.param), count=400,
                             span=SPANS[request.param])


def _all_alerts(store: Path) -> list[dict[str, Any]]:
    """Every alert of the store as a dict, the way the report used to read them."""
    names = list(ALERT_COLUMNS)
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(f"SELECT {', '.join(names)} FROM alerts").fetchall()
    alerts = []
    for row in rows:
        alert = dict(zip(names, row, strict=True))
        for name in JSON_COLUMNS:
            if isinstance(alert[name], str):
                alert[name] = json.loads(alert[name])
        for name in ("window_start", "first_event_time", "last_event_time"):
            if isinstance(alert[name], datetime):
                alert[name] = alert[name].astimezone(UTC)
        alerts.append(alert)
    return alerts


def _endpoint_value(alert: Mapping[str, Any], kind: str) -> str | None:
    """As ENDPOINT_KEYS says: the context's paths in order, then each sample's."""
    for record in [alert.get("alert_context") or {}, *(alert.get("samples") or [])]:
        if not isinstance(record, Mapping):
            continue
        for path in ENDPOINT_KEYS[kind]:
            value = _dig(record, path)
            if value not in (None, ""):
                return str(value)
    return None


def _dig(record: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _expected_buckets(alerts: list[dict[str, Any]]) -> tuple[timedelta, list[Bucket]]:
    times = [a["first_event_time"] for a in alerts if a["first_event_time"] is not None]
    first, last = min(times), max(times)
    width = next((w for w in BUCKET_WIDTHS if (last - first) / w < MAX_BUCKETS), None)
    if width is None:
        width = timedelta(days=(last - first).days // (MAX_BUCKETS - 1) + 1)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    origin = epoch + ((first - epoch) // width) * width
    count = int((last - origin) // width) + 1
    alerts_in, events_in = [0] * count, [0] * count
    for alert in alerts:
        if alert["first_event_time"] is not None:
            index = int((alert["first_event_time"] - origin) // width)
            alerts_in[index] += 1
            events_in[index] += int(alert["event_count"] or 0)
    return width, [Bucket(origin + i * width, alerts_in[i], events_in[i]) for i in range(count)]


def _expected_tops(alerts: list[dict[str, Any]],
                   rule_id: str) -> dict[str, list[tuple[str, int, int]]]:
    result = {}
    for kind in ENDPOINT_KEYS:
        events: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        for alert in alerts:
            value = _endpoint_value(alert, kind) if alert["rule_id"] == rule_id else None
            if value is not None:
                events[value] += int(alert["event_count"] or 1)
                counts[value] += 1
        ranked = sorted(events, key=lambda v: (-events[v], -counts[v], v))[:TOP_N]
        result[kind] = [(v, events[v], counts[v]) for v in ranked]
    return result


def test_sql_aggregates_equal_a_python_computation(random_store: Path):
    alerts = _all_alerts(random_store)
    data = load_report_data(random_store, limit=7)

    expected: dict[str, Counter[str]] = {}
    for alert in alerts:
        expected.setdefault(alert["rule_id"], Counter())[alert["severity"]] += 1
    ordered = sorted(expected.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    assert list(data.by_rule_severity().items()) == ordered
    assert data.total_alerts == len(alerts) == 401
    assert data.total_events == sum(int(a["event_count"] or 0) for a in alerts)
    assert data.rule_names() == {a["rule_id"]: a["rule_name"] for a in alerts}

    assert data.buckets() == _expected_buckets(alerts)
    assert sum(b.alerts for b in data.buckets()[1]) == sum(
        a["first_event_time"] is not None for a in alerts)

    for rule_id in expected:
        assert data.top_endpoints(rule_id) == _expected_tops(alerts, rule_id), rule_id
    # The random data reaches every branch of the lookup.
    found = [(_endpoint_value(a, "source_ip"), a) for a in alerts]
    assert any(value is None for value, _ in found)
    assert any(value and value == (a["alert_context"] or {}).get("srcAddr")
               and not (a["alert_context"] or {}).get("source_ip") for value, a in found)
    assert any(value and not a["alert_context"] for value, a in found)  # from a sample

    def first_seven(rule_id: str) -> list[str]:
        mine = [a for a in alerts if a["rule_id"] == rule_id]
        mine.sort(key=lambda a: (a["first_event_time"] is None,
                                 a["first_event_time"] or datetime.min.replace(tzinfo=UTC),
                                 a["id"]))
        return [a["id"] for a in mine[:7]]

    assert [a["id"] for a in data.alerts] == [i for rule_id, _ in ordered
                                              for i in first_seven(rule_id)]


def test_the_page_counts_and_queries_match_the_store(random_store: Path, tmp_path: Path):
    page = build_report(random_store, tmp_path / "r.html", limit=4).read_text()
    assert_well_formed(page)
    groups = _groups(page)
    counts = Counter(a["rule_id"] for a in _all_alerts(random_store))
    assert {rule: g["alerts"] for rule, g in groups.items()} == counts
    for rule_id, group in groups.items():
        in_order = _ids_in_order(random_store, rule_id)
        assert group["ids"] == in_order[:4]
        assert group["shown"] == 4
        more = counts[rule_id] - 4
        assert (f"shows the first 4 of this rule's {counts[rule_id]:,} alerts; "
                f"{more:,} more {'is' if more == 1 else 'are'} in the store") in group["note"]
        assert _run(random_store, group["sql"]) == in_order[4:]
    # A rule id with quotes and markup: escaped in the page, quoted in its query.
    assert ODD_RULE not in page
    assert esc(ODD_RULE) in page
    assert "rule_id = 'Custom.O''Brien<b>&\"Rule\"'" in groups[ODD_RULE]["sql"]


def test_alerts_without_a_first_event_time_come_last(tmp_path: Path):
    from flowwarden.alerts.store import AlertStore
    from tests.pages.store_fixture import random_alerts

    alerts = random_alerts(seed=1, count=3, span=timedelta(hours=1))[:3]
    for alert, (ident, when) in zip(alerts, (("b", None), ("a", None), ("z", datetime(
            2024, 5, 1, tzinfo=UTC))), strict=True):
        alert.id, alert.rule_id, alert.first_event_time = ident, "R", when
    store = AlertStore(tmp_path / "alerts.duckdb")
    store.add(alerts)
    store.close()
    data = load_report_data(tmp_path / "alerts.duckdb", limit=2)
    assert [a["id"] for a in data.alerts] == ["z", "a"]
    assert data.buckets()[1] == [Bucket(datetime(2024, 5, 1, tzinfo=UTC), 1,
                                        int(alerts[2].event_count or 0))]
    page = build_report(tmp_path / "alerts.duckdb", tmp_path / "r.html", limit=2).read_text()
    assert _run(tmp_path / "alerts.duckdb", _groups(page)["R"]["sql"]) == ["b"]


def test_rescanning_the_same_inputs_counts_each_input_once(tmp_path: Path):
    """Scanning the same two files twice into one store: 2 inputs, their records once, 2 scans;
    a changed file (another size) is another input."""
    from click.testing import CliRunner

    from flowwarden.cli import main

    examples = Path(__file__).resolve().parents[2] / "examples" / "data"
    inputs = tmp_path / "in"
    shutil.copytree(examples, inputs)
    store = tmp_path / "alerts.duckdb"
    for _ in range(2):
        result = CliRunner().invoke(main, ["scan", str(inputs), "--store", str(store), "-q",
                                           "-o", str(tmp_path / "a.jsonl")])
        assert result.exit_code == 0, result.output
    data = load_report_data(store)
    assert len(data.files) == 2 and data.scans == 2
    assert [f.scans for f in data.files] == [2, 2]
    assert data.file_totals() == {"read": 10_000, "parsed": 10_000, "rejected": 0}
    page = build_report(store, tmp_path / "r.html").read_text()
    assert re.search(r'data-stat="input-files"[^>]*><span class="value">2</span>', page)
    assert re.search(r'data-stat="scans"[^>]*><span class="value">2</span>', page)
    first = sorted(inputs.rglob("*.log.gz"))[0]
    with gzip.open(first, "rt") as handle:
        lines = handle.read().splitlines()
    with gzip.open(first, "wt") as handle:
        handle.write("\n".join(lines[:-10]) + "\n")  # the same path, other content
    result = CliRunner().invoke(main, ["scan", str(inputs), "--store", str(store), "-q",
                                       "-o", str(tmp_path / "a.jsonl")])
    assert result.exit_code == 0, result.output
    data = load_report_data(store)
    assert len(data.files) == 3 and data.scans == 3
    assert data.file_totals()["read"] == 10_000 + 4_990
