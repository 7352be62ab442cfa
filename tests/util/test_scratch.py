"""Scratch directories: removed by their process, or by the next one when it was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flowwarden.util.scratch import OWNER, ScratchDirectory, scratch_directory, sweep

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")

# A child that makes a scratch directory, says where, and waits for a line on stdin.
CHILD = """
import sys
from flowwarden.util.scratch import ScratchDirectory
folder = ScratchDirectory("flowwarden-test-", sys.argv[1])
(folder.path / "data").write_bytes(b"x" * 1000)
print(folder.name, flush=True)
sys.stdin.readline()
"""


def start_owner(parent: Path) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen([sys.executable, "-c", CHILD, str(parent)], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


def killed(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL


def test_a_killed_process_s_directory_is_removed_by_the_next_one(tmp_path):
    process, left = start_owner(tmp_path)
    killed(process)
    assert (left / "data").is_file()  # SIGKILL removed nothing
    with scratch_directory("flowwarden-other-", tmp_path) as mine:
        assert not left.exists()
        assert mine.is_dir()


def test_a_living_owner_s_directory_is_left_until_it_dies(tmp_path):
    process, alive = start_owner(tmp_path)
    try:
        assert sweep(tmp_path) == []
        with scratch_directory("flowwarden-other-", tmp_path):
            assert (alive / "data").is_file()
    finally:
        killed(process)
    assert sweep(tmp_path) == [alive]
    assert not alive.exists()


def test_this_process_s_own_directories_are_never_swept(tmp_path):
    first = ScratchDirectory("flowwarden-a-", tmp_path)
    second = ScratchDirectory("flowwarden-b-", tmp_path)
    assert sweep(tmp_path) == []
    assert first.path.is_dir() and second.path.is_dir()
    first.cleanup()
    second.cleanup()
    assert list(tmp_path.iterdir()) == []


def test_directories_without_an_owner_file_or_not_ours_are_left(tmp_path):
    older = tmp_path / "flowwarden-groups-old"  # an earlier version's: nothing proves it dead
    older.mkdir()
    foreign = tmp_path / "someone-else"
    foreign.mkdir()
    (foreign / OWNER).touch()  # unlocked, but not a flowwarden- name
    lone_file = tmp_path / "flowwarden-spark-1.log"
    lone_file.touch()
    assert sweep(tmp_path) == []
    assert older.is_dir() and foreign.is_dir() and lone_file.is_file()


def test_an_unlocked_owner_file_marks_a_directory_orphaned(tmp_path):
    orphan = tmp_path / "flowwarden-groups-x"
    orphan.mkdir()
    (orphan / OWNER).touch()
    (orphan / "matches.parquet").write_bytes(b"1")
    assert sweep(tmp_path) == [orphan]
    assert list(tmp_path.iterdir()) == []


def test_cleanup_removes_once_and_the_block_removes_on_error(tmp_path):
    folder = ScratchDirectory("flowwarden-c-", tmp_path)
    (folder.path / "f").write_text("x")
    folder.cleanup()
    folder.cleanup()
    assert not folder.path.exists()
    with pytest.raises(RuntimeError), scratch_directory("flowwarden-d-", tmp_path) as path:
        (path / "f").write_text("x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_a_missing_parent_is_an_error_and_a_foreign_prefix_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        ScratchDirectory("flowwarden-e-", tmp_path / "missing")
    with pytest.raises(ValueError, match="flowwarden-"):
        ScratchDirectory("groups-", tmp_path)


def test_the_default_parent_is_the_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    with scratch_directory("flowwarden-f-") as path:
        assert path.parent == tmp_path
    assert os.listdir(tmp_path) == []
