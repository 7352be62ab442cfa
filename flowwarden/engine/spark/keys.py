"""Compiled key functions on Spark: matches whose keys compile never enter Python.

The query both engines render (``build_query(..., alerts=...)``) gives, per rule, the SQL of
its key functions (``dedup``, ``unique``, and ``title``, which dedup falls back to) and of the
rows where Python must run them. Next to the verdict columns, Spark computes those; a MATCH
whose keys compile becomes its result row through Spark expressions alone (the dedup string by
``dedup_string``'s fallback, the window by ``window_start``'s arithmetic), exactly as the local
engine's ``match_columns`` builds it (a test holds the two together). Only PYTHON verdicts and matches
with keys flagged for Python go through ``mapInArrow`` (``rules.evaluator``).

A compiled match carries its record as a Spark struct (one column per input frame, as frames
differ in columns); ``alerts.group_frame`` keeps it for each group's first event and samples
only, and the executors that build the alerts read it as the dict ``to_records`` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from flowwarden.alerts.grouping import period_us
from flowwarden.engine.spark.arrow import POSITION, SOURCE
from flowwarden.logic.render.query import BatchQuery
from flowwarden.logic.render.spark import spark_identifier
from flowwarden.logic.render.sql import MATCH
from flowwarden.rules.rule import MAX_DEDUP, MAX_TITLE, Rule, dedup_string

KEY = "__fw_k"
CALLS = "__fw_calls"  # per candidate row, its rule calls (``rule_calls``)
RECORD_ROW = "__fw_record"  # a frame's compiled matches' records: __fw_record<frame>
EVENT_TIME = "p_event_time"


def key_name(index: int, function: str, python: bool = False) -> str:
    """The column of rule ``index``'s key ``function`` (its value, or its "needs Python" flag)."""
    return f"{KEY}{index}_{function}" + ("_py" if python else "")


def key_outputs(query: BatchQuery) -> list[tuple[str, str]]:
    """(column name, Spark SQL) of every rule's key values and flags, from the query's inputs."""
    index = {name: i for i, name in enumerate(query.names)}
    outputs = []
    for rule_id, columns in query.alerts:
        for column in columns:
            i = index[rule_id]
            outputs.append((key_name(i, column.name), f"CAST(({column.value}) AS STRING)"))
            outputs.append((key_name(i, column.name, python=True),
                            f"coalesce(CAST(({column.python}) AS BOOLEAN), false)"))
    return outputs


def event_micros(schema: pa.Schema) -> Any | None:
    """``event_time(record)`` as epoch microseconds, as a column; None where Spark cannot
    reproduce it (a ``p_event_time`` neither absent nor a UTC timestamp: Python decides)."""
    from pyspark.sql import functions as F

    if EVENT_TIME not in schema.names:
        return F.lit(0).cast("long")
    kind = schema.field(EVENT_TIME).type
    if not (pa.types.is_timestamp(kind) and kind.tz is not None):
        return None
    return F.coalesce(F.unix_micros(F.col(spark_identifier(EVENT_TIME, sql=False))),
                      F.lit(0).cast("long"))


class RuleKeys:
    """The key columns of rule ``index`` of a query (absent functions: None, not flagged)."""

    def __init__(self, query: BatchQuery, index: int) -> None:
        from pyspark.sql import functions as F

        names = {c.name for c in dict(query.alerts).get(query.names[index], ())}
        self.values = {n: F.col(key_name(index, n)) for n in names}
        self.flags = {n: F.col(key_name(index, n, python=True)) for n in names}

    def value(self, name: str) -> Any:
        from pyspark.sql import functions as F

        return self.values.get(name, F.lit(None).cast("string"))

    def flag(self, name: str) -> Any:
        from pyspark.sql import functions as F

        return self.flags.get(name, F.lit(False))

    def needs_python(self) -> Any:
        """``match_columns``' mask: dedup or unique flagged, or, for a rule without ``dedup``
        (its title is then the dedup string), the title flagged."""
        first = "dedup" if "dedup" in self.values else "title"
        return self.flag(first) | self.flag("unique")

    def title(self) -> Any:
        """The match's title key: none for a rule with ``dedup`` (the title is then an alert
        function, the first event's), else the title cut to ``MAX_TITLE``."""
        from pyspark.sql import functions as F

        if "dedup" in self.values:
            return F.lit(None).cast("string")
        return F.left(self.value("title"), F.lit(MAX_TITLE))

    def dedup(self, rule_id: str) -> Any:
        """Panther's dedup string: a rule with ``dedup`` falls back to
        ``defaultDedupString:<id>``, one without it to its (cut) title, then to that default."""
        from pyspark.sql import functions as F

        source = self.value("dedup") if "dedup" in self.values else self.title()
        cut = F.left(source, F.lit(MAX_DEDUP))
        return F.coalesce(F.when(truthy(cut), cut), F.lit(dedup_string(rule_id, None, None)))


def truthy(text: Any) -> Any:
    """Python's truth of an optional string: not None and not empty (never null itself)."""
    from pyspark.sql import functions as F

    return F.coalesce(F.length(text) > 0, F.lit(False))


def rule_call(index: int, rule: Rule, keys: RuleKeys, code: Any, compiled: bool) -> Any:
    """Rule ``index``'s call on a candidate row (null where its verdict is 0): the verdict
    Python acts on (``ask``: PYTHON, MATCH where the keys need Python or nothing is
    ``compiled``, else 0 for a compiled match), the keys and the rule's window width."""
    from pyspark.sql import functions as F

    ask = code
    if compiled:
        ask = F.when((code == MATCH) & ~keys.needs_python(), F.lit(0)).otherwise(code)
    return F.when(code != 0, F.struct(
        F.lit(index).alias("rule"), ask.cast("tinyint").alias("ask"),
        F.lit(rule.id).alias("rule_id"), keys.dedup(rule.id).alias("dedup"),
        keys.title().alias("title"), keys.value("unique").alias("unique"),
        F.lit(period_us(rule.dedup_minutes)).cast("long").alias("period")))


def rule_calls(rules: Sequence[tuple[Rule, RuleKeys, Any]], compiled: bool) -> Any:
    """The array column of a candidate row's rule calls (each rule with its keys and verdict
    column); without ``compiled`` keys, Python runs every call."""
    from pyspark.sql import functions as F

    calls = [rule_call(i, rule, keys, code, compiled) for i, (rule, keys, code) in
             enumerate(rules)]
    return F.filter(F.array(*calls), lambda c: c.isNotNull())


def compiled_rows(candidates: Any, event_us: Any, record_names: Sequence[str],
                  struct: str) -> Any:
    """Result rows (``rules.RESULT_DDL``, and the record as a struct column ``struct``) of the
    compiled matches of the candidates' ``CALLS`` (``ask`` 0).

    No filter on ``candidates`` here, and every one of their columns read: Spark would push a
    filter or a projection below their exchange, which then differs from the one Python's
    calls read, and the input would be read twice.
    """
    from pyspark.sql import functions as F

    record = F.struct(*[F.col(spark_identifier(n, sql=False)) for n in record_names])
    matches = candidates.select(
        event_us.alias("event_us"), F.col(SOURCE).alias("source"),
        F.col(POSITION).alias("position"), record.alias(struct),
        F.explode(F.filter(CALLS, lambda c: c["ask"] == 0)).alias("k"))
    event = F.col("event_us")
    return matches.select(
        F.col("k.rule_id").alias("rule_id"), F.lit(True).alias("matched"),
        F.col("k.dedup").alias("dedup"),
        (event - F.pmod(event, F.col("k.period"))).alias("window_us"),  # floor, as window_start
        event, "source", "position", F.col("k.unique").alias("unique"),
        F.lit(None).cast("binary").alias("result"), F.lit(None).cast("binary").alias("record"),
        F.lit(None).cast("map<string,string>").alias("errors"),
        F.lit(False).alias("error_sample"), F.col("k.title").alias("title"), struct)
