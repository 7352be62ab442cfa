"""The alert store filled straight from a scan's alert tables (``tablequery``).

Each alert's store row (``store.ALERT_COLUMNS``) is one SQL expression of the grouper's tables,
the same text ``store.upsert_alerts`` writes for the ``Alert`` (JSON columns as ``jsonl.dumps``
writes them): the rows go from the grouper's DuckDB to the store's in Arrow batches, never as
Python objects. ``tests/alerts/test_tablestore.py`` compares both stores column by column.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from flowwarden.alerts.store import ALERT_SCHEMA
from flowwarden.alerts.tablequery import (
    QueriedAlerts,
    SeqChunks,
    alert_values,
    alerts_from,
    in_seqs,
)
from flowwarden.logic.render.sqltext import quote_identifier

STORE_CHUNK = 1 << 15  # alerts per query at most


def store_rows(alerts: QueriedAlerts) -> pa.RecordBatchReader:
    """Every alert as a row of the store's ``alerts`` table, in Arrow batches: a query per
    chunk of alerts (``tablequery.SeqChunks``), since one query over all of them ran out of
    the group database's memory at 3.4M alerts."""
    grouper = alerts.grouper
    values = alert_values(grouper.max_samples)
    columns = ", ".join(f"{values[f.name]} AS {quote_identifier(f.name)}" for f in ALERT_SCHEMA)
    sql = f"SELECT {columns} FROM {alerts_from(grouper.max_samples).tables}"

    chunks = SeqChunks(len(alerts), grouper.chunk_bytes, STORE_CHUNK)
    batches = chunks.read(grouper.con, lambda part: f"{sql} WHERE "
                          f"{in_seqs(alerts.seqs[part.start:part.stop], 'a.seq')}")
    return pa.RecordBatchReader.from_batches(ALERT_SCHEMA, _typed(batches))


def _typed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches of ``ALERT_SCHEMA``: epoch microseconds become UTC timestamps (exactly)."""
    for batch in batches:
        yield pa.RecordBatch.from_arrays(
            [column.cast(field.type) for column, field in zip(batch.columns, ALERT_SCHEMA,
                                                               strict=True)],
            schema=ALERT_SCHEMA)
