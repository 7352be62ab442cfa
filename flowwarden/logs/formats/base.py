"""The ``LogFormat`` protocol: what the reader needs from an input format.

A format recognises its inputs from their content (the decompressed head of a text input, or a
Parquet file's schema) and reads them into Arrow record batches, counting every record in the
file's ``FileStats``. Detection sees the ``ReadOptions``, so a forced ``log_type`` or ``format``
can decide. The reader asks the formats of ``flowwarden.logs.formats.FORMATS`` in their order
and reads an input with the first that claims it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden.logs.common import Numbered, Projected
from flowwarden.logs.model import FileStats, ReadOptions
from flowwarden.logs.streams import Opened

BatchIter = Iterator[pa.RecordBatch | Projected | Numbered]


class LogFormat(Protocol):
    """One input format: a name, the log types its batches carry, detection and reading.

    ``log_types`` is empty for a format whose records name their own log type (Panther JSON).
    ``read_text`` and ``read_parquet`` yield batches of one log type each (or ``Projected``
    ones for a projected read), wrapped in ``Numbered`` where the format knows each record's
    line; ``dictionary_columns`` names the Parquet columns a read should
    take dictionary-encoded.
    """

    name: str
    log_types: tuple[str, ...]

    def detect_text(self, head: bytes, options: ReadOptions) -> bool:
        """Whether this format reads the text input whose decompressed head is ``head``."""
        ...

    def read_text(self, opened: Opened, source: str, options: ReadOptions,
                  stats: FileStats) -> BatchIter:
        """The batches of a text input this format detected."""
        ...

    def detect_parquet(self, schema: pa.Schema, options: ReadOptions) -> bool:
        """Whether this format reads a Parquet file with ``schema``."""
        ...

    def read_parquet(self, file: pq.ParquetFile, source: str, options: ReadOptions,
                     stats: FileStats) -> BatchIter:
        """The batches of a Parquet file this format detected."""
        ...

    def dictionary_columns(self, schema: pa.Schema, options: ReadOptions) -> list[str]:
        """The columns of a Parquet file with ``schema`` to read dictionary-encoded."""
        ...


class FormatBase(LogFormat):
    """A format that claims nothing: subclasses override the text or the Parquet half."""

    name = ""
    log_types: tuple[str, ...] = ()

    def detect_text(self, head: bytes, options: ReadOptions) -> bool:
        return False

    def read_text(self, opened: Opened, source: str, options: ReadOptions,
                  stats: FileStats) -> BatchIter:
        raise NotImplementedError(f"{self.name} reads no text")

    def detect_parquet(self, schema: pa.Schema, options: ReadOptions) -> bool:
        return False

    def read_parquet(self, file: pq.ParquetFile, source: str, options: ReadOptions,
                     stats: FileStats) -> BatchIter:
        raise NotImplementedError(f"{self.name} reads no Parquet")

    def dictionary_columns(self, schema: pa.Schema, options: ReadOptions) -> list[str]:
        return []

    def allows(self, options: ReadOptions) -> bool:
        """Whether a forced ``options.log_type``, if any, is one of this format's log types."""
        return options.log_type is None or options.log_type in self.log_types
