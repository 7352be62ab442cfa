"""Panther JSON lines: one object per line, any ``p_log_type``; batches group lines by type.

AWS.VPCFlow and OCSF.NetworkActivity lines are cast to the native readers' schemas (a value that
will not cast rejects its line); other log types are inferred per batch, conflicting types kept
as a dense union so each value comes back as given.

Two formats read these lines: ``PantherJson`` (lines naming their ``p_log_type``, or any JSON
lines under a forced ``--log-type``) and ``OcsfJson`` (OCSF events without ``p_log_type``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.logs import fields as F
from flowwarden.logs.common import EVENT_TIME, IP_LIST, STANDARD_NAMES, Numbered, with_standard
from flowwarden.logs.formats import ocsf
from flowwarden.logs.formats.base import BatchIter, FormatBase
from flowwarden.logs.formats.vpcflow_text import line_chunks, to_batch
from flowwarden.logs.jsonrows import build_columns, loads
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.streams import Opened

Rows = list[tuple[int, dict[str, Any]]]
VPC_TYPES: dict[str, pa.DataType] = {f.panther: f.type for f in F.FIELDS}


def detect(head: bytes) -> bool:
    """Whether the first line of ``head`` is a JSON object carrying ``p_log_type``."""
    obj = _first_object(head)
    return obj is not None and isinstance(obj.get("p_log_type"), str)


def _first_object(head: bytes) -> dict[str, Any] | None:
    """The JSON object on the first line of ``head``, or None."""
    obj, _ = loads(head.split(b"\n", 1)[0].decode("utf-8", errors="replace"))
    return obj


def read_batches(
    opened: Opened,
    source: str,
    options: ReadOptions,
    stats: FileStats,
    default_log_type: str | None = None,
) -> Iterator[Numbered]:
    """Parse JSON lines into batches, one log type per batch, with each record's line."""
    line_no = 0
    for data, error in line_chunks(opened, max(options.batch_size * 256, 1 << 16)):
        groups: dict[str, Rows] = {}
        for text in data.decode("utf-8", errors="replace").split("\n")[:-1]:
            line_no += 1
            if not text.strip():
                continue
            obj, reason = loads(text)
            log_type = obj.get("p_log_type", default_log_type) if obj is not None else None
            if obj is None or not isinstance(log_type, str):
                stats.reject(line_no, reason or "no p_log_type and no --log-type given")
                continue
            groups.setdefault(log_type, []).append((line_no, obj))
        for log_type, rows in groups.items():
            numbered = numbered_batch(log_type, rows, source, stats)
            if numbered is not None:
                yield numbered
        if error is not None:
            stats.reject(line_no + 1, f"truncated or corrupt input: {error}")
            return


class PantherJson(FormatBase):
    """JSON lines naming their ``p_log_type``; with ``--log-type``, any JSON lines (a line
    without ``p_log_type`` then takes the forced one)."""

    name = "panther-json"

    def detect_text(self, head: bytes, options: ReadOptions) -> bool:
        text = head.lstrip()
        return text.startswith(b"{") and (options.log_type is not None or detect(text))

    def read_text(self, opened: Opened, source: str, options: ReadOptions,
                  stats: FileStats) -> BatchIter:
        return read_batches(opened, source, options, stats, options.log_type)


class OcsfJson(FormatBase):
    """OCSF Network Activity events as JSON lines without ``p_log_type``."""

    name = "ocsf-json"
    log_types = (ocsf.LOG_TYPE,)

    def detect_text(self, head: bytes, options: ReadOptions) -> bool:
        text = head.lstrip()
        if not self.allows(options) or not text.startswith(b"{"):
            return False
        obj = _first_object(text)
        return obj is not None and "p_log_type" not in obj and ocsf.detect_json(obj)

    def read_text(self, opened: Opened, source: str, options: ReadOptions,
                  stats: FileStats) -> BatchIter:
        return read_batches(opened, source, options, stats, ocsf.LOG_TYPE)


FORMAT = PantherJson()
OCSF_LINES = OcsfJson()


def numbered_batch(log_type: str, rows: Rows, source: str, stats: FileStats) -> Numbered | None:
    """One batch of ``log_type`` from numbered JSON objects, with each record's line; bad ones
    become rejections."""
    build = BUILDERS.get(log_type, GENERIC)
    objs = [obj for _, obj in rows]
    columns, reasons = build_columns(objs, *build.prepare(objs))
    for index, reason in sorted(reasons.items()):
        stats.reject(rows[index][0], reason)
    count = len(rows) - len(reasons)
    stats.accept(count)
    if count == 0:
        return None
    if reasons:
        keep = pa.array([i not in reasons for i in range(len(rows))])
        columns = {k: v.filter(keep) for k, v in columns.items()}
    lines = pa.array([line for i, (line, _) in enumerate(rows) if i not in reasons], pa.int64())
    return Numbered(build.finish(log_type, columns, count, source), lines)


def _vpcflow(log_type: str, columns: dict[str, pa.Array], rows: int, source: str) -> pa.RecordBatch:
    extra = tuple(F.Field(k, k, v.type, 0) for k, v in columns.items() if k not in VPC_TYPES)
    fields = tuple(F.BY_PANTHER[k] for k in columns if k in VPC_TYPES)
    return to_batch(columns, rows, (*fields, *extra), source)


def _vpcflow_known(objs: list[dict[str, Any]]) -> tuple[dict[str, pa.DataType], frozenset[str]]:
    for obj in objs:
        for key, value in obj.items():
            f = F.BY_PANTHER.get(key)
            if f is not None:
                obj[key] = _vpc_value(value, f)
    return VPC_TYPES, STANDARD_NAMES


def _vpc_value(value: Any, f: F.Field) -> Any:
    if value == "-" or value is None:
        return None
    if f.type == F.INT and isinstance(value, str) and value.isdigit():
        return int(value)
    if f.type == F.TIME:
        return _timestamp(value)
    return value


def _ocsf(log_type: str, columns: dict[str, pa.Array], rows: int, source: str) -> pa.RecordBatch:
    batch = _record_batch(columns)
    return ocsf.finish(batch, source)


def _ocsf_known(objs: list[dict[str, Any]]) -> tuple[dict[str, pa.DataType], frozenset[str]]:
    for obj in objs:
        ocsf.normalize_row(obj)
    return ocsf.KNOWN, STANDARD_NAMES


def _generic(log_type: str, columns: dict[str, pa.Array], rows: int, source: str) -> pa.RecordBatch:
    event = columns.pop("p_event_time")
    ips = pc.fill_null(columns.pop("p_any_ip_addresses"), pa.scalar([], IP_LIST))
    return with_standard(_record_batch(columns), log_type, source, event, ips)


def _generic_known(objs: list[dict[str, Any]]) -> tuple[dict[str, pa.DataType], frozenset[str]]:
    for obj in objs:
        if "p_event_time" in obj:
            obj["p_event_time"] = _timestamp(obj["p_event_time"])
    known = {"p_event_time": EVENT_TIME, "p_any_ip_addresses": IP_LIST}
    return known, STANDARD_NAMES - set(known)


def _record_batch(columns: dict[str, pa.Array]) -> pa.RecordBatch:
    if not columns:
        return pa.RecordBatch.from_pydict({})
    return pa.RecordBatch.from_pydict(columns)


def _timestamp(value: Any) -> Any:
    """A datetime for ISO-8601 / Panther timestamp strings and epoch numbers; else unchanged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        seconds = value / 1000 if value > F.MS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        if "." in text:
            head, _, frac = text.partition(".")
            digits = "".join(c for c in frac if c.isdigit())
            text = f"{head}.{digits[:6]}{frac[len(digits) :]}"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return value


@dataclass(frozen=True)
class Builder:
    """How one log type's JSON objects become a batch: prepare values, then finish columns."""

    prepare: Callable[[list[dict[str, Any]]], tuple[dict[str, pa.DataType], frozenset[str]]]
    finish: Callable[[str, dict[str, pa.Array], int, str], pa.RecordBatch]


GENERIC = Builder(_generic_known, _generic)
BUILDERS: dict[str, Builder] = {
    F.LOG_TYPE: Builder(_vpcflow_known, _vpcflow),
    ocsf.LOG_TYPE: Builder(_ocsf_known, _ocsf),
}
