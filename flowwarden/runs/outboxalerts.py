"""A committed run's alerts as the outbox holds them: JSON lines in the state file, read in
Arrow batches as they are delivered, so a run of millions of alerts is never all in memory.

JSONL sinks get the lines as they were written (``json_lines``); the others walk ``Alert``
objects made from the lines one batch at a time (``jsonl.alert_from_json``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import duckdb
import pyarrow as pa

from flowwarden.alerts.formats.jsonl import alert_from_json
from flowwarden.alerts.groupstore import CHUNK_SHARE, LINE_CHUNK
from flowwarden.alerts.model import Alert
from flowwarden.alerts.tablequery import SeqChunks, in_seqs, joined_text
from flowwarden.runs.statefile import DAMAGE, damaged
from flowwarden.util.duckfiles import MEMORY_MB
from flowwarden.util.iterables import picked

BATCH = 4096  # alerts per batch read from the outbox
CHUNK_BYTES = (MEMORY_MB << 20) // CHUNK_SHARE  # lines a query apiece, of the state's memory


class OutboxAlerts(Sequence[Alert]):
    """The alerts ``start <= seq < stop`` of run ``run`` in the outbox of the state file at
    ``path`` (connection ``con``), in order."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, run: int,
                 start: int = 0, stop: int | None = None) -> None:
        self.con, self.path, self.run = con, path, run
        if stop is None:
            found = con.execute("SELECT count(*) FROM run_alerts WHERE run = ?", [run]).fetchone()
            stop = int(found[0]) if found else 0
        self.start, self.stop = start, max(start, stop)

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, index: int) -> Alert: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Alert]: ...

    def __getitem__(self, index: int | slice) -> Alert | Sequence[Alert]:
        chosen = picked(index, len(self))
        if isinstance(chosen, int):
            return next(iter(self[chosen:chosen + 1]))
        if chosen.step != 1:
            return list(self)[index]
        return OutboxAlerts(self.con, self.path, self.run, self.start + chosen.start,
                            self.start + max(chosen.start, chosen.stop))

    def __iter__(self) -> Iterator[Alert]:
        for batch in self._batches():
            for line in batch.column(0).to_pylist():
                try:
                    yield alert_from_json(line)
                except DAMAGE as exc:
                    raise damaged(self.path, exc, f"an alert of run {self.run}") from None

    def json_lines(self) -> Iterator[bytes]:
        """The alerts' lines, newlines included, in chunks."""
        for batch in self._batches():
            yield joined_text(batch.column(0))

    def _batches(self) -> Iterator[pa.RecordBatch]:
        if not len(self):
            return
        # A query per chunk of lines, each sorted on its own: one ORDER BY over a run's
        # millions of lines sorted gigabytes at once (twice the time of reading them, at 1M).
        def select(seqs: range) -> str:
            wanted = range(self.start + seqs.start, self.start + seqs.stop)
            return (f"SELECT alert FROM run_alerts WHERE run = {int(self.run)} AND "
                    f"{in_seqs(wanted)} ORDER BY seq")

        yield from SeqChunks(len(self), CHUNK_BYTES, LINE_CHUNK).read(self.con, select, BATCH)
