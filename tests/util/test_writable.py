from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowwarden.errors import UsageError
from flowwarden.util.files import appender, size_of
from flowwarden.util.writable import check_dir_target, check_file_target


def test_a_writable_file_target_passes_and_leaves_nothing_behind(tmp_path: Path):
    check_file_target(tmp_path / "new.jsonl", "-o")
    (tmp_path / "old.jsonl").write_text("keep\n")
    check_file_target(tmp_path / "old.jsonl", "-o")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jsonl"]
    assert (tmp_path / "old.jsonl").read_text() == "keep\n"


@pytest.mark.parametrize(("relative", "message"), [
    ("missing/out.jsonl", "the directory .*missing does not exist"),
    ("afile/out.jsonl", "afile is not a directory"),
    ("adir", "is a directory"),
])
def test_file_targets_that_cannot_be_written(tmp_path: Path, relative: str, message: str):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    with pytest.raises(UsageError, match=message):
        check_file_target(tmp_path / relative, "--stats")


def test_a_pipe_target_is_checked_without_waiting_for_a_reader(tmp_path: Path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    check_file_target(pipe, "-o")  # opening it would block until a reader came
    assert size_of(pipe) is None


def test_directory_targets(tmp_path: Path):
    check_dir_target(tmp_path / "a" / "b", "--output-dir")  # created later, by the writer
    assert not (tmp_path / "a").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is not a directory"):
        check_dir_target(tmp_path / "f" / "b", "--output-dir")
    with pytest.raises(UsageError, match="cannot create files in /proc"):
        check_dir_target("/proc/flowwarden-out", "--output-dir")


def test_appending_cuts_back_to_the_offset_first(tmp_path: Path):
    target = tmp_path / "a.jsonl"
    with appender(target, 0) as out:
        out.write(b"one\n")
    offset = size_of(target)
    assert offset == 4
    with appender(target, offset) as out:
        out.write(b'{"half')  # an interrupted append
    with appender(target, offset) as out:
        out.write(b"two\n")
    with appender(target, None) as out:
        out.write(b"three\n")
    assert target.read_text() == "one\ntwo\nthree\n"
