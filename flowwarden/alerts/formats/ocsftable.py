"""OCSF findings of a scan's alert tables, written batch by batch (``ocsfquery``'s query).

The findings come out of DuckDB in Arrow batches, in alert order: Parquet row groups and JSON
lines are written from them as they come, never a Python object per alert. An alert the query
marks exotic is rendered by ``ocsf.to_finding`` instead (the alerts of its batch's range are
read back as ``Alert`` objects for it), so every finding equals the per-alert path's. The
Security Lake layout sorts the findings by partition in a temporary table of the grouper's
database (which spills to disk), exotic ones rendered in Python and put in their place first;
alerts that are not in alert tables (a Spark scan's, the python engine's) are made into
findings a chunk at a time and sorted in a table of a database of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowwarden.alerts.formats.ocsf import (
    FINDING_SCHEMA,
    PreparedFindings,
    finding_json,
    findings_table,
    to_finding,
)
from flowwarden.alerts.formats.ocsfjson import json_sql
from flowwarden.alerts.formats.ocsfquery import finding_sql, rule_parts
from flowwarden.alerts.formats.pysql import add_is_ip
from flowwarden.alerts.formats.securitylake import lake_key, lake_table
from flowwarden.alerts.model import Alert
from flowwarden.alerts.tablequery import (
    READ_ROWS,
    QueriedAlerts,
    in_seqs,
    joined_text,
    seq_chunks,
)
from flowwarden.logic.render.sqltext import sql_literal
from flowwarden.util.destinations import object_url, object_writer
from flowwarden.util.duckfiles import spilling_database
from flowwarden.util.iterables import chunks
from flowwarden.util.registered import registered
from flowwarden.util.s3 import S3

LAKE_TABLE = "lake_findings"
# Alerts per query: each query sorts its findings by seq; sorting all of them at once needs
# more memory than the grouper's database has (a finding's JSON text is about 3 kB).
CHUNK = 32768
# The grouper's database's memory while findings are written, in MB at least: a query holds
# about 20 kB per finding (its nested values, then their sort by seq), so a chunk of them ran
# out of the 256 MB that the grouper keeps to (a 1M-record scan's OCSF output failed), and
# chunks sized to fit it were slower (a query costs about 0.25 s however small).
FINDINGS_MEMORY_MB = 512
# Alerts made into findings at a time by ``write_walked_lake`` (a few MB of Python objects).
WALKED = 4096


def write_jsonl(alerts: QueriedAlerts, out: Any) -> int:
    """Every alert's ``finding_json`` line to the binary ``out``; returns how many."""
    count = 0
    with _cursor(alerts) as con:
        for batch in _chunked(con, alerts, lambda sql: f"SELECT seq, exotic, json FROM "
                                                       f"({json_sql(sql)})"):
            exotic = batch.column("exotic")
            if pc.any(exotic).as_py():
                lines = batch.column("json").to_pylist()
                at = {seq: index for index, seq in enumerate(batch.column("seq").to_pylist())}
                for seq, alert in _alerts_at(alerts, batch.column("seq"), exotic).items():
                    lines[at[seq]] = finding_json(alert) + "\n"
                out.write("".join(lines).encode("utf-8"))
            else:
                out.write(joined_text(batch.column("json")))
            count += batch.num_rows
    return count


def write_parquet(alerts: QueriedAlerts, out: Any) -> int:
    """Every alert's finding as one Parquet file (a row group per batch) to ``out``."""
    count = 0
    with _cursor(alerts) as con, pq.ParquetWriter(out, FINDING_SCHEMA,
                                                   compression="zstd") as writer:
        for batch in _chunked(con, alerts, lambda sql: f"SELECT seq, exotic OR exotic_parquet "
                                                       f"AS redo, {_columns()} FROM ({sql})"):
            writer.write_table(_findings(alerts, batch))
            count += batch.num_rows
    return count


def write_lake(alerts: QueriedAlerts, destination: str, source: str, name: str | None,
               s3: S3 | None) -> list[str]:
    """``securitylake.write_security_lake`` of the alerts; returns the written URLs."""
    with _cursor(alerts) as con:
        for seqs in seq_chunks(alerts.seqs, CHUNK):  # in seq order: each range is read back
            rows = (f"SELECT seq, exotic OR exotic_parquet AS redo, lake_region || '/' || "
                    f"lake_account || '/' || lake_day AS lake_key, {_columns()} FROM "
                    f"({finding_sql(alerts.grouper.max_samples, seqs)}) ORDER BY seq")
            con.execute(f"CREATE OR REPLACE TEMP TABLE {LAKE_TABLE} AS {rows}"
                        if seqs.start == alerts.seqs.start else f"INSERT INTO {LAKE_TABLE} {rows}")
        try:
            _redo_exotic(con, alerts)
            name = name or _content_name(con)
            return _write_partitions(con, destination, source, name, s3)
        finally:
            con.execute(f"DROP TABLE IF EXISTS {LAKE_TABLE}")


def _redo_exotic(con: duckdb.DuckDBPyConnection, alerts: QueriedAlerts) -> None:
    """Exotic findings of the lake table replaced by ``to_finding``'s, with their partitions."""
    seqs = [seq for (seq,) in con.execute(
        f"SELECT seq FROM {LAKE_TABLE} WHERE redo ORDER BY seq").fetchall()]
    for chunk in _spans(seqs):
        found = _alerts_at(alerts, pa.array(chunk, pa.int64()), pa.array([True] * len(chunk)))
        table = _lake_rows([to_finding(alert) for alert in found.values()], list(found))
        with registered(con, "redone_findings", table):
            con.execute(f"DELETE FROM {LAKE_TABLE} WHERE seq IN (SELECT seq FROM redone_findings)")
            con.execute(f"INSERT INTO {LAKE_TABLE} BY NAME SELECT *, false AS redo "
                        "FROM redone_findings")


def write_walked_lake(alerts: Iterable[Alert], destination: str, source: str, name: str | None,
                      s3: S3 | None) -> list[str]:
    """``securitylake.write_security_lake`` of alerts that are not a scan's alert tables (a
    Spark scan's, the python engine's): ``to_finding`` of ``WALKED`` alerts at a time, kept
    in a lake table of a database of their own that spills to disk, so that memory stays flat
    however many alerts there are; then the same partitions and name as ``write_lake``."""
    with spilling_database("flowwarden-lake-", FINDINGS_MEMORY_MB) as con:
        count = 0
        for found in _walked_findings(alerts):
            table = found.append_column("seq", pa.array(range(count, count + found.num_rows),
                                                        pa.int64()))
            with registered(con, "new_findings", table):
                con.execute(f"INSERT INTO {LAKE_TABLE} BY NAME SELECT * FROM new_findings"
                            if count else f"CREATE TABLE {LAKE_TABLE} AS FROM new_findings")
            count += found.num_rows
        if not count:
            return []
        return _write_partitions(con, destination, source, name or _content_name(con), s3)


def _walked_findings(alerts: Iterable[Alert]) -> Iterator[pa.Table]:
    """The alerts' findings as ``lake_table`` rows, in order: as they were prepared, or made
    by ``to_finding`` ``WALKED`` alerts at a time."""
    if isinstance(alerts, PreparedFindings):
        yield from alerts.finding_tables()
        return
    for chunk in chunks(alerts, WALKED):
        yield lake_table([to_finding(alert) for alert in chunk])


def _lake_rows(findings: list[dict[str, Any]], seqs: list[int]) -> pa.Table:
    """Findings as rows of the lake table: their columns, their partitions and their seqs."""
    return lake_table(findings).append_column("seq", pa.array(seqs, pa.int64()))


def _spans(seqs: list[int]) -> Iterator[list[int]]:
    """Sorted ``seqs`` in chunks that each span fewer than ``READ_ROWS`` alerts (each chunk's
    alerts are read back as one range)."""
    chunk: list[int] = []
    for seq in seqs:
        if chunk and seq - chunk[0] >= READ_ROWS:
            yield chunk
            chunk = []
        chunk.append(seq)
    if chunk:
        yield chunk


def _content_name(con: duckdb.DuckDBPyConnection) -> str:
    """A name that depends only on the lake table's findings' identities and counts: a digest
    of their ``uid:count:time`` lines in the order of their uids, hashed batch by batch."""
    digest = hashlib.sha256()
    sql = (f"SELECT finding_info.uid || ':' || coalesce(CAST(count AS VARCHAR), 'None') || ':' "
           f"|| CAST(time AS VARCHAR) || chr(10) AS line, finding_info.uid AS uid FROM {LAKE_TABLE}")
    for batch in _ordered(con, sql, "uid"):
        digest.update(joined_text(batch.column("line")))
    return f"flowwarden-{digest.hexdigest()[:24]}"


def _write_partitions(con: duckdb.DuckDBPyConnection, destination: str, source: str, name: str,
                      s3: S3 | None) -> list[str]:
    """Each partition's findings as one Parquet object, partitions in sorted order, each read
    in seq ranges (a sort of them all at once would not fit the database's memory)."""
    written: list[str] = []
    keys = [key for (key,) in con.execute(
        f"SELECT DISTINCT lake_key FROM {LAKE_TABLE} ORDER BY lake_key").fetchall()]
    first, last = con.execute(f"SELECT min(seq), max(seq) + 1 FROM {LAKE_TABLE}").fetchall()[0]
    for key in keys:
        region, account, day = key.split("/")
        object_key = lake_key(source, region, account, day, name)
        with (object_writer(destination, object_key, s3) as out,
              pq.ParquetWriter(out, FINDING_SCHEMA, compression="zstd") as writer):
            for seqs in seq_chunks(range(first, last), CHUNK):
                sql = (f"SELECT seq, {_columns()} FROM {LAKE_TABLE} WHERE lake_key = "
                       f"{sql_literal(key)} AND {in_seqs(seqs)}")
                for batch in _ordered(con, sql, "seq"):
                    table = pa.Table.from_batches([batch]).drop_columns(["seq"])
                    writer.write_table(table.cast(FINDING_SCHEMA))
        written.append(object_url(destination, object_key))
    return written


def _findings(alerts: QueriedAlerts, batch: pa.RecordBatch) -> pa.Table:
    """A batch's findings as a ``FINDING_SCHEMA`` table, exotic ones by ``to_finding``."""
    table = pa.Table.from_batches([batch]).drop_columns(["seq", "redo"]).cast(FINDING_SCHEMA)
    redo = batch.column("redo")
    if not pc.any(redo).as_py():
        return table
    seqs = batch.column("seq")
    found = _alerts_at(alerts, seqs, redo)
    redone = findings_table([to_finding(alert) for alert in found.values()])
    kept = pc.invert(redo)
    order = pc.sort_indices(pa.concat_arrays([seqs.filter(kept), pa.array(list(found), pa.int64())]))
    return pa.concat_tables([table.filter(kept), redone]).take(order)


def _alerts_at(alerts: QueriedAlerts, seqs: pa.Array, chosen: pa.Array) -> dict[int, Alert]:
    """The ``Alert`` objects of the chosen ``seqs``, by seq, read back in one range."""
    wanted = seqs.filter(chosen).to_pylist()
    if not wanted:
        return {}
    first, start = min(wanted), alerts.seqs.start
    got: Sequence[Alert] = alerts[first - start:max(wanted) + 1 - start]
    return {seq: got[seq - first] for seq in sorted(wanted)}


def _columns() -> str:
    return ", ".join(FINDING_SCHEMA.names)


def _chunked(con: duckdb.DuckDBPyConnection, alerts: QueriedAlerts,
             select: Callable[[str], str]) -> Iterator[pa.RecordBatch]:
    """``select`` over the findings (``finding_sql``), in seq order, ``CHUNK`` alerts a query."""
    for seqs in seq_chunks(alerts.seqs, CHUNK):
        yield from _ordered(con, select(finding_sql(alerts.grouper.max_samples, seqs)), "seq")


def _ordered(con: duckdb.DuckDBPyConnection, sql: str, order: str) -> Iterator[pa.RecordBatch]:
    reader = con.sql(f"SELECT * FROM ({sql}) ORDER BY {order}").to_arrow_reader(READ_ROWS)
    yield from reader


@contextmanager
def _cursor(alerts: QueriedAlerts) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of the grouper's connection with the query's rule table and IP function, and
    the database's memory at ``FINDINGS_MEMORY_MB`` at least while it is open."""
    with alerts.grouper.memory_at_least(FINDINGS_MEMORY_MB):
        con = alerts.grouper.con.cursor()
        try:
            con.register("finding_rules", rule_parts(con))
            add_is_ip(con)
            yield con
        finally:
            con.close()
