"""A Spark scan's alerts as compressed chunks: made on the executors, kept on the driver's disk.

Alerts travel to the driver a batch at a time, in order: each chunk (a row of ``CHUNK_SCHEMA``)
holds one batch's alerts, pickled and compressed together, and the errors their alert functions
raised. Pickled one by one they held 2 KB a piece in the driver's JVM, several times over while
results are fetched (a 1M-record scan's 372k alerts, ~0.9 GB, ran local mode's 4 GB heap out);
the samples' keys repeat, so a batch compresses to about an eighth. The driver keeps them so, in
a temporary file, as they arrive (``collect_alerts``, ``ChunkedAlerts``): as Python objects they
would take several KB each. Each chunk carries its alerts' JSON lines, identities
(``Alert.identity``) and count by rule too: made on the executors, in parallel, where the driver
would make them one by one from the alerts; and when the scan's output is OCSF, its alerts'
findings (``findings``: their JSON lines, and their rows as Arrow, ``ChunkedFindings``).
"""

from __future__ import annotations

import bisect
import itertools
import pickle
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, overload

import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.alerts.formats.jsonl import alert_json
from flowwarden.alerts.formats.ocsf import finding_text, to_finding
from flowwarden.alerts.formats.securitylake import lake_table
from flowwarden.alerts.groupstore import GROUP_MEMORY_MB, IDS_PER_SORT, id_ranges, text_chunks
from flowwarden.alerts.model import Alert
from flowwarden.engine.scan import RuleError
from flowwarden.engine.spark.stream import arriving_batches
from flowwarden.util.duckfiles import spilling_database
from flowwarden.util.registered import registered
from flowwarden.util.spill import Place, Spill

CHUNK_SCHEMA = pa.schema([("alerts", pa.binary()), ("count", pa.int64()),
                          ("errors", pa.binary()), ("lines", pa.binary()),
                          ("identities", pa.binary()), ("rules", pa.binary()),
                          ("finding_lines", pa.binary()), ("findings", pa.binary())])
CHUNK_DDL = ("alerts binary, count long, errors binary, lines binary, identities binary, "
             "rules binary, finding_lines binary, findings binary")
CHUNK_LEVEL = 1  # zlib's fastest: nearly all of the gain at a few microseconds per alert


def chunk_batch(alerts: list[Alert], errors: list[RuleError], findings: bool = False
                ) -> pa.RecordBatch:
    """One chunk: ``alerts`` and the ``errors`` their alert functions raised; with
    ``findings``, their OCSF findings too (empty parts without)."""
    lines = "".join(alert_json(alert) + "\n" for alert in alerts)
    identities = "".join(alert.identity() + "\n" for alert in alerts)
    finding_lines, finding_rows = b"", b""
    if findings:
        made = [to_finding(alert) for alert in alerts]
        finding_lines = _compressed("".join(finding_text(f) + "\n" for f in made))
        finding_rows = zlib.compress(_ipc(lake_table(made)), CHUNK_LEVEL)
    return pa.RecordBatch.from_pydict(
        {"alerts": [pack(alerts)], "count": [len(alerts)], "errors": [pack(errors)],
         "lines": [_compressed(lines)], "identities": [_compressed(identities)],
         "rules": [pack(list(Counter(a.rule_id for a in alerts).items()))],
         "finding_lines": [finding_lines], "findings": [finding_rows]},
        schema=CHUNK_SCHEMA)


def _ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def pack(items: list[Any]) -> bytes:
    """``items`` as one compressed pickle (``unpack`` reads it)."""
    return zlib.compress(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL), CHUNK_LEVEL)


def unpack(blob: bytes | memoryview | pa.Buffer) -> list[Any]:
    items: list[Any] = pickle.loads(zlib.decompress(blob))
    return items


def _compressed(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), CHUNK_LEVEL)


class Chunk(NamedTuple):
    """Where one chunk's parts are in the ``Spill`` (its alerts pickled, their errors, their
    JSON lines, their identities, their findings' lines and rows: each compressed), and how
    many alerts it holds."""

    alerts: Place
    size: int
    errors: Place
    lines: Place
    identities: Place
    finding_lines: Place | None = None
    findings: Place | None = None


class ChunkedAlerts(Sequence[Alert]):
    """Alerts in order, kept as the compressed chunks they arrived in, in a ``Spill`` (the
    driver's memory holds where each chunk is, not the alerts); a chunk is unpacked when read
    (the last one read is kept, for reads in order by index). Their JSON lines and identities
    are read as the executors wrote them (``json_lines``, ``identity_text``), their count by
    rule as the executors counted them (``count_by_rule``)."""

    def __init__(self, spill: Spill, chunks: Sequence[Chunk], by_rule: Mapping[str, int]
                 ) -> None:
        self._spill = spill
        self._chunks = list(chunks)
        self._by_rule = dict(by_rule)
        self._ends = list(itertools.accumulate(chunk.size for chunk in chunks))
        self._last: tuple[int, list[Alert]] = (-1, [])

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __iter__(self) -> Iterator[Alert]:
        for index in range(len(self._ends)):
            yield from self._chunk(index)

    @overload
    def __getitem__(self, index: int) -> Alert: ...

    @overload
    def __getitem__(self, index: slice) -> list[Alert]: ...

    def __getitem__(self, index: int | slice) -> Alert | list[Alert]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        chunk = bisect.bisect_right(self._ends, index)
        return self._chunk(chunk)[index - (self._ends[chunk - 1] if chunk else 0)]

    def _chunk(self, index: int) -> list[Alert]:
        if self._last[0] != index:
            self._last = (index, unpack(self._spill.read(self._chunks[index].alerts)))
        return self._last[1]

    def count_by_rule(self) -> dict[str, int]:
        """How many alerts each rule has (``AlertTable.count_by_rule``)."""
        return dict(self._by_rule)

    def json_lines(self) -> Iterator[bytes]:
        """Every alert's ``alert_json`` line, newline included, a chunk at a time, as the
        executors wrote them (``JsonLines``)."""
        for chunk in self._chunks:
            yield zlib.decompress(self._spill.read(chunk.lines))

    def identity_text(self) -> Iterator[bytes]:
        """Every alert's ``Alert.identity`` and a newline, by id (``AlertTable.identity_text``):
        sorted by DuckDB, which spills, a range of ids a query, rather than in a list; within
        the memory the duckdb engine's alert tables keep to (3.55M alerts: 3 s, a peak of
        450 MB, where DuckDB's 1 GB took 850 MB)."""
        with spilling_database("flowwarden-identities-", GROUP_MEMORY_MB) as con:
            con.execute("CREATE TABLE identities (line VARCHAR)")
            for chunk in self._chunks:
                text = zlib.decompress(self._spill.read(chunk.identities))
                lines = pc.split_pattern(pa.array([text.decode("utf-8")]), "\n")
                with registered(con, "new", pa.table({"line": pc.list_flatten(lines)})):
                    con.execute("INSERT INTO identities SELECT line FROM new WHERE line <> ''")
            # a line starts with its alert's id (unique, fixed length): its order is the id's
            for where in id_ranges(len(self), IDS_PER_SORT, "line"):
                yield from text_chunks(con, f"SELECT line || chr(10) FROM identities {where} "
                                            "ORDER BY line")


class ChunkedFindings(ChunkedAlerts):
    """``ChunkedAlerts`` whose chunks carry their findings (``ocsf.PreparedFindings``)."""

    def finding_lines(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            assert chunk.finding_lines is not None
            yield zlib.decompress(self._spill.read(chunk.finding_lines))

    def finding_tables(self) -> Iterator[pa.Table]:
        for chunk in self._chunks:
            assert chunk.findings is not None
            data = zlib.decompress(self._spill.read(chunk.findings))
            yield pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def collect_alerts(alerts: Any, findings: bool = False
                   ) -> tuple[ChunkedAlerts, Iterator[RuleError]]:
    """The alerts in ``AlertGrouper`` order, and the errors their alert functions raised (on
    the first events, as the local scanner runs them: once per alert), read chunk by chunk;
    ``findings``: the chunks carry their findings (``chunk_batch``), kept too.

    One job builds every partition in parallel; each chunk goes to a ``Spill`` as it arrives
    (``arriving_batches``), so neither the alerts nor their errors pile up in the driver.
    """
    spill = Spill(prefix="flowwarden-spark-alerts-")
    arrived: list[list[Chunk]] = []
    by_rule: Counter[str] = Counter()

    def keep(batch: pa.RecordBatch) -> None:
        def put(name: str) -> list[Place]:
            return [spill.add(value.as_buffer()) for value in batch.column(name)]

        for counts in batch.column("rules"):
            by_rule.update(dict(unpack(counts.as_buffer())))
        made = ([put("finding_lines"), put("findings")] if findings
                else [[None] * batch.num_rows] * 2)
        arrived.append([Chunk(*parts) for parts in zip(
            put("alerts"), batch.column("count").to_pylist(), put("errors"), put("lines"),
            put("identities"), *made, strict=True)])

    chunks = [chunk for index in arriving_batches(alerts, keep) for chunk in arrived[index]]
    raised = (error for chunk in chunks for error in unpack(spill.read(chunk.errors)))
    kind = ChunkedFindings if findings else ChunkedAlerts
    return kind(spill, chunks, by_rule), raised
