"""Bytes kept on disk rather than in memory, read back by where they were put.

What a scan gathers for its caller (a Spark scan's alerts, compressed chunk by chunk) grows
with its output; held in memory it is a crash at scale. A ``Spill`` is an anonymous temporary
file (in ``TMPDIR``, gone when it is closed or the process ends): ``add`` appends and returns
the piece's place, ``read`` gives the piece back.

>>> spill = Spill()
>>> first, second = spill.add(b"abc"), spill.add(memoryview(b"de"))
>>> spill.read(second), spill.read(first), spill.size
(b'de', b'abc', 5)
>>> spill.close()
"""

from __future__ import annotations

import os
import tempfile
from typing import NamedTuple, TypeAlias

import pyarrow as pa

Buffer: TypeAlias = bytes | bytearray | memoryview | pa.Buffer


class Place(NamedTuple):
    """Where one piece is in a ``Spill``."""

    offset: int
    length: int


class Spill:
    """An append-only temporary file of pieces (see the module)."""

    def __init__(self, prefix: str = "flowwarden-spill-") -> None:
        # open for the spill's whole life, closed by ``close`` or with the object
        self._file = tempfile.TemporaryFile(prefix=prefix)  # noqa: SIM115
        self.size = 0

    def add(self, data: Buffer) -> Place:
        """Append ``data``; returns its place."""
        view = memoryview(data).cast("B")
        self._file.write(view)
        place = Place(self.size, len(view))
        self.size += len(view)
        return place

    def read(self, place: Place) -> bytes:
        """The piece at ``place``."""
        self._file.flush()
        return os.pread(self._file.fileno(), place.length, place.offset)

    def close(self) -> None:
        self._file.close()
