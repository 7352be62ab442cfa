"""Snapshot files: expected output kept beside the tests, rewritten on request.

Run with FLOWWARDEN_UPDATE_SNAPSHOTS=1 to write the current output as the new snapshots, then
review the diff before committing it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

UPDATE = os.environ.get("FLOWWARDEN_UPDATE_SNAPSHOTS") == "1"


def assert_snapshot(actual: str, path: Path) -> None:
    """Compare `actual` with the file at `path` (or write it when updating)."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.is_file():
        pytest.fail(f"no snapshot {path}; run with FLOWWARDEN_UPDATE_SNAPSHOTS=1 to create it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            str(path), "actual"))
        pytest.fail(f"output differs from snapshot {path.name}:\n{diff}")
