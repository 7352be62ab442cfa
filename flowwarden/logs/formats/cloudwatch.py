"""CloudWatch Logs subscription payloads carrying VPC flow log records.

A payload is JSON with ``logEvents`` (decoded), or that JSON gzipped, or base64 of the gzip (as
a Kinesis record holds it); several payloads may follow one another (Firehose concatenates
them). ``CONTROL_MESSAGE`` payloads are skipped. Each event's ``message`` is one headerless
record, parsed with ``ReadOptions.format`` or AWS's default format. Rejections are numbered by
log event (1-based across the file), since a payload is usually one line.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Generator, Iterator
from typing import Any

import pyarrow as pa

from flowwarden.logs.common import printable
from flowwarden.logs.formats.base import BatchIter, FormatBase
from flowwarden.logs.formats.vpcflow_text import format_fields, parse_lines
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.streams import Opened, blocks

LOG_TYPE = "AWS.VPCFlow"
BASE64_GZIP = b"H4sI"
CONTROL = "CONTROL_MESSAGE"
HEAD_PROBE = 1 << 16


def detect(head: bytes) -> bool:
    """Whether ``head`` starts a CloudWatch Logs subscription payload."""
    text = head.lstrip()
    if text.startswith(BASE64_GZIP):
        return True
    return text.startswith(b"{") and b'"logEvents"' in text[:HEAD_PROBE]


def read_batches(
    opened: Opened, source: str, options: ReadOptions, stats: FileStats
) -> Iterator[pa.RecordBatch]:
    """Flow log batches from every DATA_MESSAGE payload in the stream."""
    fields = format_fields(options)
    pending: list[str] = []
    first = 1
    for messages in _messages(opened, stats):
        pending.extend(messages)
        if len(pending) >= options.batch_size:
            batch = parse_lines(pa.array(pending, pa.string()), first, fields, source, stats)
            first += len(pending)
            pending = []
            if batch is not None:
                yield batch
    if pending:
        batch = parse_lines(pa.array(pending, pa.string()), first, fields, source, stats)
        if batch is not None:
            yield batch


class CloudWatch(FormatBase):
    """CloudWatch Logs payloads: claimed before JSON lines, whatever ``--log-type`` says."""

    name = "cloudwatch"
    log_types = (LOG_TYPE,)

    def detect_text(self, head: bytes, options: ReadOptions) -> bool:
        return detect(head)

    def read_text(self, opened: Opened, source: str, options: ReadOptions,
                  stats: FileStats) -> BatchIter:
        return read_batches(opened, source, options, stats)


FORMAT = CloudWatch()


def _messages(opened: Opened, stats: FileStats) -> Iterator[list[str]]:
    for payload in _payloads(opened, stats):
        if payload.get("messageType") == CONTROL:
            continue
        events = payload.get("logEvents")
        if not isinstance(events, list):
            stats.reject(None, "payload has no logEvents list")
            continue
        yield [str(e.get("message", "")) if isinstance(e, dict) else "" for e in events]


def _payloads(opened: Opened, stats: FileStats) -> Iterator[dict[str, Any]]:
    decoder = json.JSONDecoder()
    text = ""
    for block, error in blocks(opened):
        text += block.decode("utf-8", errors="replace")
        text = yield from _decode_all(decoder, text, stats)
        if error is not None:
            stats.reject(None, f"truncated or corrupt input: {error}")
            return
    if text.strip():
        stats.reject(None, f"incomplete payload at end of input: {printable(text.strip())}")


def _decode_all(
    decoder: json.JSONDecoder, text: str, stats: FileStats
) -> Generator[dict[str, Any], None, str]:
    """Yield each complete payload in ``text``; the generator returns the unconsumed rest."""
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return ""
        if text.startswith("H4sI", pos):
            end = text.find("\n", pos)
            if end < 0:
                return text[pos:]
            rest = yield from _decode_all(decoder, _unpack(text[pos:end], stats), stats)
            if rest.strip():
                stats.reject(None, f"incomplete payload: {printable(rest.strip())}")
            pos = end + 1
            continue
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return text[pos:]
        if isinstance(value, dict):
            yield value
        else:
            stats.reject(None, "payload is not a JSON object")


def _unpack(encoded: str, stats: FileStats) -> str:
    try:
        return gzip.decompress(base64.b64decode(encoded.strip())).decode("utf-8", "replace")
    except (binascii.Error, OSError, EOFError, zlib.error) as exc:
        stats.reject(None, f"bad base64/gzip payload: {exc}")
        return ""
