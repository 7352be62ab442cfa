"""Row ranges of a projected Parquet read (``flowwarden.logs.parquet``)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden.logs.parquet import RowRanges, locked


def _ranges() -> RowRanges:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": range(10), "b": list("abcdefghij")}), buffer, row_group_size=4)
    return RowRanges(pq.ParquetFile(buffer), ["b"], batch_size=3, source="mem")


def test_first_phase_batches_are_read_under_the_ranges_lock() -> None:
    # The first phase reads ahead in a background thread while the consumer asks for ranges of
    # the same file; a Parquet reader used from two threads at once crashed the process.
    ranges = _ranges()
    seen: list[bool] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for i in range(3):
            seen.append(ranges.lock.locked())
            yield pa.record_batch({"a": [i]})

    got = [b.column(0)[0].as_py() for b in locked(batches(), ranges)]
    assert got == [0, 1, 2] and seen == [True, True, True]
    assert not ranges.lock.locked()
    assert ranges.read(2, 5).column("b").to_pylist() == ["c", "d", "e"]


def test_without_ranges_batches_pass_through() -> None:
    batches = [pa.record_batch({"a": [1]}), pa.record_batch({"a": [2]})]
    assert list(locked(iter(batches), None)) == batches
