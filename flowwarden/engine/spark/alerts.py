"""Dedup windows and thresholds as Spark aggregations; alerts assembled by ``AlertGrouper``.

Matches are grouped by (rule, dedup string, window start), the window being the tumbling,
epoch-aligned ``window_start`` computed next to the rule call. Per group Spark keeps the count,
the last event time, the distinct ``unique()`` values, the first event's rule result (pickled
from Python, or its compiled keys) and the first ``max_samples`` sample records (pickled, or
a compiled match's record struct: only these become Python dicts), "first" meaning the
smallest (event time, source, position), the key the local scanner orders by. Groups below their rule's threshold are
dropped in Spark; on the executors each remaining group becomes the ``Group`` state of an
``AlertGrouper``, whose own code turns it into the alert (id from ``alert_id``, MITRE entries,
the alert functions run on the first event's record, as the local scanner runs them, their
errors sent back with the alert), the groups sorted by the grouper's key first; the driver keeps
the alerts as the compressed chunks they arrive in, on disk (``ChunkedAlerts``).
"""

from __future__ import annotations

import bisect
import itertools
import pickle
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, overload

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.alerts.formats.jsonl import alert_json
from flowwarden.alerts.grouping import (
    AlertGrouper,
    Complete,
    Group,
    GroupKey,
    OrderKey,
    from_micros,
    kept,
)
from flowwarden.alerts.groupstore import IDS_PER_SORT, id_ranges
from flowwarden.alerts.model import Alert
from flowwarden.alerts.tablequery import joined_text, read_batches
from flowwarden.engine.enrichment import panther_record
from flowwarden.engine.scan import MAX_ERROR_SAMPLES, RuleError
from flowwarden.engine.spark.keys import RECORD_ROW
from flowwarden.engine.spark.rules import PackSpec
from flowwarden.engine.spark.stream import arriving_batches
from flowwarden.rules.rule import ALERT_FUNCTIONS, Rule, RuleResult
from flowwarden.util.duckfiles import MEMORY_LIMIT
from flowwarden.util.registered import registered
from flowwarden.util.spill import Place, Spill

KEYS = ("rule_id", "dedup", "window_us")
FUNCTIONS = ("rule", *ALERT_FUNCTIONS)
# Alerts travel to the driver a batch at a time, in order: each row holds one batch's alerts,
# pickled and compressed together, and the errors their alert functions raised. Pickled one
# by one they held 2 KB a piece in the driver's JVM, several times over while results are
# fetched (a 1M-record scan's 372k alerts, ~0.9 GB, ran local mode's 4 GB heap out); the
# samples' keys repeat, so a batch compresses to about an eighth. The driver keeps them so, in
# a temporary file (``ChunkedAlerts``): as Python objects they would take several KB each.
# Each chunk carries its alerts' JSON lines, identities (``Alert.identity``) and count by rule
# too, compressed the same way: made on the executors, in parallel, where the driver would make
# them one by one from the alerts.
CHUNK_SCHEMA = pa.schema([("alerts", pa.binary()), ("count", pa.int64()),
                          ("errors", pa.binary()), ("lines", pa.binary()),
                          ("identities", pa.binary()), ("rules", pa.binary())])
CHUNK_DDL = ("alerts binary, count long, errors binary, lines binary, identities binary, "
             "rules binary")
CHUNK_LEVEL = 1  # zlib's fastest: nearly all of the gain at a few microseconds per alert


def group_frame(matches: Any, rules: Sequence[Rule], max_samples: int) -> Any:
    """One row per (rule, dedup, window) group that reached its rule's threshold."""
    from pyspark.sql import Window
    from pyspark.sql import functions as S

    order = Window.partitionBy(*KEYS).orderBy("event_us", "source", "position")
    ranked = matches.withColumn("rank", S.row_number().over(order))
    rank = S.col("rank")
    # a record travels pickled (Python's matches) or as a struct (compiled ones, per frame)
    records = ["record", *(c for c in matches.columns if c.startswith(RECORD_ROW))]
    first = S.struct("event_us", "source", "position", "result", "title", "unique", *records)
    sample = S.struct("rank", "event_us", "source", "position", *records)
    groups = ranked.groupBy(*KEYS).agg(
        S.count(S.lit(1)).alias("count"),
        S.max("event_us").alias("last_us"),
        S.collect_set("unique").alias("uniques"),
        S.min_by(first, rank).alias("first"),  # records need not be orderable: no max(struct)
        S.array_sort(S.collect_list(S.when(rank <= max_samples, sample)),
                     lambda a, b: S.signum(a["rank"] - b["rank"]).cast("int")).alias("samples"),
    )
    threshold = _by_rule({r.id: r.threshold for r in rules})
    uses_unique = _by_rule({r.id: r.function("unique") is not None for r in rules})
    reached = S.when(uses_unique, S.size("uniques")).otherwise(S.col("count"))
    return groups.where(reached >= threshold)


def _by_rule(values: dict[str, Any]) -> Any:
    from pyspark.sql import functions as S

    mapping = S.create_map(*[S.lit(v) for item in values.items() for v in item])
    return S.try_element_at(mapping, S.col("rule_id"))


def alert_frame(groups: Any, spec: PackSpec, max_samples: int) -> Any:
    """Each group's ``Alert``, built on the executors by ``AlertGrouper``, in chunks, in the
    grouper's order: the first event's time, source and position, then rule id and dedup.

    The groups are sorted before their alerts are built (a sort samples its input to choose
    its ranges: the groups are cheap to read again, the alerts' Python is not)."""
    from pyspark.sql import functions as S

    first = [S.col(f"first.{name}") for name in ("event_us", "source", "position")]
    ordered = groups.orderBy(*first, "rule_id", "dedup")
    return ordered.mapInArrow(_alerts_of_groups(spec, max_samples), CHUNK_DDL)


def _alerts_of_groups(spec: PackSpec, max_samples: int) -> Callable[
        [Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def build(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rules: dict[str, Rule] = {}
        for batch in batches:
            alerts: list[Alert] = []
            errors: list[RuleError] = []
            for row in batch.to_pylist():
                grouper = AlertGrouper(max_samples, _completer(spec, errors))
                if row["rule_id"] not in rules:
                    rules[row["rule_id"]] = spec.rules([row["rule_id"]])[0]
                _add_group(grouper, rules[row["rule_id"]], row)
                alerts.extend(grouper.alerts())
            if alerts:
                lines = "".join(alert_json(alert) + "\n" for alert in alerts)
                identities = "".join(alert.identity() + "\n" for alert in alerts)
                yield pa.RecordBatch.from_pydict(
                    {"alerts": [pack(alerts)], "count": [len(alerts)], "errors": [pack(errors)],
                     "lines": [_compressed(lines)], "identities": [_compressed(identities)],
                     "rules": [pack(list(Counter(a.rule_id for a in alerts).items()))]},
                    schema=CHUNK_SCHEMA)

    return build


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
    JSON lines, their identities: each compressed), and how many alerts it holds."""

    alerts: Place
    size: int
    errors: Place
    lines: Place
    identities: Place


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
        sorted by DuckDB, which spills, a range of ids a query, rather than in a list."""
        with tempfile.TemporaryDirectory(prefix="flowwarden-identities-") as folder:
            con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": folder})
            try:
                con.execute("CREATE TABLE identities (id VARCHAR, line VARCHAR)")
                for chunk in self._chunks:
                    text = zlib.decompress(self._spill.read(chunk.identities))
                    lines = pc.split_pattern(pa.array([text.decode("utf-8")]), "\n")
                    with registered(con, "new", pa.table({"line": pc.list_flatten(lines)})):
                        con.execute("INSERT INTO identities SELECT left(line, 32), line "
                                    "FROM new WHERE line <> ''")
                for where in id_ranges(len(self), IDS_PER_SORT):
                    for batch in read_batches(con, "SELECT line || chr(10) FROM identities "
                                              f"{where} ORDER BY id"):
                        yield joined_text(batch.column(0))
            finally:
                con.close()


def _completer(spec: PackSpec, errors: list[RuleError]) -> Complete:
    """The grouper's ``complete``: the alert functions on a first event, errors into ``errors``."""
    def complete(rule: Rule, result: RuleResult, key: OrderKey, record: dict[str, Any]) -> None:
        raised = rule.alert_fields(spec.load().event(record), result)
        errors.extend(RuleError(rule.id, name, error, key[1], key[2])
                      for name, error in raised.items())

    return complete


def _add_group(grouper: AlertGrouper, rule: Rule, row: dict[str, Any]) -> GroupKey:
    """Put one aggregated group row into ``grouper`` as the state its ``add`` would have built."""
    first, start = row["first"], from_micros(row["window_us"])
    key: GroupKey = (rule.id, row["dedup"], start)
    group = grouper.groups[key] = Group(
        rule=rule, dedup=row["dedup"], window_start=start,
        first_key=(from_micros(first["event_us"]), first["source"], first["position"]),
        first=_first_result(rule, row), last_time=from_micros(row["last_us"]),
        count=row["count"], uniques=set(row["uniques"]),
        samples=[((from_micros(s["event_us"]), s["source"], s["position"]), _record(s))
                 for s in row["samples"]],
        first_record=None if grouper.max_samples else _record(first),
    )
    group.samples = [(k, kept(group, k, r)) for k, r in group.samples]
    return key


def _record(event: dict[str, Any]) -> dict[str, Any]:
    """An event's record: unpickled, or the record struct ``to_pylist`` made a dict (the dict
    ``to_records`` gives for the row, shown as Panther shows it, as Python's matches carry it)."""
    if event["record"] is not None:
        record: dict[str, Any] = pickle.loads(event["record"])
        return record
    return panther_record(
        next(v for k, v in event.items() if k.startswith(RECORD_ROW) and v is not None))


def _first_result(rule: Rule, row: dict[str, Any]) -> RuleResult:
    """The first event's keys-only result: Python's (pickled), or the compiled keys' (as the
    local engine's grouper builds it from ``match_columns``)."""
    first = row["first"]
    if first["result"] is not None:
        result: RuleResult = pickle.loads(first["result"])
        return result
    return RuleResult(rule.id, matched=True, title=first["title"], unique=first["unique"],
                      dedup=row["dedup"], keys_only=True)


def collect_alerts(alerts: Any) -> tuple[ChunkedAlerts, Iterator[RuleError]]:
    """The alerts in ``AlertGrouper`` order, and the errors their alert functions raised (on
    the first events, as the local scanner runs them: once per alert), read chunk by chunk.

    One job builds every partition in parallel; each chunk goes to a ``Spill`` as it arrives
    (``arriving_batches``), so neither the alerts nor their errors pile up in the driver.
    """
    spill = Spill(prefix="flowwarden-spark-alerts-")
    arrived: list[list[Chunk]] = []
    by_rule: Counter[str] = Counter()

    def keep(batch: pa.RecordBatch) -> None:
        for counts in batch.column("rules"):
            by_rule.update(dict(unpack(counts.as_buffer())))
        def put(name: str) -> list[Place]:
            return [spill.add(value.as_buffer()) for value in batch.column(name)]

        arrived.append([Chunk(*parts) for parts in zip(
            put("alerts"), batch.column("count").to_pylist(), put("errors"), put("lines"),
            put("identities"), strict=True)])

    chunks = [chunk for index in arriving_batches(alerts, keep) for chunk in arrived[index]]
    raised = (error for chunk in chunks for error in unpack(spill.read(chunk.errors)))
    return ChunkedAlerts(spill, chunks, by_rule), raised


def stats_metrics(rules: Sequence[Rule]) -> list[Any]:
    """Observation metrics over result rows: matches and errors per rule, error samples."""
    from pyspark.sql import functions as S

    def count(test: Any) -> Any:
        return S.sum(S.when(test, 1).otherwise(0))

    rule_id = S.col("rule_id")
    metrics = [count((rule_id == r.id) & S.col("matched")).alias(f"m{i}")
               for i, r in enumerate(rules)]
    metrics += [count((rule_id == r.id) & S.map_contains_key("errors", fn)).alias(f"e{i}_{j}")
                for i, r in enumerate(rules) for j, fn in enumerate(FUNCTIONS)]
    sample = S.struct("source", "position", "rule_id", "errors")
    metrics.append(S.collect_list(S.when(S.col("error_sample"), sample)).alias("error_samples"))
    return metrics


def apply_stats(metrics: dict[str, Any], rules: Sequence[Rule], matches: Counter[str],
                error_counts: Counter[tuple[str, str]]) -> list[RuleError]:
    """Fill the match and error counters from observed ``metrics``; the error samples."""
    order = {r.id: i for i, r in enumerate(rules)}
    for i, rule in enumerate(rules):
        if metrics.get(f"m{i}"):
            matches[rule.id] += metrics[f"m{i}"]
        for j, fn in enumerate(FUNCTIONS):
            if metrics.get(f"e{i}_{j}"):
                error_counts[(rule.id, fn)] += metrics[f"e{i}_{j}"]
    samples = sorted(metrics.get("error_samples") or [],
                     key=lambda s: (s.source, s.position, order[s.rule_id]))
    errors = [RuleError(s.rule_id, fn, error, s.source, s.position)
              for s in samples for fn, error in _items(s.errors)]
    return errors[:MAX_ERROR_SAMPLES]


def _items(errors: Any) -> list[tuple[str, str]]:
    """A map column's entries in the rule's function order."""
    found = dict(errors or {})
    return [(fn, found[fn]) for fn in FUNCTIONS if fn in found]
