"""Alert file formats, by the name ``--output-format`` takes.

- ``jsonl``: flowwarden's alert JSON, one per line (``jsonl``).
- ``ocsf``: OCSF 1.1.0 Detection Findings (class 2004) as JSON lines (``ocsf``).
- ``ocsf-parquet``: the same findings as Parquet; under ``--output-dir`` in the Security Lake
  custom-source layout (``securitylake``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flowwarden.alerts.formats.jsonl import write_lines
from flowwarden.alerts.formats.ocsf import write_ocsf_jsonl, write_ocsf_parquet
from flowwarden.alerts.model import Alert


@dataclass(frozen=True)
class AlertFormat:
    """How alerts become one file's bytes."""

    name: str
    suffix: str
    encode: Callable[[Sequence[Alert]], bytes]
    text: bool  # can go to standard output


def _text(write: Callable[[Sequence[Alert], io.StringIO], int]) -> Callable[[Sequence[Alert]], bytes]:
    def encode(alerts: Sequence[Alert]) -> bytes:
        out = io.StringIO()
        write(alerts, out)
        return out.getvalue().encode("utf-8")

    return encode


def _parquet(alerts: Sequence[Alert]) -> bytes:
    out = io.BytesIO()
    write_ocsf_parquet(alerts, out)
    return out.getvalue()


ALERT_FORMATS = {f.name: f for f in (
    AlertFormat("jsonl", ".jsonl", _text(write_lines), text=True),
    AlertFormat("ocsf", ".ocsf.jsonl", _text(write_ocsf_jsonl), text=True),
    AlertFormat("ocsf-parquet", ".parquet", _parquet, text=False),
)}
