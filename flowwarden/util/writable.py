"""Checks that an output file or directory can be written, made before a scan starts.

A scan can take hours; finding out at its end that ``-o`` names a missing directory would throw
the work away (and exit 1, which a CI job reads as "alerts found"). The checks try what the
writers will do: create a file beside the target (atomic writes rename one into place, DuckDB
adds a WAL file there), open an existing target for appending. Trying beats ``os.access``,
which says yes to root and knows nothing of read-only file systems.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flowwarden.errors import Location, UsageError


def check_file_target(path: str | os.PathLike[str], option: str) -> None:
    """Raise UsageError unless ``path`` can be written as a file (created or replaced)."""
    target = Path(path)
    where = Location(str(path))
    if target.is_dir():
        raise UsageError(f"{option}: is a directory, not a file", where)
    if target.exists() and not target.is_file():
        # A device or pipe is written in place; opening a pipe here would wait for a reader.
        if not os.access(target, os.W_OK):
            raise UsageError(f"{option}: cannot write: permission denied", where)
        return
    parent = target.parent
    if not parent.exists():
        raise UsageError(f"{option}: the directory {parent} does not exist", where)
    if not parent.is_dir():
        raise UsageError(f"{option}: {parent} is not a directory", where)
    _probe_create(parent, option, where)
    if target.exists():
        _probe_open(target, option, where)


def check_dir_target(path: str | os.PathLike[str], option: str) -> None:
    """Raise UsageError unless ``path`` is a writable directory or one that can be created."""
    where = Location(str(path))
    existing = Path(path)
    while not existing.exists():
        if existing.parent == existing:
            raise UsageError(f"{option}: no part of the path exists", where)
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option}: {existing} is not a directory", where)
    _probe_create(existing, option, where)


def _probe_create(directory: Path, option: str, where: Location) -> None:
    try:
        handle, name = tempfile.mkstemp(dir=directory, prefix=".flowwarden-probe-")
    except OSError as exc:
        raise UsageError(f"{option}: cannot create files in {directory}: {exc.strerror}",
                         where) from None
    os.close(handle)
    os.unlink(name)


def _probe_open(target: Path, option: str, where: Location) -> None:
    try:
        with open(target, "ab"):
            pass
    except OSError as exc:
        raise UsageError(f"{option}: cannot write: {exc.strerror}", where) from None
