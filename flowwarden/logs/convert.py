"""Write what a reader yields as normalized Parquet (one writer per log type) or JSON lines."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden.errors import Location, UsageError
from flowwarden.logs.model import LogBatch
from flowwarden.logs.pyrecords import to_records
from flowwarden.logs.reader import LogReader

Target = Literal["parquet", "jsonl"]


def write_normalized(reader: LogReader, to: Target, out: str | IO[Any]) -> None:
    """Stream every batch of ``reader`` to ``out`` (a path, a directory, or an open file).

    Parquet: one file per log type (``out`` itself for the first; ``<stem>.<LogType>.parquet``
    beside it for others, or ``<dir>/<LogType>.parquet`` when ``out`` is a directory); a batch
    whose schema differs opens a numbered part file. JSONL: one object per record, timestamps
    as ISO-8601 strings.
    """
    if to == "jsonl":
        _write_jsonl(reader, out)
    elif to == "parquet":
        _write_parquet(reader, out)
    else:
        raise UsageError(f"cannot convert to {to!r}: choose parquet or jsonl")


def _write_jsonl(reader: LogReader, out: str | IO[Any]) -> None:
    if isinstance(out, str):
        with open(out, "w", encoding="utf-8") as handle:
            _write_jsonl(reader, handle)
        return
    text = hasattr(out, "encoding")
    for item in reader:
        for row in to_records(item.batch):
            line = json.dumps(row, default=_json_value, separators=(",", ":")) + "\n"
            out.write(line if text else line.encode())


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


class _ParquetSinks:
    """Open Parquet writers keyed by (log type, schema)."""

    def __init__(self, out: str | IO[Any]) -> None:
        self.out = out
        self.writers: dict[tuple[str, pa.Schema], pq.ParquetWriter] = {}
        self.paths: set[str] = set()

    def write(self, item: LogBatch) -> None:
        schema = item.batch.schema.remove_metadata()
        key = (item.log_type, schema)
        if key not in self.writers:
            self.writers[key] = pq.ParquetWriter(self._target(item.log_type), schema)
        self.writers[key].write_batch(item.batch)

    def _target(self, log_type: str) -> str | IO[Any]:
        if not isinstance(self.out, str):
            if self.writers:
                raise UsageError("an open file can hold only one log type and schema")
            return self.out
        base = Path(self.out)
        if self.out.endswith(os.sep) or base.is_dir():
            base.mkdir(parents=True, exist_ok=True)
            candidate = base / f"{log_type}.parquet"
        elif not self.paths:
            candidate = base
        else:
            candidate = base.with_name(f"{base.stem}.{log_type}.parquet")
        number = 1
        final = candidate
        while str(final) in self.paths:
            number += 1
            final = candidate.with_name(f"{candidate.stem}.{number}.parquet")
        self.paths.add(str(final))
        return str(final)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _write_parquet(reader: LogReader, out: str | IO[Any]) -> None:
    sinks = _ParquetSinks(out)
    try:
        for item in reader:
            sinks.write(item)
    except OSError as exc:
        raise UsageError(f"cannot write Parquet: {exc}", Location(str(out))) from exc
    finally:
        sinks.close()
