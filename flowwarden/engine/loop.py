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

# Phase 1 batches hold a few columns, so they are larger: fewer queries, less overhead each.
PHASE_ONE_BATCH = 1 << 18

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


def narrowed(batches: Iterable[BatchLike], columns: Sequence[str] | None) -> Iterable[BatchLike]:
    """``batches`` as phase 1 reads them: a ``LogReader`` is read with only ``columns`` (plus any
    its options already name); anything else, or ``columns`` None, is returned as it is."""
    if columns is None or not isinstance(batches, LogReader):
        return batches
    wanted = sorted({*columns, *(batches.options.columns or ())})
    return batches.projected(wanted, max(batches.options.batch_size, PHASE_ONE_BATCH))


def scan_loop(batches: Iterable[BatchLike], scanners: Sequence[Scanner],
              progress: Progress | None = None, *, extra_columns: Sequence[str] = (),
              observe: Callable[[pa.RecordBatch], None] | None = None) -> None:
    """Feed every batch to every scanner. ``extra_columns`` are read besides the scanners' own
    (for ``observe``, which sees each phase-1 batch first)."""
    for item in narrowed(batches, phase_one_columns(scanners, extra_columns)):
        if observe is not None:
            observe(item.batch)
        for scanner in scanners:
            scanner.add_batch(item)
        if progress is not None:
            progress(item.batch.num_rows)
