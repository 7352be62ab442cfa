"""`flowwarden report`: one self-contained HTML file describing a scan's alert store.

Everything is inline (CSS, the SVG chart, a small filter script), so the file can be mailed or
opened offline. Every value from the store passes through `esc` or `script_json`.

The numbers cover the whole store (DuckDB aggregates them, `report_data`); the alert list embeds
only the first `limit` alerts of each rule and says, per rule, how many more there are and the
query that lists them, so the page stays a few megabytes for a store of millions of alerts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from shlex import quote
from typing import Any

from flowwarden.pages.charts import Bar, bar_chart
from flowwarden.pages.markup import asset, attrs, esc, page, script_json, table, tag
from flowwarden.pages.report_data import (
    ALERT_ORDER,
    DEFAULT_LIMIT,
    SEVERITY_ORDER,
    ReportData,
    RuleCounts,
    load_report_data,
    rest_of_rule_sql,
)

ENDPOINT_TITLES = {
    "source_ip": "Source address", "destination_ip": "Destination address",
    "source_port": "Source port", "destination_port": "Destination port",
}


def build_report(store_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                 limit: int = DEFAULT_LIMIT) -> Path:
    """Write the HTML report of the alert store at `store_path` to `out_path` and return it.

    The page embeds the first `limit` alerts of each rule (by first event time, then id).

    >>> import tempfile
    >>> from pathlib import Path
    >>> from flowwarden.alerts.store import AlertStore
    >>> folder = Path(tempfile.mkdtemp())
    >>> AlertStore(folder / "alerts.duckdb").close()
    >>> build_report(folder / "alerts.duckdb", folder / "report.html").name
    'report.html'
    """
    data = load_report_data(store_path, limit)
    target = Path(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(data), encoding="utf-8")
    return target


def render_report(data: ReportData) -> str:
    """The report document for already loaded data."""
    sections = [
        _summary(data), _by_rule(data), _over_time(data), _endpoints(data), _files(data),
        _alert_list(data),
    ]
    body = tag("header", tag("h1", "flowwarden scan report")
               + tag("p", f"Alert store {tag('code', esc(Path(data.source).name))}",
                     class_="muted"))
    body += tag("main", "".join(sections))
    index = [{"id": a["id"], "rule_id": a["rule_id"], "severity": a["severity"],
              "title": a["title"]} for a in data.alerts]
    data_script = tag("script", script_json(index), type="application/json", id="alert-index")
    return page("flowwarden scan report", body + data_script, css=asset("pages.css"),
                scripts=[asset("report.js")])


def _summary(data: ReportData) -> str:
    totals = data.file_totals()
    items = [
        ("alerts", data.total_alerts), ("matched events", data.total_events),
        ("rules alerting", len(data.rules)), ("alerts on this page", len(data.alerts)),
        ("input files", len(data.files)), ("scans", data.scans), ("records read", totals["read"]),
        ("records rejected", totals["rejected"]),
    ]
    cards = "".join(
        tag("div", tag("span", f"{value:,}", class_="value") + tag("span", esc(label),
            class_="label"), class_="card", data_stat=label.replace(" ", "-"))
        for label, value in items
    )
    return tag("section", tag("h2", "Summary") + tag("div", cards, class_="cards"), id="summary")


def _severity_badge(severity: str) -> str:
    return tag("span", esc(severity), class_=f"sev sev-{severity.lower()}")


def _by_rule(data: ReportData) -> str:
    most = max((rule.alerts for rule in data.rules), default=1) or 1
    rows = []
    for rule in data.rules:
        meter = tag("span", "", class_="meter", style=f"width:{100 * rule.alerts / most:.0f}%")
        shown = len(data.embedded(rule.rule_id))
        rows.append([
            tag("a", esc(rule.rule_id), href=f"#rule-{rule.rule_id}")
            + tag("div", esc(rule.name), class_="muted"),
            *(f"{rule.severities[level]:,}" if rule.severities.get(level) else ""
              for level in SEVERITY_ORDER),
            tag("div", f"{meter}<b>{rule.alerts:,}</b>", class_="meter-cell"),
            tag("a", f"{shown:,}", href=f"#alerts-{rule.rule_id}"),
        ])
    headers = ["Rule", *SEVERITY_ORDER, "Alerts", "On this page"]
    content = (table(headers, rows, id="by-rule", class_="grid") if rows
               else tag("p", "No alerts.", class_="muted"))
    return tag("section", tag("h2", "Alerts by rule and severity") + content, id="rules")


def _over_time(data: ReportData) -> str:
    width, buckets = data.buckets()
    if not buckets:
        return tag("section", tag("h2", "Alerts over time") + tag("p", "No alerts.",
                   class_="muted"), id="timeline")
    fmt = "%Y-%m-%d" if width >= timedelta(days=1) else "%m-%d %H:%M"
    bars = [
        Bar(b.start.strftime(fmt), f"{b.start:%Y-%m-%d %H:%M} UTC: {b.alerts} alerts, "
            f"{b.events} events", b.alerts)
        for b in buckets
    ]
    chart = bar_chart(bars, title="Alerts per time bucket (first event time)",
                      chart_id="alerts-over-time")
    note = tag("p", f"Alerts by first event time, UTC, {_duration(width)} buckets.",
               class_="muted")
    return tag("section", tag("h2", "Alerts over time") + note + chart, id="timeline")


def _duration(width: timedelta) -> str:
    minutes = int(width.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}-day"
    if minutes % 60 == 0:
        return f"{minutes // 60}-hour"
    return f"{minutes}-minute"


def _endpoints(data: ReportData) -> str:
    blocks = []
    names = data.rule_names()
    for rule_id in data.by_rule_severity():
        tops = data.top_endpoints(rule_id)
        cells = []
        for kind, title in ENDPOINT_TITLES.items():
            items = "".join(
                tag("li", tag("code", esc(value)) + " " + tag(
                    "span", f"{plural(events, 'event')}, {plural(alerts, 'alert')}",
                    class_="muted"))
                for value, events, alerts in tops[kind]
            ) or tag("li", "none recorded", class_="muted")
            cells.append(tag("div", tag("h4", esc(title)) + tag("ol", items), class_="top"))
        blocks.append(tag("div", tag("h3", esc(names[rule_id]) + " " + tag("code", esc(rule_id)))
                          + tag("div", "".join(cells), class_="tops"),
                          class_="rule-tops", id=f"rule-{rule_id}", data_rule=rule_id))
    note = tag("p", "Over every alert in the store, by the events behind them. An alert's "
               "address or port is its context's, else its first sample's that has one.",
               class_="muted")
    content = note + "".join(blocks) if blocks else tag("p", "No alerts.", class_="muted")
    return tag("section", tag("h2", "Top addresses and ports per rule") + content, id="endpoints")


def _files(data: ReportData) -> str:
    rows = []
    for f in data.files:
        details = "".join(tag("li", f"line {esc(r.get('line'))}: {esc(r.get('reason'))}")
                          for r in f.rejections)
        rejected = str(f.rejected)
        if details:
            rejected = tag("details", tag("summary", rejected) + tag("ul", details))
        rows.append([tag("code", esc(f.source)), esc(f.log_type or "unknown"), f"{f.scans:,}",
                     f"{f.read:,}", f"{f.parsed:,}", rejected])
    note = tag("p", "Each input once, however many scans read it (the same path, size and ETag "
               "or modification time); its counts are those of one scan.", class_="muted")
    content = (note + table(["Input", "Log type", "Scans", "Read", "Parsed", "Rejected"], rows,
                            id="files", class_="grid")
               if rows else tag("p", "The store holds no input file statistics.", class_="muted"))
    return tag("section", tag("h2", "Input files and rejected records") + content, id="inputs")


def _alert_list(data: ReportData) -> str:
    shown, total = len(data.alerts), data.total_alerts
    scope = tag("p", (
        f"This page embeds the first {plural(data.limit, 'alert')} of each rule, by first event "
        f"time, then id: {shown:,} of {plural(total, 'alert')} in the store. The filter searches "
        "the alerts on this page only; under each rule is the query that lists the rest."
    ), id="alert-scope")
    search = "<input" + attrs({"type": "search", "id": "alert-filter",  # a void element
                               "placeholder": "Filter the alerts on this page",
                               "aria-label": "Filter the alerts on this page"}) + ">"
    count = tag("p", f"{plural(shown, 'alert')} on this page", id="alert-count",
                class_="muted")
    groups = "".join(_rule_alerts(data, rule) for rule in data.rules)
    body = (scope + search + count + tag("div", groups, id="alert-list") if data.rules
            else tag("p", "No alerts.", class_="muted"))
    return tag("section", tag("h2", "Alerts") + body, id="alerts")


def _rule_alerts(data: ReportData, rule: RuleCounts) -> str:
    alerts = data.embedded(rule.rule_id)
    more = rule.alerts - len(alerts)
    if more <= 0:
        text = ("This page shows the rule's only alert." if rule.alerts == 1
                else f"This page shows all {rule.alerts:,} alerts of this rule.")
        note = tag("p", text, class_="more muted")
    else:
        command = "duckdb -readonly " + quote(Path(data.source).name)
        rest = "1 more is" if more == 1 else f"{more:,} more are"
        note = tag("p", (
            f"This page shows the first {len(alerts):,} of this rule's {rule.alerts:,} alerts; "
            f"{rest} in the store. To list {'it' if more == 1 else 'them'} (ordered by "
            f"{esc(ALERT_ORDER)}, like these), open the store with {tag('code', esc(command))} "
            "and run:"), class_="more")
        note += tag("pre", tag("code", esc(rest_of_rule_sql(rule.rule_id, len(alerts)))),
                    class_="more-sql")
    head = tag("h3", esc(rule.name) + " " + tag("code", esc(rule.rule_id)))
    return tag("section", head + note + "".join(_alert(a) for a in alerts), class_="rule-alerts",
               id=f"alerts-{rule.rule_id}", data_rule=rule.rule_id, data_alerts=rule.alerts,
               data_shown=len(alerts))


def _alert(alert: Mapping[str, Any]) -> str:
    when = _time(alert.get("first_event_time"))
    last = _time(alert.get("last_event_time"))
    head = (_severity_badge(alert["severity"]) + " " + tag("strong", esc(alert["title"]))
            + tag("div", f"{esc(alert['rule_id'])} · {plural(alert.get('event_count') or 0, 'event')} · "
                  f"{esc(when)} to {esc(last)}", class_="muted"))
    context = alert.get("alert_context") or {}
    pairs = "".join(
        tag("div", tag("span", esc(k), class_="k") + tag("span", esc(_value(v)),
            class_="v null" if v is None else "v"), class_="kv", data_key=k)
        for k, v in context.items())
    body = tag("div", pairs, class_="context") if pairs else ""
    body += tag("div", f"dedup {tag('code', esc(alert.get('dedup')))}", class_="muted")
    samples = alert.get("samples") or []
    if samples:
        text = json.dumps(samples, indent=2, sort_keys=True, default=str)
        body += tag("details", tag("summary", plural(len(samples), "sample event"))
                    + tag("pre", esc(text)))
    return tag("article", tag("div", head, class_="alert-head") + body, class_="alert",
               id=f"alert-{alert['id']}", data_rule=alert["rule_id"],
               data_severity=alert["severity"])


def plural(count: int, noun: str) -> str:
    """`1 event`, `2 events`.

    >>> plural(1, "alert"), plural(3, "sample event")
    ('1 alert', '3 sample events')
    """
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(value, datetime) else str(value)


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
