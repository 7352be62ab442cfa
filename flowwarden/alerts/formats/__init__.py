"""Alert file formats, by the name ``--output-format`` takes.

- ``jsonl``: flowwarden's alert JSON, one per line (``jsonl``).
- ``ocsf``: OCSF 1.1.0 Detection Findings (class 2004) as JSON lines (``ocsf``).
- ``ocsf-parquet``: the same findings as Parquet; under ``--output-dir`` in the Security Lake
  custom-source layout (``securitylake``).

A scan's alerts that stay in DuckDB (``tablequery.QueriedAlerts``) are written from its query
in batches (``ocsftable``, ``AlertTable.json_lines``); alerts whose findings were made with
them (``ocsf.PreparedFindings``: a Spark scan's, asked for) from those; a list of alerts one by
one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from typing import Protocol

from flowwarden.alerts.formats import ocsftable
from flowwarden.alerts.formats.jsonl import JsonLines, alert_json
from flowwarden.alerts.formats.ocsf import (
    PreparedFindings,
    finding_json,
    write_ocsf_parquet,
    write_prepared_parquet,
)
from flowwarden.alerts.model import Alert
from flowwarden.alerts.tablequery import QueriedAlerts
from flowwarden.util.iterables import ahead


class BinaryOut(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class AlertFormat:
    """How alerts are written to a binary file, one by one (never all in memory)."""

    name: str
    suffix: str
    write: Callable[[Iterable[Alert], BinaryOut], int]
    text: bool  # can go to standard output
    findings: bool = False  # writes OCSF findings (``ocsf.to_finding``)


def _lines(render: Callable[[Alert], str]) -> Callable[[Iterable[Alert], BinaryOut], int]:
    def write(alerts: Iterable[Alert], out: BinaryOut) -> int:
        if render is alert_json and isinstance(alerts, JsonLines):
            # the query runs while a chunk is written
            return _copied(ahead(alerts.json_lines()), alerts, out)
        if render is finding_json and isinstance(alerts, QueriedAlerts):
            return ocsftable.write_jsonl(alerts, out)  # from the query, batch by batch
        if render is finding_json and isinstance(alerts, PreparedFindings):
            return _copied(alerts.finding_lines(), alerts, out)
        count = 0
        for alert in alerts:
            out.write((render(alert) + "\n").encode("utf-8"))
            count += 1
        return count

    return write


def _copied(lines: Iterable[bytes], alerts: Iterable[Alert], out: BinaryOut) -> int:
    """``lines`` (the alerts' own, already written) copied to ``out``; how many alerts."""
    for chunk in lines:
        out.write(chunk)
    return len(alerts) if isinstance(alerts, Sized) else 0


def _parquet(alerts: Iterable[Alert], out: BinaryOut) -> int:
    if isinstance(alerts, QueriedAlerts):
        return ocsftable.write_parquet(alerts, out)
    if isinstance(alerts, PreparedFindings):
        return write_prepared_parquet(alerts, out)
    return write_ocsf_parquet(alerts, out)


ALERT_FORMATS = {f.name: f for f in (
    AlertFormat("jsonl", ".jsonl", _lines(alert_json), text=True),
    AlertFormat("ocsf", ".ocsf.jsonl", _lines(finding_json), text=True, findings=True),
    AlertFormat("ocsf-parquet", ".parquet", _parquet, text=False, findings=True),
)}
