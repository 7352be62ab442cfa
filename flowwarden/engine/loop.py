"""The one scan loop: every scan, checkpointed run, watch step and backtest reads through it.

Phase 1 reads only the columns the scanners need (the union of ``Scanner.columns()``; complete
records when any scanner needs them), in batches of at least ``PHASE_ONE_BATCH`` rows. Every
record is still read and checked, so a reader's statistics and rejections are a full read's;
the scanners load complete records of the rows they keep (``LogBatch.full_rows``, phase 2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pyarrow as pa

from flowwarden.engine.scan import BatchLike, Scanner
from flowwarden.logs import LogReader

# Phase 1 batches hold a few columns, so they are larger than a full read's: fewer queries, less
# overhead each. While at most one row in RARE_SHARE of a batch matches (or needs Python), the
# next ones grow to RARE_BATCH rows: a scan where rules rarely match spends most of its time in
# per-batch costs, while one where most rows match would only hold more of them at once.
PHASE_ONE_BATCH = 1 << 18
RARE_BATCH = 1 << 20
RARE_SHARE = 100


class BatchSizing:
    """The size of phase 1's next batch, from how many rows of the last one the scanners
    handled (matches and rows run in Python).

    >>> sizing = BatchSizing()
    >>> sizing(), sizing.observe(PHASE_ONE_BATCH, 10) or sizing()
    (262144, 1048576)
    >>> sizing.observe(RARE_BATCH, RARE_BATCH // 2) or sizing()
    262144
    """

    def __init__(self) -> None:
        self.rows = PHASE_ONE_BATCH

    def __call__(self) -> int:
        return self.rows

    def observe(self, rows: int, handled: int) -> None:
        self.rows = RARE_BATCH if handled * RARE_SHARE <= rows else PHASE_ONE_BATCH


Progress = Callable[[int], None]


def phase_one_columns(scanners: Sequence[Scanner],
                      extra: Sequence[str] = ()) -> tuple[str, ...] | None:
    """The columns the scanners need together, or None when any needs complete records."""
    wanted: set[str] = set(extra)
    for scanner in scanners:
        columns = scanner.columns()
        if columns is None:
            return None
        wanted.update(columns)
    return tuple(sorted(wanted))


def narrowed(batches: Iterable[BatchLike], columns: Sequence[str] | None,
             sizing: BatchSizing | None = None) -> Iterable[BatchLike]:
    """``batches`` as phase 1 reads them: a ``LogReader`` is read with only ``columns`` (plus any
    its options already name), in batches ``sizing`` chooses (``PHASE_ONE_BATCH`` rows without
    it); anything else, or ``columns`` None, is returned as it is."""
    if columns is None or not isinstance(batches, LogReader):
        return batches
    wanted = sorted({*columns, *(batches.options.columns or ())})
    if sizing is None:
        return batches.projected(wanted, max(batches.options.batch_size, PHASE_ONE_BATCH))
    return batches.projected(wanted, max(batches.options.batch_size, RARE_BATCH), sizing)


def scan_loop(batches: Iterable[BatchLike], scanners: Sequence[Scanner],
              progress: Progress | None = None, *, extra_columns: Sequence[str] = (),
              observe: Callable[[pa.RecordBatch], None] | None = None) -> None:
    """Feed every batch to every scanner. ``extra_columns`` are read besides the scanners' own
    (for ``observe``, which sees each phase-1 batch first)."""
    sizing = BatchSizing()
    for item in narrowed(batches, phase_one_columns(scanners, extra_columns), sizing):
        if observe is not None:
            observe(item.batch)
        before = sum(scanner.handled for scanner in scanners)
        for scanner in scanners:
            scanner.add_batch(item)
        sizing.observe(item.batch.num_rows, sum(scanner.handled for scanner in scanners) - before)
        # Arrow's allocator keeps what a batch freed (hundreds of MB at heavy matches): given
        # back, so the process's peak is one batch's, not the allocator's high-water mark.
        pa.default_memory_pool().release_unused()
        if progress is not None:
            progress(item.batch.num_rows)
