"""The input formats and their registry: the reader reads an input with the first that claims it.

Each module holds one format (``panther_json`` two: Panther's lines and OCSF's) implementing
``base.LogFormat``; ``FORMATS`` lists them in detection order. Adding a format is one module
and one entry here. The order matters where two formats could claim the same input:

- CloudWatch Logs payloads are JSON too, so ``cloudwatch`` comes before the JSON lines;
- Panther JSON (a line naming its ``p_log_type``, or any JSON under ``--log-type``) comes
  before OCSF JSON lines;
- OCSF Parquet (a ``class_uid`` column) comes before flow log Parquet.
"""

from __future__ import annotations

import pyarrow as pa

from flowwarden.logs.formats import cloudwatch, ocsf, panther_json, vpcflow_parquet, vpcflow_text
from flowwarden.logs.formats.base import LogFormat
from flowwarden.logs.model import ReadOptions

FORMATS: tuple[LogFormat, ...] = (
    cloudwatch.FORMAT,
    panther_json.FORMAT,
    panther_json.OCSF_LINES,
    vpcflow_text.FORMAT,
    ocsf.FORMAT,
    vpcflow_parquet.FORMAT,
)


def text_format(head: bytes, options: ReadOptions) -> LogFormat | None:
    """The first format that reads the text input whose decompressed head is ``head``."""
    return next((f for f in FORMATS if f.detect_text(head, options)), None)


def parquet_format(schema: pa.Schema, options: ReadOptions) -> LogFormat | None:
    """The first format that reads a Parquet file with ``schema``."""
    return next((f for f in FORMATS if f.detect_parquet(schema, options)), None)
