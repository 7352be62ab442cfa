"""Temporary directories that outlive no process for long: a scan's groups, the alerts' spill
databases, a report's spill.

A process the kernel kills (SIGKILL, the out-of-memory killer) or a machine that loses power
removes nothing, and a 10M-record scan's group database is gigabytes. So each directory holds
an ``OWNER`` file its process keeps locked (``flock``) while it lives; the kernel drops the
lock when the process ends, however it ends. Making a directory first removes the ones beside
it whose lock nobody holds: the leftovers of processes that are gone. A lock, unlike a process
id, cannot be mistaken for a new process that reuses the id, and a directory whose owner still
runs (another scan) is never touched.

>>> with scratch_directory("flowwarden-doctest-") as folder:
...     print(folder.name.startswith("flowwarden-doctest-"), (folder / OWNER).is_file())
True True
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so nothing is swept and nothing is at risk
    fcntl = None  # type: ignore[assignment]

OWNER = ".flowwarden-owner"
PREFIX = "flowwarden-"  # every scratch directory's name starts so; others are never swept


class ScratchDirectory:
    """A new directory ``prefix``... in ``parent`` (the temporary directory by default), locked
    by this process until ``cleanup`` removes it (see the module)."""

    def __init__(self, prefix: str, parent: str | os.PathLike[str] | None = None) -> None:
        if not prefix.startswith(PREFIX):
            raise ValueError(f"a scratch directory's prefix starts with {PREFIX!r}: {prefix!r}")
        self.parent = Path(parent if parent is not None else tempfile.gettempdir())
        sweep(self.parent)
        self.name = tempfile.mkdtemp(prefix=prefix, dir=self.parent)
        self._lock = _hold(Path(self.name))

    @property
    def path(self) -> Path:
        return Path(self.name)

    def cleanup(self) -> None:
        """Remove the directory and everything in it (once; later calls do nothing)."""
        if self._lock is None:
            return
        shutil.rmtree(self.name, ignore_errors=True)
        os.close(self._lock)  # unlocked last: a sweep never sees a locked-then-freed half
        self._lock = None


@contextmanager
def scratch_directory(prefix: str, parent: str | os.PathLike[str] | None = None
                      ) -> Iterator[Path]:
    """A ``ScratchDirectory`` for the block, removed after it."""
    folder = ScratchDirectory(prefix, parent)
    try:
        yield folder.path
    finally:
        folder.cleanup()


def sweep(parent: str | os.PathLike[str]) -> list[Path]:
    """Remove the scratch directories in ``parent`` whose owner is gone; returns them.

    A directory without an ``OWNER`` file (an older version's, or one being made this instant)
    is left alone: only a lock proves its process is gone."""
    if fcntl is None:
        return []
    candidates: list[Path] = []
    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        candidates = [Path(e.path) for e in entries
                      if e.name.startswith(PREFIX) and e.is_dir(follow_symlinks=False)]
    return [folder for folder in sorted(candidates) if _remove_if_orphaned(folder)]


def _hold(folder: Path) -> int | None:
    """Lock a new ``OWNER`` file in ``folder`` for as long as this process lives. It is locked
    under another name and then renamed, so a sweep never finds it unlocked."""
    if fcntl is None:
        return None
    staging = folder / f"{OWNER}.new"
    handle = os.open(staging, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.replace(staging, folder / OWNER)
    return handle


def _remove_if_orphaned(folder: Path) -> bool:
    assert fcntl is not None
    try:
        handle = os.open(folder / OWNER, os.O_RDWR)
    except OSError:  # no owner file (or not ours to open): not provably orphaned
        return False
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its owner holds it: alive
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()
    finally:
        os.close(handle)
