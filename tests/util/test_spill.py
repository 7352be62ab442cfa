"""``Spill``: pieces put on disk come back whole, by place, in any order."""

from __future__ import annotations

import os

import pyarrow as pa

from flowwarden.util.spill import Spill


def test_pieces_come_back_by_place_from_a_file_not_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR read again
    spill = Spill(prefix="test-spill-")
    pieces = [os.urandom(n) for n in (0, 1, 70_000, 3)]
    places = [spill.add(pieces[0]), spill.add(bytearray(pieces[1])),
              spill.add(pa.py_buffer(pieces[2])), spill.add(memoryview(pieces[3]))]
    assert [spill.read(p) for p in reversed(places)] == pieces[::-1]
    assert spill.size == sum(map(len, pieces)) == places[-1].offset + places[-1].length
    # an anonymous file in TMPDIR: nothing named is left behind, its bytes are on disk
    assert list(tmp_path.iterdir()) == []
    assert os.fstat(spill._file.fileno()).st_size == spill.size
    spill.close()
