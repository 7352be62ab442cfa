"""Panther JSON lines: one object per line, any ``p_log_type``; batches group lines by type.

AWS.VPCFlow and OCSF.NetworkActivity lines are cast to the native readers' schemas (a value that
will not cast rejects its line); other log types are inferred per batch, conflicting types kept
as a dense union so each value comes back as given.

Two formats read these lines: ``PantherJson`` (lines naming their ``p_log_type``, or any JSON
lines under a forced ``--log-type``) and ``OcsfJson`` (OCSF events without ``p_log_type``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.logs import fields as F
from flowwarden.logs import indicators as I
from flowwarden.logs.common import (
    EVENT_TIME,
    IP_LIST,
    STANDARD_NAMES,
    Numbered,
    printable,
    with_standard,
)
from flowwarden.logs.formats import ocsf, vpcflow_header
from flowwarden.logs.formats.base import BatchIter, FormatBase
from flowwarden.logs.formats.vpcflow_text import to_batch
from flowwarden.logs.jsonrows import build_columns, loads
from flowwarden.logs.limits import (
    MAX_DIGITS,
    TIME_MAX_MS,
    int_range,
    python_number,
    range_reason,
    time_reason,
)
from flowwarden.logs.lines import after_chunk, line_chunks
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.streams import Opened

Rows = list[tuple[int, dict[str, Any]]]
LOOKAHEAD = 20
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
VPC_TYPES: dict[str, pa.DataType] = {f.panther: f.type for f in F.FIELDS}


def detect(head: bytes) -> bool:
    """Whether the first JSON object in ``head`` carries ``p_log_type``."""
    obj = first_object(head)
    return obj is not None and isinstance(obj.get("p_log_type"), str)


def first_object(head: bytes) -> dict[str, Any] | None:
    """The JSON object on the first line of ``head`` that holds one (among its first
    ``LOOKAHEAD`` non-blank lines, so that a stray first line does not hide the format), or
    None. A line that is a flow log header or record ends the search: that is flow log text.

    >>> first_object(b"oops\\n{\\"a\\": 1}\\n"), first_object(b"version srcaddr\\n{}\\n")
    ({'a': 1}, None)
    """
    lines = [line for line in head.split(b"\n", 1000)[:1000] if line.strip()][:LOOKAHEAD]
    for line in lines:
        if not line.lstrip().startswith(b"{"):
            if vpcflow_header.detect(line):
                return None
            continue
        obj, _ = loads(line.decode("utf-8", errors="replace"))
        if obj is not None:
            return obj
    return None


def json_head(head: bytes) -> bool:
    """Whether ``head`` starts with a JSON object, or one follows a few stray lines."""
    return head.lstrip().startswith(b"{") or first_object(head) is not None


def read_batches(
    opened: Opened,
    source: str,
    options: ReadOptions,
    stats: FileStats,
    default_log_type: str | None = None,
) -> Iterator[Numbered]:
    """Parse JSON lines into batches, one log type per batch, with each record's line."""
    line_no = 0
    size = max(options.batch_size * 256, 1 << 16)
    for chunk in line_chunks(opened, size, options.max_line_bytes):
        groups: dict[str, Rows] = {}
        for text in chunk.data.decode("utf-8", errors="replace").split("\n")[:-1]:
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
        line_no = after_chunk(chunk, line_no, options.max_line_bytes, stats)
        if chunk.error is not None:
            return


class PantherJson(FormatBase):
    """JSON lines naming their ``p_log_type``; with ``--log-type``, any JSON lines (a line
    without ``p_log_type`` then takes the forced one)."""

    name = "panther-json"

    def detect_text(self, head: bytes, options: ReadOptions) -> bool:
        return json_head(head) and (options.log_type is not None or detect(head))

    def read_text(self, opened: Opened, source: str, options: ReadOptions,
                  stats: FileStats) -> BatchIter:
        return read_batches(opened, source, options, stats, options.log_type)


class OcsfJson(FormatBase):
    """OCSF Network Activity events as JSON lines without ``p_log_type``."""

    name = "ocsf-json"
    log_types = (ocsf.LOG_TYPE,)

    def detect_text(self, head: bytes, options: ReadOptions) -> bool:
        if not self.allows(options):
            return False
        obj = first_object(head)
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
    prepared = build.prepare(objs)
    columns, reasons = build_columns(objs, prepared.known, prepared.skip)
    for index, reason in {**prepared.reasons, **build.check(columns)}.items():
        reasons.setdefault(index, reason)
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


class Prepared(NamedTuple):
    """Objects made ready for ``build_columns``: the declared column types, the keys to leave
    out, and the objects (by index) already rejected, with the reason."""

    known: dict[str, pa.DataType]
    skip: frozenset[str]
    reasons: dict[int, str]


def _vpcflow(log_type: str, columns: dict[str, pa.Array], rows: int, source: str) -> pa.RecordBatch:
    extra = tuple(F.Field(k, k, v.type, 0) for k, v in columns.items() if k not in VPC_TYPES)
    fields = tuple(F.BY_PANTHER[k] for k in columns if k in VPC_TYPES)
    return to_batch(columns, rows, (*fields, *extra), source)


def _vpcflow_known(objs: list[dict[str, Any]]) -> Prepared:
    reasons: dict[int, str] = {}
    for index, obj in enumerate(objs):
        for key, value in obj.items():
            f = F.BY_PANTHER.get(key)
            if f is not None:
                obj[key], reason = _vpc_value(value, f)
                if reason is not None:
                    reasons.setdefault(index, reason)
    return Prepared(VPC_TYPES, STANDARD_NAMES, reasons)


def _vpc_value(value: Any, f: F.Field) -> tuple[Any, str | None]:
    """A flow log field's JSON value as its column takes it, or why it is bad (values of the
    wrong kind are left for the cast to reject)."""
    if value == "-" or value is None:
        return None, None
    if f.type == F.TIME:
        return _timestamp(value, f.panther)
    if f.type != F.INT:
        return value, None
    low, high = int_range(f.panther)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= MAX_DIGITS:
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not python_number(value, low, high):
            return None, range_reason(f.panther, value, low, high)
        return int(value), None
    return value, None


def _ocsf(log_type: str, columns: dict[str, pa.Array], rows: int, source: str) -> pa.RecordBatch:
    batch = _record_batch(columns)
    return ocsf.finish(batch, source)


def _ocsf_known(objs: list[dict[str, Any]]) -> Prepared:
    for obj in objs:
        ocsf.normalize_row(obj)
    return Prepared(ocsf.KNOWN, STANDARD_NAMES, {})


def _ocsf_check(columns: dict[str, pa.Array]) -> dict[int, str]:
    return ocsf.out_of_range(columns)


def _generic(log_type: str, columns: dict[str, pa.Array], rows: int, source: str) -> pa.RecordBatch:
    event = columns.pop("p_event_time")
    # Other log types carry their indicator fields as given (absent: empty, as in the readers)
    found = {name: pc.fill_null(columns.pop(name), pa.scalar([], IP_LIST)) for name in I.NAMES}
    return with_standard(_record_batch(columns), log_type, source, event, found)


def _generic_known(objs: list[dict[str, Any]]) -> Prepared:
    reasons: dict[int, str] = {}
    for index, obj in enumerate(objs):
        if obj.get("p_event_time") is not None:
            obj["p_event_time"], reason = _timestamp(obj["p_event_time"], "p_event_time")
            if reason is not None:
                reasons[index] = reason
    known = {"p_event_time": EVENT_TIME, **dict.fromkeys(I.NAMES, IP_LIST)}
    return Prepared(known, STANDARD_NAMES - set(known), reasons)


def _no_check(columns: dict[str, pa.Array]) -> dict[int, str]:
    return {}


def _record_batch(columns: dict[str, pa.Array]) -> pa.RecordBatch:
    if not columns:
        return pa.RecordBatch.from_pydict({})
    return pa.RecordBatch.from_pydict(columns)


def _timestamp(value: Any, name: str) -> tuple[Any, str | None]:
    """A datetime for ISO-8601 / Panther timestamp strings and epoch numbers (seconds, or
    milliseconds when implausibly large), or why it is out of range; other values unchanged
    (the cast rejects them).

    >>> _timestamp(1e300, "start")[1]
    'start: 1e+300 is out of range (a time in 1970-01-01..9999-12-31)'
    """
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int | float):
        if not (isinstance(value, int) or math.isfinite(value)) or not 0 <= value <= TIME_MAX_MS:
            return None, time_reason(name, value)
        seconds = value / 1000 if value > F.MS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, UTC), None
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        if "." in text:
            head, _, frac = text.partition(".")
            digits = "".join(c for c in frac if c.isdigit())
            text = f"{head}.{digits[:6]}{frac[len(digits) :]}"
        try:
            moment = datetime.fromisoformat(text)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except ValueError:
            return value, None
        except OverflowError:
            return None, time_reason(name, printable(value))
        if moment < EPOCH:
            return None, time_reason(name, printable(value))
        return moment, None
    return value, None


@dataclass(frozen=True)
class Builder:
    """How one log type's JSON objects become a batch: prepare values, then finish columns."""

    prepare: Callable[[list[dict[str, Any]]], Prepared]
    finish: Callable[[str, dict[str, pa.Array], int, str], pa.RecordBatch]
    # Rows whose built columns hold values out of range, with the reason.
    check: Callable[[dict[str, pa.Array]], dict[int, str]] = _no_check


GENERIC = Builder(_generic_known, _generic)
BUILDERS: dict[str, Builder] = {
    F.LOG_TYPE: Builder(_vpcflow_known, _vpcflow),
    ocsf.LOG_TYPE: Builder(_ocsf_known, _ocsf, _ocsf_check),
}
