"""Row ranges of a projected Parquet read (``flowwarden.logs.parquet``)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden.logs.parquet import RowRanges, complete_rows, locked


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


def test_complete_rows_read_only_the_runs_around_their_positions(monkeypatch) -> None:
    buffer = io.BytesIO()
    table = pa.table({"a": range(100), "b": [f"v{i}" for i in range(100)]})
    pq.write_table(table, buffer, row_group_size=10)
    raw = table.select(["a"]).slice(20, 80).to_batches()[0]  # a phase-1 batch: file rows 20-99
    asked: list[tuple[int, int]] = []
    original = RowRanges.read

    def recording(self: RowRanges, start: int, stop: int) -> pa.Table:
        asked.append((start, stop))
        return original(self, start, stop)

    monkeypatch.setattr(RowRanges, "read", recording)

    def rows(positions: list[int]) -> list[dict]:
        ranges = RowRanges(pq.ParquetFile(buffer), ["b"], batch_size=5, source="mem")
        return complete_rows(raw, 20, pa.array(positions), ["a", "b"], ranges).to_pylist()

    wanted = [1, 3, 6, 7, 50, 79]
    assert rows(wanted) == [{"a": 20 + p, "b": f"v{20 + p}"} for p in wanted]
    # a window of a decoded piece (5 rows) at a time: 1-3, 6-7, 50, 79
    assert asked == [(21, 24), (26, 28), (70, 71), (99, 100)]
    asked.clear()
    assert rows([50, 2]) == [{"a": 70, "b": "v70"}, {"a": 22, "b": "v22"}]
    assert asked == [(20, 100)]  # out of order: the batch's rows at once, as before
