"""AWS.VPCFlow Parquet mapped to Panther's columns in Spark SQL, as ``vpcflow_parquet`` does.

The same field table (``vpcflow_parquet.column_field``) names each column; the coercions mirror
``vpcflow_parquet._coerce``: ``"-"``, ``"None"`` and ``""`` are null in string columns, integers
stored as text must be 1 to 18 ASCII digits or the row is rejected, times are Unix seconds
(milliseconds when implausibly large). Then the standard ``p_`` columns, in the same order.
"""

from __future__ import annotations

from typing import Any

from flowwarden.engine.spark.rules import POSITION, SOURCE
from flowwarden.logic.render.spark import spark_identifier
from flowwarden.logs import fields as F
from flowwarden.logs.common import STANDARD_FIELDS
from flowwarden.logs.formats.vpcflow_parquet import LOG_TYPE, NULL_STRINGS, column_field
from flowwarden.logs.formats.vpcflow_text import MAX_DIGITS
from flowwarden.logs.model import ReadOptions

SPARK_TYPES = {F.INT: "bigint", F.STR: "string", F.TIME: "timestamp"}
# Java's `$` also matches before a final newline; `\z` is the very end, as Arrow's is_digit.
DIGITS = rf"\A[0-9]{{1,{MAX_DIGITS}}}\z"


def vpcflow_frame(raw: Any, source: Any, position: Any, options: ReadOptions) -> Any:
    """``raw`` (a Parquet DataFrame) as AWS.VPCFlow records with source and position columns."""
    from pyspark.sql import functions as S

    staged = raw.select("*", source.alias(SOURCE), position.cast("long").alias(POSITION))
    typed: dict[str, Any] = {}
    bad: list[Any] = []
    unknown: list[str] = []
    for column in raw.schema.fields:
        if column.name.startswith("p_"):
            continue
        f = column_field(column.name)
        value, wrong = _coerce(S.col(spark_identifier(column.name, sql=False)), column.dataType, f)
        typed[f.panther] = value
        if wrong is not None:
            bad.append(wrong)
        if f.version == 0 and f.panther not in unknown:
            unknown.append(f.panther)
    if bad:
        staged = staged.where(~_any(bad))
    known = [(typed[f.panther] if f.panther in typed else S.lit(None))
             .cast(SPARK_TYPES[f.type]).alias(f.panther) for f in F.FIELDS]
    extra = [typed[name].alias(name) for name in unknown]
    mapped = staged.select(*known, *extra, SOURCE, POSITION)
    return window(mapped.select(*[c for c in mapped.columns if c not in (SOURCE, POSITION)],
                                 *_standard(typed), SOURCE, POSITION), options)


def _standard(typed: dict[str, Any]) -> list[Any]:
    """The ``p_`` columns of ``flowwarden.logs.common.with_standard``, in its order."""
    from pyspark.sql import functions as S

    ips = [S.col(name) for name in F.IP_COLUMNS if name in typed]
    any_ips = (S.array_distinct(S.filter(S.array(*ips), lambda ip: ip.isNotNull())) if ips
               else S.array().cast("array<string>"))
    values = {
        "p_log_type": S.lit(LOG_TYPE),
        "p_event_time": S.coalesce(S.col("start"), S.col("end")),
        "p_parse_time": S.current_timestamp(),
        "p_source_file": S.col(SOURCE),
        "p_any_ip_addresses": any_ips,
    }
    return [values[f.name].alias(f.name) for f in STANDARD_FIELDS]


def _coerce(column: Any, dtype: Any, f: F.Field) -> tuple[Any, Any | None]:
    """(value, rejection test or None), as ``vpcflow_parquet._coerce``."""
    from pyspark.sql import functions as S
    from pyspark.sql import types as T

    if isinstance(dtype, T.StringType) and (f.type == F.STR or f.version == 0):
        return _null_strings(column), None
    if f.version == 0:
        return column, None  # a column of no known field keeps its own type
    if f.type == F.STR:
        return column.cast("string"), None
    if isinstance(dtype, T.TimestampType | T.TimestampNTZType):
        return S.date_trunc("second", column.cast("timestamp")), None
    wrong = None
    if isinstance(dtype, T.IntegralType):
        ints = column.cast("bigint")
    elif isinstance(dtype, T.FloatType | T.DoubleType):
        ints = column.try_cast("bigint")  # truncates, as Arrow's unsafe cast
    else:
        text = _null_strings(column.cast("string"))
        fine = S.coalesce(text.rlike(DIGITS), S.lit(False))
        wrong = text.isNotNull() & ~fine
        ints = S.when(fine, text).try_cast("bigint")
    return (_seconds(ints) if f.type == F.TIME else ints), wrong


def _seconds(ints: Any) -> Any:
    """Unix seconds, or milliseconds when above ``MS_THRESHOLD``, as a timestamp."""
    from pyspark.sql import functions as S

    whole = (ints.cast("decimal(20,0)") / 1000).cast("bigint")  # exact integer division
    return S.timestamp_seconds(S.when(ints > F.MS_THRESHOLD, whole).otherwise(ints))


def _null_strings(column: Any) -> Any:
    from pyspark.sql import functions as S

    return S.when(column.isin(*NULL_STRINGS.to_pylist()), S.lit(None)).otherwise(column)


def _any(tests: list[Any]) -> Any:
    found = tests[0]
    for test in tests[1:]:
        found = found | test
    return found


def window(frame: Any, options: ReadOptions) -> Any:
    """Drop rows whose event time is outside since/until (null times are kept)."""
    from pyspark.sql import functions as S

    if options.since is None and options.until is None:
        return frame
    time = S.col("p_event_time")
    keep = S.lit(True)
    if options.since is not None:
        keep = keep & (time.isNull() | (time >= S.lit(options.since)))
    if options.until is not None:
        keep = keep & (time.isNull() | (time <= S.lit(options.until)))
    return frame.where(keep)
