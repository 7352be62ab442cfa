"""A disk that fills up during a scan: one line that says so and where the scan writes, rather
than a traceback from whichever writer noticed first.

A scan writes beside itself: its groups' matches and picks (Parquet) and what their database
spills go under the temporary directory, about as much as the alert output.
"""

from __future__ import annotations

import errno
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from flowwarden.errors import UsageError
from flowwarden.runs.outbox import reason

_NO_ROOM = (errno.ENOSPC, errno.EDQUOT)
_NO_ROOM_TEXT = ("No space left on device", "Disk quota exceeded")


def out_of_room(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that found no room: an ``OSError`` (pyarrow's carry the errno
    in their text too) or DuckDB's ``IOException`` when it cannot write its temporary files.

    >>> out_of_room(OSError(errno.ENOSPC, "No space left on device"))
    True
    >>> out_of_room(duckdb.IOException('Could not write file "x.tmp": No space left on device'))
    True
    >>> out_of_room(OSError(errno.EACCES, "Permission denied"))
    False
    """
    if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
        return True
    return isinstance(exc, OSError | duckdb.IOException) and any(
        text in str(exc) for text in _NO_ROOM_TEXT)


@contextmanager
def room_to_scan() -> Iterator[None]:
    """Run a scan; a disk that fills up during it is a ``UsageError`` naming the temporary
    directory, which ``TMPDIR`` moves."""
    try:
        yield
    except (OSError, duckdb.IOException) as exc:
        if not out_of_room(exc):
            raise
        raise UsageError(
            f"no room left on disk during the scan ({reason(exc)}): a scan keeps its groups "
            f"under the temporary directory ({tempfile.gettempdir()}), about as much as its "
            "alert output; set TMPDIR to a disk with room") from None
