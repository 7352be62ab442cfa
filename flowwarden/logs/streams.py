"""Byte-stream helpers: gzip detection by magic bytes, a sniffed head, truncation-safe reads."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
HEAD_SIZE = 1 << 16
BLOCK_SIZE = 1 << 23
BOM = b"\xef\xbb\xbf"
CR_TO_LF = bytes.maketrans(b"\r", b"\n")
READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError)


class Readable(Protocol):
    """A binary stream to read from: a file, a gzip stream or ``_Prefixed``."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass
class Opened:
    """A decompressed stream: its first bytes (already read), the rest, and any read error."""

    head: bytes
    rest: Readable
    compressed: bool
    error: str | None = None


def open_content(raw: BinaryIO, raw_head: bytes) -> Opened:
    """Decompress ``raw`` (whose first bytes, already consumed, are ``raw_head``) if gzip.

    A UTF-8 byte order mark before the first line is dropped, and an input whose lines end in
    a bare CR (no LF in its head, but a CR) has its CRs read as LFs, so such inputs read as
    any other.
    """
    prefixed = _Prefixed(raw_head, raw)
    compressed = raw_head.startswith(GZIP_MAGIC)
    stream: Readable = gzip.GzipFile(fileobj=prefixed, mode="rb") if compressed else prefixed
    head, error = read_some(stream, HEAD_SIZE)
    head = head.removeprefix(BOM)
    if b"\r" in head and b"\n" not in head:
        return Opened(head.translate(CR_TO_LF), _Translated(stream), compressed, error)
    return Opened(head, stream, compressed, error)


def read_some(stream: Readable, size: int) -> tuple[bytes, str | None]:
    """Up to ``size`` bytes; on a read error (truncated gzip), the bytes before it and a reason."""
    parts: list[bytes] = []
    got = 0
    read1 = getattr(stream, "read1", stream.read)
    while got < size:
        try:
            chunk = read1(size - got)
        except READ_ERRORS as exc:
            return b"".join(parts), f"input ends early ({type(exc).__name__}: {exc})"
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts), None


def blocks(opened: Opened, size: int = BLOCK_SIZE) -> Iterator[tuple[bytes, str | None]]:
    """Blocks of decompressed bytes, the head first; the last one carries a read error, if any."""
    if opened.error is not None:
        yield opened.head, opened.error
        return
    first, error = read_some(opened.rest, max(size - len(opened.head), 1))
    yield opened.head + first, error
    while error is None:
        block, error = read_some(opened.rest, size)
        if not block and error is None:
            return
        yield block, error


class _Prefixed:
    """A binary reader that returns ``prefix`` and then continues with ``rest``."""

    def __init__(self, prefix: bytes, rest: Readable) -> None:
        self._prefix = prefix
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0:
                data, self._prefix = self._prefix + self._rest.read(), b""
                return data
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._rest.read(size)

    read1 = read

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0, /) -> int:
        raise io.UnsupportedOperation("a sniffed stream cannot seek")

    def close(self) -> None:
        self._rest.close()

    @property
    def closed(self) -> bool:
        return False


class _Translated:
    """A binary reader giving ``rest``'s bytes with every CR read as LF."""

    def __init__(self, rest: Readable) -> None:
        self._rest = rest
        self._read1 = getattr(rest, "read1", rest.read)

    def read(self, size: int = -1, /) -> bytes:
        return self._rest.read(size).translate(CR_TO_LF)

    def read1(self, size: int = -1, /) -> bytes:
        return bytes(self._read1(size)).translate(CR_TO_LF)

    def close(self) -> None:
        self._rest.close()
