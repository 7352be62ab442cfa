"""Arrow and Spark: the one place records cross between them, in types and in values.

Spark hands ``mapInArrow`` functions batches in the Arrow types of a DataFrame's schema
(``arrow_schema``) and takes back batches in the Arrow types of a declared Spark schema
(``spark_schema``, ``attach``). ``map_records`` runs one of ``flowwarden.logs``' own Arrow
conversions over a raw DataFrame that way, so Spark coerces values with the very code the local
reader runs (``vpcflow_parquet.coerce_batch``, ``ocsf.conform``), then applies since/until as
the reader does (``common.window_mask``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from flowwarden.errors import Location, LogFormatError
from flowwarden.logs.common import window_mask
from flowwarden.logs.model import ReadOptions

SOURCE, POSITION = "__fw_source", "__fw_position"
# (raw batch of one source, its URL) -> (records, the raw rows they keep or None for all)
Convert = Callable[[pa.RecordBatch, str], tuple[pa.RecordBatch, pa.Array | None]]
# What a conversion may raise on values it cannot take (the local reader fails the file).
CONVERT_FAILURES = (pa.ArrowException, ValueError)


def arrow_schema(schema: Any) -> pa.Schema:
    """The Arrow schema of batches Spark exchanges for a DataFrame schema (times in UTC)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema, timezone="UTC")


def spark_schema(schema: pa.Schema) -> Any:
    """The Spark schema (StructType) of batches with Arrow ``schema``."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def with_keys(schema: pa.Schema) -> pa.Schema:
    """``schema`` plus the source and position columns every input frame carries."""
    return schema.append(pa.field(SOURCE, pa.string())).append(pa.field(POSITION, pa.int64()))


def attach(batch: pa.RecordBatch, keys: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """``batch`` plus the source and position columns, in the types Spark expects."""
    arrays = [*batch.columns, keys.column(0), keys.column(1)]
    table = pa.Table.from_arrays(arrays, schema=with_keys(batch.schema)).cast(target)
    return pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns], schema=target)


def runs(values: list[Any]) -> Iterator[tuple[int, int, Any]]:
    """(start, stop, value) of each run of equal values."""
    start = 0
    for value, group in itertools.groupby(values):
        count = sum(1 for _ in group)
        yield start, start + count, value
        start += count


def map_records(raw: Any, source: Any, position: Any, convert: Convert,
                options: ReadOptions) -> Any:
    """``raw`` (a DataFrame of one format's raw columns) as records: each source's rows of each
    batch through ``convert`` on the executors, since/until applied, with source and position
    columns (``source`` and ``position`` are column expressions)."""
    columns = raw.columns
    staged = raw.select("*", source.alias(SOURCE), position.cast("long").alias(POSITION))
    empty = pa.RecordBatch.from_pylist([], schema=arrow_schema(raw.schema))
    schema = spark_schema(with_keys(convert(empty, "")[0].schema))
    target = arrow_schema(schema)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            raw_part = batch.select(columns)
            for start, stop, url in runs(batch.column(SOURCE).to_pylist()):
                try:
                    records, kept = convert(raw_part.slice(start, stop - start), url)
                except CONVERT_FAILURES as exc:
                    raise LogFormatError(f"Parquet read failed: {exc} (the local reader "
                                         "rejects the rest of the file)", Location(url)) from exc
                keys = batch.select([SOURCE, POSITION]).slice(start, stop - start)
                if kept is not None:
                    keys = keys.filter(kept)
                inside = window_mask(records, options)
                if inside is not None:
                    records, keys = records.filter(inside), keys.filter(inside)
                yield attach(records, keys, target)

    return staged.mapInArrow(run, schema)
