"""Flow log readers: one interface that streams Apache Arrow record batches with per-file stats.

>>> from flowwarden.logs import ReadOptions, read
>>> reader = read(["/nonexistent-dir-for-doctest/*.gz"], ReadOptions(batch_size=1024))
>>> sum(b.batch.num_rows for b in reader)
0
"""

from __future__ import annotations

from flowwarden.logs.model import (
    DEFAULT_OPTIONS,
    FileStats,
    InputObject,
    LogBatch,
    ReadOptions,
    Rejection,
    ScanStats,
)
from flowwarden.logs.reader import LogReader, read
from flowwarden.logs.sources import list_inputs

__all__ = [
    "DEFAULT_OPTIONS",
    "FileStats",
    "InputObject",
    "LogBatch",
    "LogReader",
    "ReadOptions",
    "Rejection",
    "ScanStats",
    "list_inputs",
    "read",
]
