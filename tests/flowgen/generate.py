"""A seeded, realistic AWS.VPCFlow generator (Panther column names), plus writers for AWS's
text (header line, ``-`` for null, optionally gzip) and Parquet (snake_case names and types).

Each batch mixes web egress and its return flows, internal service traffic, DNS to approved and
rogue resolvers, mDNS, internet scan noise to common and odd ports (22/3389 among them), one
port-scan burst, IPv6 (including a VPC range in 2600:1f18::/40), NAT/EKS-style flows whose
packet addresses differ, ICMP, NODATA and a few SKIPDATA records. Addresses repeat the way real
logs do: a few thousand hosts, popularity skewed. Everything is vectorized with pyarrow.
``clean=True`` leaves out the attacks and the ordinary traffic the rules flag anyway
(``scenarios.ATTACKS``, internal services off ``common_ports``): traffic on which rules rarely
match, as on most hours of a real VPC.

>>> from datetime import datetime, timezone
>>> batches = list(generate_flows(1000, seed=7, start=datetime(2024, 1, 1, tzinfo=timezone.utc)))
>>> sum(b.num_rows for b in batches)
1000
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.logs import fields as F
from flowwarden.logs.common import arange
from tests.flowgen.scenarios import Pools, build_category, categories

DEFAULT_V2 = F.DEFAULT_V2
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
NULL_TEXT = "-"
GENERATED_VERSION = 5  # the generated records carry fields up to version 5


@dataclass(frozen=True)
class GenerateOptions:
    """Shape of the generated traffic."""

    start: datetime = DEFAULT_START
    duration: timedelta = timedelta(hours=1)
    batch_size: int = 65536
    private_hosts: int = 3000
    public_hosts: int = 2000
    clean: bool = False


def generate_flows(
    n: int,
    seed: int,
    *,
    start: datetime = DEFAULT_START,
    duration: timedelta = timedelta(hours=1),
    batch_size: int = 65536,
    private_hosts: int = 3000,
    public_hosts: int = 2000,
    clean: bool = False,
) -> Iterator[pa.RecordBatch]:
    """``n`` flow records as record batches of the AWS.VPCFlow columns (no ``p_`` columns);
    ``clean``: without attacks (see the module's description).

    The same ``n``, ``seed`` and options always give the same records.
    """
    options = GenerateOptions(start, duration, batch_size, private_hosts, public_hosts, clean)
    pools = Pools.build(random.Random(seed), private_hosts, public_hosts)
    for first in range(0, n, batch_size):
        rows = min(batch_size, n - first)
        yield _batch(pools, options, seed * 1_000_003 + first, first, rows, n)


def _batch(
    pools: Pools, options: GenerateOptions, batch_seed: int, first: int, rows: int, total: int
) -> pa.RecordBatch:
    rng = random.Random(batch_seed)
    weights = categories(options.clean)
    counts = _split_counts(rng, rows, weights)
    parts = [
        build_category(name, count, pools, rng, options.clean)
        for name, count in zip(weights, counts, strict=True)
        if count
    ]
    table = pa.concat_tables([pa.Table.from_pydict(p) for p in parts], promote_options="default")
    order = pc.sort_indices(pc.random(rows, initializer=rng.getrandbits(62)))
    table = table.take(order)
    columns = {name: table.column(name).combine_chunks() for name in table.column_names}
    columns["version"] = pa.repeat(pa.scalar(GENERATED_VERSION), rows)
    columns.update(_times(options, rng, first, rows, total, columns.pop("_burst")))
    return _to_schema(columns, rows)


def _split_counts(rng: random.Random, rows: int, categories: dict[str, int]) -> list[int]:
    weights = list(categories.values())
    counts = [int(rows * w / sum(weights)) for w in weights]
    for _ in range(rows - sum(counts)):
        counts[rng.choices(range(len(counts)), weights)[0]] += 1
    return counts


def _times(
    options: GenerateOptions,
    rng: random.Random,
    first: int,
    rows: int,
    total: int,
    burst: pa.Array,
) -> dict[str, pa.Array]:
    """Start times spread evenly over the duration (a port-scan burst sits in its middle minute)."""
    base = int(options.start.timestamp())
    span = options.duration.total_seconds()
    step = span / max(total, 1)
    offsets = pc.floor(pc.multiply(pc.add(arange(rows), first), step)).cast(pa.int64())
    jitter = pc.floor(pc.multiply(pc.random(rows, initializer=rng.getrandbits(62)), 60))
    length = pc.floor(pc.multiply(pc.random(rows, initializer=rng.getrandbits(62)), 61))
    begin = pc.subtract(pc.add(offsets, base), jitter.cast(pa.int64()))
    middle = base + int(span // 2)
    begin = pc.if_else(burst, pc.add(jitter.cast(pa.int64()), middle), begin)
    end = pc.add(begin, length.cast(pa.int64()))
    return {"start": begin.cast(F.TIME), "end": end.cast(F.TIME)}


def _to_schema(columns: dict[str, pa.Array], rows: int) -> pa.RecordBatch:
    schema = F.schema()
    arrays = [
        columns[f.name].cast(f.type) if f.name in columns else pa.nulls(rows, f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _format_version(fields: Sequence[str]) -> int:
    return max([2, *(F.BY_AWS[f].version for f in fields if f in F.BY_AWS)])


def to_text_lines(batch: pa.RecordBatch, fields: Sequence[str]) -> bytes:
    """The records of ``batch`` as AWS flow log text lines (no header), ``-`` for null."""
    version = _format_version(fields)
    columns = []
    for name in fields:
        f = F.field_for(name)
        if f.panther == "version":
            col: pa.Array = pa.repeat(pa.scalar(str(version)), batch.num_rows)
        elif f.panther in batch.schema.names:
            col = batch.column(f.panther)
            if pa.types.is_timestamp(col.type):
                col = col.cast(pa.timestamp("s", tz="UTC")).cast(pa.int64())
            col = pc.fill_null(col.cast(pa.string()), NULL_TEXT)
        else:
            col = pa.repeat(pa.scalar(NULL_TEXT), batch.num_rows)
        columns.append(col)
    lines = pc.binary_join_element_wise(*columns, " ")
    lines = pc.binary_join_element_wise(lines, pa.repeat(pa.scalar(""), len(lines)), "\n")
    if not len(lines):
        return b""
    _, offsets, data = lines.buffers()
    bounds = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, offsets], offset=lines.offset)
    return data.to_pybytes()[bounds[0].as_py() : bounds[-1].as_py()]


def write_text(
    batches: Iterable[pa.RecordBatch],
    path: str,
    gzip: bool = True,
    fields: Sequence[str] = DEFAULT_V2,
    compresslevel: int = 6,
) -> int:
    """Write AWS's S3 text format (header line first); returns the record count."""
    import gzip as gzip_module

    names = tuple(F.parse_format(" ".join(fields))) if fields else DEFAULT_V2
    out = (
        gzip_module.open(path, "wb", compresslevel=compresslevel)  # noqa: SIM115 (with below)
        if gzip
        else open(path, "wb")  # noqa: SIM115 (closed by the with below)
    )
    count = 0
    with out:
        out.write((" ".join(names) + "\n").encode())
        for batch in batches:
            out.write(to_text_lines(batch, names))
            count += batch.num_rows
    return count


def aws_parquet_schema(fields: Sequence[str]) -> pa.Schema:
    """AWS's Parquet schema for ``fields``: ``_`` for ``-``, INT32 ints, INT64 counters/times."""
    out = []
    for name in fields:
        f = F.field_for(name)
        if f.type == F.STR:
            type_: pa.DataType = pa.string()
        elif f.type == F.TIME or f.aws in ("packets", "bytes") or f.aws.startswith("packets-"):
            type_ = pa.int64()
        else:
            type_ = pa.int32()
        out.append(pa.field(f.aws.replace("-", "_"), type_))
    return pa.schema(out)


PARQUET_FIELDS: tuple[str, ...] = tuple(f.aws for f in F.FIELDS if f.version <= 5)


def write_parquet(
    batches: Iterable[pa.RecordBatch],
    path: str,
    fields: Sequence[str] = PARQUET_FIELDS,
    compression: str = "gzip",
) -> int:
    """Write Parquet as AWS does (snake_case names, AWS types, GZIP); returns the record count."""
    import pyarrow.parquet as pq

    schema = aws_parquet_schema(fields)
    version = _format_version(fields)
    count = 0
    with pq.ParquetWriter(path, schema, compression=compression) as writer:
        for batch in batches:
            arrays = []
            for name, target in zip(fields, schema, strict=True):
                f = F.field_for(name)
                if f.panther == "version":
                    col: pa.Array = pa.repeat(pa.scalar(version, pa.int32()), batch.num_rows)
                elif f.panther in batch.schema.names:
                    col = batch.column(f.panther)
                    if pa.types.is_timestamp(col.type):
                        col = col.cast(pa.timestamp("s", tz="UTC")).cast(pa.int64())
                    col = col.cast(target.type)
                else:
                    col = pa.nulls(batch.num_rows, target.type)
                arrays.append(col)
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            count += batch.num_rows
    return count
