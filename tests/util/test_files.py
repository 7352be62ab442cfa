from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from flowwarden.util.files import atomic_writer, write_atomic


def test_a_write_replaces_the_target_whole_and_leaves_no_temporary_file(tmp_path: Path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "out.jsonl"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_writer(target, "w") as out:
        out.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n" and len(list(tmp_path.iterdir())) == 1


def test_a_device_or_pipe_is_written_not_replaced(tmp_path: Path):
    write_atomic(os.devnull, b"alerts\n")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # still the device, not a file
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, b"line\n")
    reader.join(10)
    assert got == [b"line\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
