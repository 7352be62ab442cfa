"""Atomic local writes: a reader never sees half a file, and a killed write leaves the old one.

Every file flowwarden writes whole (alert files, Security Lake objects on disk, ``--stats``,
``parse --to parquet``) goes through ``atomic_writer``: the data goes to a hidden temporary file
beside the target, which replaces the target by one rename once it is complete.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
>>> with atomic_writer(target, "w") as out:
...     _ = out.write("done")
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('done', ['out.txt'])
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def temporary_beside(target: Path) -> Path:
    """The temporary name used while ``target`` is written (hidden, same directory)."""
    return target.with_name(f".{target.name}.tmp")


@contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """A file opened in ``mode`` ("w" or "wb") that replaces ``path`` when the block completes.

    If the block raises, the target is untouched and the temporary file is removed. A target
    that exists and is not a regular file (``/dev/null``, ``/dev/stdout``, a named pipe) is
    written directly: renaming over it would replace the device with a file.
    """
    target = Path(path)
    encoding = None if "b" in mode else "utf-8"
    if target.exists() and not target.is_file():
        with open(target, mode, encoding=encoding) as out:
            yield out
        return
    tmp = temporary_beside(target)
    try:
        with open(tmp, mode, encoding=encoding) as out:
            yield out
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` (bytes, or text as UTF-8) as the whole content of ``path``, atomically."""
    with atomic_writer(path, "w" if isinstance(data, str) else "wb") as out:
        out.write(data)


@contextmanager
def appender(path: str | os.PathLike[str], offset: int | None) -> Iterator[IO[bytes]]:
    """``path`` opened for appending at ``offset`` (created if missing): whatever lies beyond
    ``offset`` is cut off first, so appending the same bytes again after an interrupted append
    gives the file one copy of them. ``offset`` None, or a target that is not a regular file
    (a device, a pipe), appends at the end. The data is on disk when the block completes."""
    target = Path(path)
    if target.exists() and not target.is_file():
        with open(target, "ab") as out:
            yield out
        return
    with open(target, "ab") as out:
        if offset is not None and out.tell() > offset:
            out.truncate(offset)
        yield out
        out.flush()
        os.fsync(out.fileno())


def same_file(path: str | os.PathLike[str] | None, other: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` and ``other`` name the same file (links and relative parts resolved).

    >>> same_file("a/../b.duckdb", "b.duckdb"), same_file(None, "b.duckdb")
    (True, False)
    """
    return (path is not None and other is not None
            and os.path.realpath(path) == os.path.realpath(other))


def size_of(path: str | os.PathLike[str]) -> int | None:
    """The size of a regular file (0 if it does not exist); None for a device or pipe."""
    target = Path(path)
    if not target.exists():
        return 0
    return target.stat().st_size if target.is_file() else None
