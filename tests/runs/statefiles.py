"""What a ``--state`` file holds, read the way a test compares it with a run's alerts."""

from __future__ import annotations

from pathlib import Path

import duckdb

from flowwarden.alerts.grouping import from_micros
from flowwarden.alerts.model import alert_id


def stored_groups(path: str | Path) -> dict[str, tuple[str, int]]:
    """The rule and event count of every open group in the state file at ``path``, by the id
    its alert has (or will have, once the group reaches its rule's threshold)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT rule, dedup, window_us, events FROM groups").fetchall()
    finally:
        con.close()
    return {alert_id(rule, dedup, from_micros(window)): (rule, events)
            for rule, dedup, window, events in rows}
