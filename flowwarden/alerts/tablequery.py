"""Alerts that stay in DuckDB: what a sink may query of a ``groupstore.AlertTable``.

A scan's alerts live in its ``SqlGrouper``'s tables: ``alerts`` (one row per alert, ``seq`` its
place in order), ``rules`` (what an alert falls back to), ``kept`` (each alert's first events by
``rank``: the first event's own alert values and every kept event's sample as alert JSON). A
sink that reads these tables with SQL writes millions of alerts without a Python object per
alert; ``QueriedAlerts`` tells such alerts apart from a plain list, which sinks still walk.

``ALERT_VALUES`` are the ``Alert`` fields (but its samples: ``alert_values``) as the alert's
``alert_json`` line holds them, as SQL over ``a`` (alerts), ``r`` (rules) and ``f`` (the kept
event of rank 1): text values as the values, JSON values as ``jsonl.dumps`` writes them, times
as BIGINT epoch microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import duckdb
import numpy as np
import pyarrow as pa

from flowwarden.alerts.model import Alert

READ_ROWS = 16384  # alerts per Arrow batch a sink reads
FIRST_CHUNK = 512  # alerts of a chunked read's first query, whose rows size the next ones
JOINED_SAMPLES = 8  # up to this many samples, each rank is a join (as ``groupstore`` does)


class GroupTables(Protocol):
    """The grouper's side: its connection, how many samples an alert keeps, and room in its
    database's memory for a query that needs more."""

    @property
    def con(self) -> duckdb.DuckDBPyConnection: ...

    @property
    def max_samples(self) -> int: ...

    @property
    def chunk_bytes(self) -> int:
        """Bytes of rows per query of a chunked read of the alerts (``SeqChunks``)."""
        ...

    def memory_at_least(self, megabytes: int) -> AbstractContextManager[None]:
        """Its database's memory limit at ``megabytes`` at least while inside."""
        ...


@runtime_checkable
class QueriedAlerts(Protocol):
    """Alerts held in DuckDB tables (``groupstore.AlertTable``), in ``seq`` order."""

    @property
    def grouper(self) -> GroupTables: ...

    @property
    def seqs(self) -> range:
        """The ``seq`` numbers of these alerts in the grouper's tables: all of them, or a part
        (as many as ``len``)."""
        ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice) -> Sequence[Alert]: ...


def _or(value: str) -> str:
    """The first event's value, or the rule's where it is None or empty (``make_alert``)."""
    return f"coalesce(nullif(f.{value}, ''), r.{value})"


ALERT_VALUES = {
    "id": "a.id", "rule_id": "a.rule", "rule_name": "r.title", "title": _or("title"),
    "severity": _or("severity"), "dedup": "a.dedup", "window_start": "a.window_us",
    "first_event_time": "a.first_us", "last_event_time": "a.last_us",
    "event_count": "a.events", "unique_count": "CASE WHEN a.uses_unique THEN a.uniques END",
    "threshold": "r.threshold", "mitre": "r.mitre_json", "runbook": _or("runbook"),
    "reference": _or("reference"), "description": _or("description"),
    "log_types": "r.log_types_json", "alert_context": "coalesce(f.context, 'null')",
    "destinations": "coalesce(f.destinations, 'null')",
}


@dataclass(frozen=True)
class AlertsFrom:
    """How a query reaches every alert's values: its FROM clause (over ``a``, ``r``, ``f``),
    and the SQL of the alert's samples as their JSON array and of its first sample (the first
    non-null one, as ``Alert.samples[0]``; NULL without one)."""

    tables: str
    samples: str
    first_sample: str


def alerts_from(max_samples: int) -> AlertsFrom:
    """``AlertsFrom`` for alerts that keep up to ``max_samples`` samples: one row per alert."""
    base = "alerts a JOIN rules r USING (rule) JOIN kept f ON f.seq = a.seq AND f.rank = 1"
    if not max_samples:
        return AlertsFrom(base, "'[]'", "NULL::VARCHAR")
    if max_samples <= JOINED_SAMPLES:
        ranks = range(2, max_samples + 1)
        joins = "".join(f" LEFT JOIN kept k{rank} ON k{rank}.seq = a.seq AND k{rank}.rank = {rank}"
                        for rank in ranks)
        texts = ", ".join(["f.sample", *(f"k{rank}.sample" for rank in ranks)])
        return AlertsFrom(base + joins, f"('[' || concat_ws(', ', {texts}) || ']')",
                          f"coalesce({texts})")
    return AlertsFrom(
        f"{base} LEFT JOIN (SELECT seq, string_agg(sample, ', ' ORDER BY rank) AS texts, "
        "arg_min(sample, rank) AS first FROM kept "
        f"WHERE rank <= {int(max_samples)} AND sample IS NOT NULL GROUP BY seq) s ON s.seq = a.seq",
        "('[' || coalesce(s.texts, '') || ']')", "s.first")


def alert_values(max_samples: int) -> dict[str, str]:
    """``ALERT_VALUES`` with the samples of alerts keeping up to ``max_samples``."""
    return {**ALERT_VALUES, "samples": alerts_from(max_samples).samples}


def seq_chunks(seqs: range | int, size: int) -> Iterator[range]:
    """The ``seq`` numbers ``seqs`` (an int: the first that many), ``size`` at a time (one
    query each).

    >>> list(seq_chunks(5, 2)), list(seq_chunks(range(3, 6), 2))
    ([range(0, 2), range(2, 4), range(4, 5)], [range(3, 5), range(5, 6)])
    """
    if isinstance(seqs, int):
        seqs = range(seqs)
    for start in range(0, len(seqs), size):
        yield seqs[start:start + size]


class SeqChunks:
    """The ``seq`` ranges of ``count`` alerts, a query apiece: ``first`` alerts, then as many as
    make about ``budget`` bytes by the rows read so far (``observe``), ``most`` at most. A fixed
    number of alerts a query ran out of the database's memory where rows are long (an alert's
    line, its finding) or memory short.

    >>> chunks = SeqChunks(10, budget=300, most=4, first=2)
    >>> next(chunks)
    range(0, 2)
    >>> chunks.observe(2, 200)  # rows of 100 bytes: 3 a query
    >>> next(chunks), next(chunks)
    (range(2, 5), range(5, 8))
    >>> chunks.observe(1, 300)  # now 500 bytes in 3 rows
    >>> list(chunks)
    [range(8, 9), range(9, 10)]
    """

    def __init__(self, count: int, budget: int, most: int, first: int = FIRST_CHUNK) -> None:
        self.count, self.budget, self.most, self.first = count, budget, most, first
        self.start = self.rows = self.bytes = 0

    def observe(self, rows: int, size: int) -> None:
        """Rows read, and their bytes."""
        self.rows += rows
        self.bytes += size

    def __iter__(self) -> SeqChunks:
        return self

    def read(self, con: duckdb.DuckDBPyConnection, select: Callable[[range], str],
             rows: int = READ_ROWS) -> Iterator[pa.RecordBatch]:
        """``select(seqs)``'s rows for each chunk in turn, in Arrow batches of ``rows``, each
        batch counted as it is handed on (so the next chunks are sized by them)."""
        for seqs in self:
            for batch in read_batches(con, select(seqs), rows):
                self.observe(batch.num_rows, batch.nbytes)
                yield batch

    def __next__(self) -> range:
        if self.start >= self.count:
            raise StopIteration
        size = self.budget * self.rows // self.bytes if self.bytes else self.first
        stop = min(self.start + max(1, min(self.most, size)), self.count)
        seqs, self.start = range(self.start, stop), stop
        return seqs


def in_seqs(seqs: range, column: str = "seq") -> str:
    """The SQL condition that ``column`` is one of ``seqs`` (a step-1 range).

    >>> in_seqs(range(2, 4), "a.seq")
    'a.seq >= 2 AND a.seq < 4'
    """
    return f"{column} >= {int(seqs.start)} AND {column} < {int(seqs.stop)}"


def read_batches(con: duckdb.DuckDBPyConnection, sql: str, rows: int = READ_ROWS
                 ) -> Iterator[pa.RecordBatch]:
    """The rows of ``sql`` in Arrow batches, on a cursor of their own."""
    cursor = con.cursor()
    try:
        reader = cursor.sql(sql).to_arrow_reader(rows)
        yield from reader
    finally:
        cursor.close()


def joined_text(lines: pa.Array | pa.ChunkedArray) -> bytes:
    """The text of a string array's values, one after the other (no copy per value)."""
    if isinstance(lines, pa.ChunkedArray):
        return b"".join(joined_text(chunk) for chunk in lines.chunks)
    if not pa.types.is_large_string(lines.type):
        lines = lines.cast(pa.large_string())
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return bytes(lines.buffers()[2].slice(first, last - first).to_pybytes())
