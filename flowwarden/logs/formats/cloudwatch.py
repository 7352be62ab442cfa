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
import codecs
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from flowwarden.logs.common import printable
from flowwarden.logs.formats.base import BatchIter, FormatBase
from flowwarden.logs.formats.vpcflow_header import format_fields
from flowwarden.logs.formats.vpcflow_text import parse_lines
from flowwarden.logs.limits import MAX_NESTING, too_deep
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.streams import Opened, blocks

LOG_TYPE = "AWS.VPCFlow"
BASE64_GZIP = b"H4sI"
CONTROL = "CONTROL_MESSAGE"
HEAD_PROBE = 1 << 16
NEXT_PAYLOAD = '{"messageType"'


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
    for message, reason in _events(opened, options.max_line_bytes, stats):
        if reason is not None:
            stats.reject(first + len(pending), reason)
            message = ""  # a blank line: parse_lines skips it, keeping the numbering
        pending.append(message)
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


def _events(opened: Opened, max_size: int,
            stats: FileStats) -> Iterator[tuple[str, str | None]]:
    """Each log event of the DATA_MESSAGE payloads: its message, or why it is not a record."""
    for payload, line in _payloads(opened, max_size, stats):
        if payload.get("messageType") == CONTROL:
            continue
        events = payload.get("logEvents")
        if not isinstance(events, list):
            stats.reject(None, f"payload on line {line} has no logEvents list")
            continue
        for event in events:
            if not isinstance(event, dict):
                yield "", f"log event is not a JSON object: {printable(type(event).__name__)}"
                continue
            message = event.get("message")
            if not isinstance(message, str) or not message.strip():
                yield "", f"log event has no message text: {printable(message)}"
                continue
            yield message, None


def _payloads(opened: Opened, max_size: int,
              stats: FileStats) -> Iterator[tuple[dict[str, Any], int]]:
    """Each payload that is a JSON object, with the line it starts on; every other one is a
    rejection, and reading resumes at the next line (or the next ``{"messageType"``)."""
    decoder = _Decoder(max_size, stats)
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span blocks
    for block, error in blocks(opened):
        yield from decoder.feed(text.decode(block))
        if error is not None:
            stats.reject(None, f"truncated or corrupt input: {error}")
            return
    yield from decoder.feed(text.decode(b"", final=True), final=True)


class _Decoder:
    """Payloads out of text that arrives in blocks; one payload is at most ``max_size``."""

    def __init__(self, max_size: int, stats: FileStats) -> None:
        self.json = json.JSONDecoder()
        self.max_size = max(max_size, 1)
        self.stats = stats
        self.text = ""
        self.line = 1  # the line of self.text at self.counted
        self.counted = 0
        self.skipping = False  # inside a rejected payload whose end has not arrived yet

    def feed(self, more: str, final: bool = False) -> Iterator[tuple[dict[str, Any], int]]:
        """The payloads completed by ``more`` (all that is left when ``final``)."""
        self.text = self.text + more if self.text else more
        pos = 0
        if self.skipping:
            end = self.text.find("\n")
            pos = len(self.text) if end < 0 else end + 1
            self.skipping = end < 0
        try:
            while not self.skipping:
                pos = self._skip_space(pos)
                if pos >= len(self.text):
                    return
                line = self._line_at(pos)
                if self.text.startswith(BASE64_GZIP.decode(), pos):
                    end = self.text.find("\n", pos)
                    if end < 0 and not final:
                        if len(self.text) - pos > self.max_size:
                            pos = self._skip(pos, pos, line, "payload longer than "
                                             f"{self.max_size:,} characters", final)
                        return
                    end = len(self.text) if end < 0 else end
                    yield from self._unpacked(self.text[pos:end], line)
                    pos = end + 1
                    continue
                try:
                    value, after = self.json.raw_decode(self.text, pos)
                except json.JSONDecodeError as exc:
                    if not final and _incomplete(exc, self.text):
                        if len(self.text) - pos > self.max_size:
                            pos = self._skip(pos, pos, line, "payload longer than "
                                             f"{self.max_size:,} characters", final)
                            continue
                        return
                    pos = self._skip(pos, exc.pos, line, f"not JSON: {exc.msg}", final)
                    continue
                except RecursionError:  # far deeper than MAX_NESTING
                    pos = self._skip(pos, pos, line, f"nested deeper than {MAX_NESTING} levels",
                                     final)
                    continue
                if after - pos > self.max_size:
                    self.stats.reject(None, f"payload on line {line} longer than "
                                            f"{self.max_size:,} characters")
                elif too_deep(self.text[pos:after]):
                    self.stats.reject(None, f"payload on line {line}: nested deeper than "
                                            f"{MAX_NESTING} levels")
                elif isinstance(value, dict):
                    yield value, line
                else:
                    self.stats.reject(None, f"payload on line {line} is not a JSON object")
                pos = after
        finally:
            self._consume(pos)

    def _skip(self, start: int, bad: int, line: int, reason: str, final: bool) -> int:
        """Reject the payload at ``start`` (bad at ``bad``); where reading resumes."""
        resume = _resume_at(self.text, max(bad, start + 1))
        if resume < 0 and not final:  # no next payload yet: skip this one to its line's end
            resume, self.skipping = len(self.text), True
        self.stats.reject(None, f"payload on line {line}: {reason}")
        return len(self.text) if resume < 0 else resume

    def _unpacked(self, encoded: str, line: int) -> Iterator[tuple[dict[str, Any], int]]:
        text, reason = _unpack(encoded, self.max_size)
        if reason is not None:
            self.stats.reject(None, f"payload on line {line}: {reason}")
            return
        inner = _Decoder(self.max_size, self.stats)
        for payload, _ in inner.feed(text, final=True):
            yield payload, line

    def _skip_space(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos].isspace():
            pos += 1
        return pos

    def _line_at(self, pos: int) -> int:
        """The line ``pos`` is on (positions asked in increasing order: newlines are counted
        once)."""
        self.line += self.text.count("\n", self.counted, pos)
        self.counted = pos
        return self.line

    def _consume(self, pos: int) -> None:
        self._line_at(pos)
        self.text, self.counted = self.text[pos:], 0


def _incomplete(exc: json.JSONDecodeError, text: str) -> bool:
    """Whether decoding failed only because the payload continues in the next block."""
    return exc.msg.startswith("Unterminated string") or exc.pos >= len(text.rstrip()) - 16


def _resume_at(text: str, start: int) -> int:
    """Where the next payload may start after ``start``: the next line, or the next
    ``{"messageType"`` (Firehose joins payloads without a newline); -1 if neither."""
    found = [i for i in (text.find("\n", start), text.find(NEXT_PAYLOAD, start)) if i >= 0]
    return min(found) if found else -1


def _unpack(encoded: str, max_size: int) -> tuple[str, str | None]:
    """Base64 of gzip to text, at most ``max_size`` bytes of it (a small payload may inflate
    to gigabytes)."""
    try:
        packed = base64.b64decode(encoded.strip())
        inflate = zlib.decompressobj(wbits=31)
        data = inflate.decompress(packed, max_size + 1)
    except (binascii.Error, ValueError, zlib.error) as exc:
        return "", f"bad base64/gzip payload: {exc}"
    if len(data) > max_size:
        return "", f"payload inflates to more than {max_size:,} bytes"
    return data.decode("utf-8", "replace"), None
