"""Inputs as Spark DataFrames holding the records ``flowwarden.logs`` reads, column for column.

- Parquet flow logs go through ``spark.read.parquet``, then ``vpcflow_parquet.coerce_batch`` in
  ``mapInArrow`` (``arrow.map_records``): the local reader's own coercions and rejections.
- OCSF Parquet goes through ``spark.read.parquet`` too, then ``ocsf.conform`` and ``ocsf.finish``
  in ``mapInArrow``: the same code as the local reader.
- Everything else (text flow logs with their header line, JSON, CloudWatch exports, every
  ``s3://`` object, and flow log Parquet whose conversion can fail, where the local reader
  drops the rest of the file) is read by ``flowwarden.logs`` itself inside ``mapInArrow``, one
  file per task, after a first job has read each file's first batch to learn its columns.
- Hadoop URLs (``s3a://``, ``hdfs://``, ``gs://``, ``abfss://``, ``file:``) are Parquet read by
  Spark, which lists them itself (no key pruning, no since/until listing shortcuts).

Every frame carries ``__fw_source`` (the URL the local reader reports) and ``__fw_position``
(the record's order within its source), which order events exactly as the local scanner does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden.engine.spark.arrow import (
    POSITION,
    SOURCE,
    arrow_schema,
    attach,
    map_records,
    spark_schema,
    with_keys,
)
from flowwarden.errors import Location, LogFormatError, UsageError
from flowwarden.logs.fields import LOG_TYPE as VPCFLOW
from flowwarden.logs.formats import ocsf, vpcflow_parquet
from flowwarden.logs.model import InputObject, ReadOptions
from flowwarden.logs.reader import LogReader
from flowwarden.logs.sources import STDIN, list_inputs
from flowwarden.logs.streams import PARQUET_MAGIC

HADOOP_SCHEMES = ("s3a://", "s3n://", "hdfs://", "gs://", "abfs://", "abfss://", "wasb://",
                  "wasbs://", "file:")
OBJECT_DDL = "url string, size long, etag string"
# Spark globs every path it reads; a backslash makes a glob character literal (Hadoop's rule).
HADOOP_GLOB = re.compile(r"([\\*?\[\]{}])")


@dataclass(frozen=True)
class InputFrame:
    """One DataFrame of a single log type (and one schema), with source and position columns."""

    log_type: str
    frame: Any


def input_frames(spark: Any, sources: Sequence[str], options: ReadOptions) -> list[InputFrame]:
    """DataFrames for every input the sources name; a file of no known format gives none."""
    hadoop = [s for s in sources if s.startswith(HADOOP_SCHEMES)]
    local = [s for s in sources if not s.startswith(HADOOP_SCHEMES)]
    if STDIN in local:
        raise UsageError("the spark engine cannot read stdin; write it to a file first")
    parquet: dict[tuple[str, pa.Schema], list[InputObject]] = {}
    other: list[InputObject] = []
    for obj in list_inputs(local, options) if local else []:
        kind = _local_parquet(obj, options)
        if kind is None or kind[0] == VPCFLOW and vpcflow_parquet.can_fail(kind[1]):
            other.append(obj)  # read as the local reader reads it, failures and all
        elif kind[0]:
            parquet.setdefault(kind, []).append(obj)
    frames: list[InputFrame | None] = [_parquet_frame(spark, log_type, files, options)
                                       for (log_type, _), files in parquet.items()]
    frames += generic_frames(spark, other, options) if other else []
    frames += [_hadoop_frame(spark, url, options) for url in hadoop]
    return [f for f in frames if f is not None]


def _local_parquet(obj: InputObject, options: ReadOptions) -> tuple[str, pa.Schema] | None:
    """(log type or "", schema) of a local Parquet file; None for anything read otherwise."""
    if obj.url.startswith("s3://"):
        return None
    with open(obj.url, "rb") as handle:
        if handle.read(len(PARQUET_MAGIC)) != PARQUET_MAGIC:
            return None
    try:
        schema = pq.read_schema(obj.url)
    except (OSError, pa.ArrowException):
        return None  # the local reader reports it as unreadable
    return parquet_log_type(schema, options) or "", schema


def parquet_log_type(schema: pa.Schema, options: ReadOptions) -> str | None:
    """The log type the local reader would read a Parquet file with ``schema`` as."""
    if options.log_type == ocsf.LOG_TYPE or (options.log_type is None and ocsf.detect(schema)):
        return ocsf.LOG_TYPE
    if options.log_type == VPCFLOW or (options.log_type is None and vpcflow_parquet.detect(schema)):
        return VPCFLOW
    return None


def _parquet_frame(spark: Any, log_type: str, files: list[InputObject],
                   options: ReadOptions) -> InputFrame:
    from pyspark.sql import functions as F

    urls = {os.path.abspath(f.url): f.url for f in files}
    raw = spark.read.parquet(*[HADOOP_GLOB.sub(r"\\\1", path) for path in urls])
    path = F.col("_metadata.file_path")
    local = F.url_decode(F.replace(F.regexp_replace(path, r"^file:(//)?", F.lit("")),
                                   F.lit("+"), F.lit("%2B")))
    mapping = F.create_map(*[F.lit(v) for item in urls.items() for v in item])
    source = F.coalesce(F.try_element_at(mapping, local), path)
    return _native(raw, log_type, source, options)


def _hadoop_frame(spark: Any, url: str, options: ReadOptions) -> InputFrame | None:
    from pyspark.sql import functions as F

    raw = spark.read.option("recursiveFileLookup", "true").parquet(url)
    log_type = parquet_log_type(arrow_schema(raw.schema), options)
    if log_type is None:
        raise LogFormatError("Parquet columns match no known log type", Location(url))
    return _native(raw, log_type, F.col("_metadata.file_path"), options)


def _native(raw: Any, log_type: str, source: Any, options: ReadOptions) -> InputFrame:
    """Parquet Spark reads, converted on the executors by the local reader's code."""
    from pyspark.sql import functions as F

    position = F.col("_metadata.row_index")
    convert = _vpcflow if log_type == VPCFLOW else _ocsf
    return InputFrame(log_type, map_records(raw, source, position, convert, options))


def _vpcflow(raw: pa.RecordBatch, url: str) -> tuple[pa.RecordBatch, pa.Array | None]:
    return vpcflow_parquet.coerce_batch(raw, url)


def _ocsf(raw: pa.RecordBatch, url: str) -> tuple[pa.RecordBatch, pa.Array | None]:
    return ocsf.finish(ocsf.conform(raw), url), None


# -- everything else: flowwarden.logs inside mapInArrow ----------------------------------------
class ListedReader(LogReader):
    """A reader over input objects already listed (on the driver)."""

    def __init__(self, objects: Sequence[InputObject], options: ReadOptions) -> None:
        super().__init__([o.url for o in objects], options)
        self.objects = list(objects)

    def inputs(self) -> list[InputObject]:
        return list(self.objects)


def generic_frames(spark: Any, objects: Sequence[InputObject],
                   options: ReadOptions) -> list[InputFrame]:
    """One frame per (log type, schema) the files' first batches show, read one file per task."""
    listing = _listing(spark, objects)
    found = listing.mapInArrow(_first_batches(options), "url string, log_type string, schema binary")
    groups: dict[tuple[str, bytes], list[InputObject]] = {}
    by_url = {o.url: o for o in objects}
    for row in found.collect():
        groups.setdefault((row.log_type, bytes(row.schema)), []).append(by_url[row.url])
    frames = []
    for (log_type, blob), files in groups.items():
        schema = spark_schema(with_keys(pa.ipc.read_schema(pa.py_buffer(blob))))
        read = _read_files(options, arrow_schema(schema))
        frames.append(InputFrame(log_type, _listing(spark, files).mapInArrow(read, schema)))
    return frames


def _listing(spark: Any, objects: Sequence[InputObject]) -> Any:
    """The objects as a DataFrame spread over the cores: a task per file, up to 4 per core."""
    tasks = min(len(objects), spark.sparkContext.defaultParallelism * 4)
    rows = [(o.url, o.size, o.etag_or_mtime) for o in objects]
    return spark.createDataFrame(rows, OBJECT_DDL).repartition(max(tasks, 1))


def _objects(batch: pa.RecordBatch) -> list[InputObject]:
    return [InputObject(*values) for values in zip(*(c.to_pylist() for c in batch.columns),
                                                   strict=True)]


def _first_batches(options: ReadOptions) -> Callable[[Iterator[pa.RecordBatch]],
                                                     Iterator[pa.RecordBatch]]:
    def first(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            found: dict[str, list[Any]] = {"url": [], "log_type": [], "schema": []}
            for obj in _objects(batch):
                item = next(iter(ListedReader([obj], options)), None)
                if item is not None:
                    found["url"].append(obj.url)
                    found["log_type"].append(item.log_type)
                    found["schema"].append(item.batch.schema.serialize().to_pybytes())
            yield pa.RecordBatch.from_pydict(found, schema=pa.schema(
                [("url", pa.string()), ("log_type", pa.string()), ("schema", pa.binary())]))

    return first


def _read_files(options: ReadOptions, target: pa.Schema) -> Callable[
        [Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for obj in _objects(batch):
                position = 0
                for item in ListedReader([obj], options):
                    rows = item.batch.num_rows
                    keys = pa.RecordBatch.from_pydict({
                        SOURCE: pa.repeat(pa.scalar(item.source), rows),
                        POSITION: pa.array(range(position, position + rows), pa.int64())})
                    position += rows
                    yield attach(_conform(item.batch, target, obj.url), keys, target)

    return read


def _conform(batch: pa.RecordBatch, target: pa.Schema, url: str) -> pa.RecordBatch:
    """A later batch of a file in its first batch's columns (the JSON reader infers per batch)."""
    names = [n for n in target.names if n not in (SOURCE, POSITION)]
    if batch.schema.names == names:
        return batch
    extra = set(batch.schema.names) - set(names)
    if extra:
        raise LogFormatError(f"columns {sorted(extra)} appear after the first batch; the spark "
                             "engine needs one schema per file", Location(url))
    arrays = [batch.column(n) if n in batch.schema.names else pa.nulls(batch.num_rows,
              target.field(n).type) for n in names]
    return pa.RecordBatch.from_arrays(arrays, names=names)
