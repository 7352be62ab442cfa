"""Alert file formats, by the name ``--output-format`` takes.

- ``jsonl``: flowwarden's alert JSON, one per line (``jsonl``).
- ``ocsf``: OCSF 1.1.0 Detection Findings (class 2004) as JSON lines (``ocsf``).
- ``ocsf-parquet``: the same findings as Parquet; under ``--output-dir`` in the Security Lake
  custom-source layout (``securitylake``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from typing import Protocol

from flowwarden.alerts.formats.jsonl import JsonLines, alert_json
from flowwarden.alerts.formats.ocsf import finding_json, write_ocsf_parquet
from flowwarden.alerts.model import Alert


class BinaryOut(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class AlertFormat:
    """How alerts are written to a binary file, one by one (never all in memory)."""

    name: str
    suffix: str
    write: Callable[[Iterable[Alert], BinaryOut], int]
    text: bool  # can go to standard output

    def encode(self, alerts: Iterable[Alert]) -> bytes:
        """The alerts as one file's bytes (for an object store's single PUT)."""
        out = io.BytesIO()
        self.write(alerts, out)
        return out.getvalue()


def _lines(render: Callable[[Alert], str]) -> Callable[[Iterable[Alert], BinaryOut], int]:
    def write(alerts: Iterable[Alert], out: BinaryOut) -> int:
        if render is alert_json and isinstance(alerts, JsonLines):
            for chunk in alerts.json_lines():
                out.write(chunk)
            return len(alerts) if isinstance(alerts, Sized) else 0
        count = 0
        for alert in alerts:
            out.write((render(alert) + "\n").encode("utf-8"))
            count += 1
        return count

    return write


ALERT_FORMATS = {f.name: f for f in (
    AlertFormat("jsonl", ".jsonl", _lines(alert_json), text=True),
    AlertFormat("ocsf", ".ocsf.jsonl", _lines(finding_json), text=True),
    AlertFormat("ocsf-parquet", ".parquet", write_ocsf_parquet, text=False),
)}
