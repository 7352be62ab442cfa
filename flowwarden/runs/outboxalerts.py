"""A committed run's alerts as the outbox holds them: JSON lines in the state file, read in
Arrow batches as they are delivered, so a run of millions of alerts is never all in memory.

JSONL sinks get the lines as they were written (``json_lines``); the others walk ``Alert``
objects made from the lines one batch at a time (``jsonl.alert_from_json``). A run delivered by
the process that committed it (``FreshRun``) is delivered from the scan's alert tables
instead, where its sinks query them in batches: OCSF, the Security Lake layout and a store
apart from the state would otherwise make an ``Alert`` of every line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import duckdb
import pyarrow as pa

from flowwarden.alerts.formats.jsonl import alert_from_json
from flowwarden.alerts.groupstore import CHUNK_SHARE, LINE_CHUNK, AlertTable
from flowwarden.alerts.model import Alert
from flowwarden.alerts.tablequery import GroupTables, SeqChunks, in_seqs, joined_text
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


class FreshRun(Sequence[Alert]):
    """A run's alerts both as the scan's tables (``tables``, what it committed) and as the
    outbox holds them (``outbox``), for the delivery that follows the commit in the same
    process: the sinks query the tables in batches (``tablequery.QueriedAlerts``), JSON lines
    are copied from the outbox, and a part (``--output`` is appended a half at a time) is
    both, of the same ``seqs``."""

    def __init__(self, tables: AlertTable, outbox: OutboxAlerts, seqs: range | None = None
                 ) -> None:
        self.seqs = tables.seqs if seqs is None else seqs
        if len(self.seqs) != len(outbox):
            raise ValueError(f"run {outbox.run}: {len(self.seqs)} alerts scanned, "
                             f"{len(outbox)} in the outbox")
        self.tables, self.outbox = tables, outbox

    @property
    def grouper(self) -> GroupTables:
        return self.tables.grouper

    def __len__(self) -> int:
        return len(self.outbox)

    @overload
    def __getitem__(self, index: int) -> Alert: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Alert]: ...

    def __getitem__(self, index: int | slice) -> Alert | Sequence[Alert]:
        if isinstance(index, int) or index.step not in (None, 1):
            return self.outbox[index]
        part = self.outbox[index]
        assert isinstance(part, OutboxAlerts)
        return FreshRun(self.tables, part, self.seqs[index])

    def __iter__(self) -> Iterator[Alert]:
        return iter(self.outbox)

    def json_lines(self) -> Iterator[bytes]:
        return self.outbox.json_lines()
