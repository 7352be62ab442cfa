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
from flowwarden.alerts.tablequery import QueriedAlerts, alert_values, alerts_from, read_batches
from flowwarden.logic.render.sqltext import quote_identifier


def store_rows(alerts: QueriedAlerts) -> pa.RecordBatchReader:
    """Every alert as a row of the store's ``alerts`` table, in Arrow batches."""
    grouper = alerts.grouper
    values = alert_values(grouper.max_samples)
    columns = ", ".join(f"{values[f.name]} AS {quote_identifier(f.name)}" for f in ALERT_SCHEMA)
    sql = f"SELECT {columns} FROM {alerts_from(grouper.max_samples).tables}"
    return pa.RecordBatchReader.from_batches(ALERT_SCHEMA, _typed(read_batches(grouper.con, sql)))


def _typed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches of ``ALERT_SCHEMA``: epoch microseconds become UTC timestamps (exactly)."""
    for batch in batches:
        yield pa.RecordBatch.from_arrays(
            [column.cast(field.type) for column, field in zip(batch.columns, ALERT_SCHEMA,
                                                               strict=True)],
            schema=ALERT_SCHEMA)
