"""Groups carried from one checkpointed run to the next, as tables rather than Python objects.

A ``--state`` run continues the dedup groups earlier runs left open. Their state is three
tables of the state file, each a row per group, per distinct ``unique()`` value or per kept
event (``runs.state``). When a run's matches are all in, its ``SqlGrouper`` asks for the stored
rows of the groups they reach, as Parquet files (``GroupFiles``), and its queries count them in
beside the run's own matches:

- a group's row stands for its events: it counts ``events`` and its last event time;
- a unique value's row counts none, and makes the value one of the group's distinct values;
- a kept event (up to ``max(1, max_samples)`` per group: its first events by order key) is a
  pick like the run's own, its sample and alert values already rendered; so the first events of
  a group over all runs are the first of its kept events and the run's picks.

Only the groups the run's matches reached change, and only they are saved again (``save``):
their counts, distinct values and kept events, written by the grouper's queries. Cost grows
with the groups a run touches, and no group is ever a Python object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flowwarden.logic.render.sqltext import sql_literal

EVENTS_PER_PART = 1 << 20  # pick ids per query that saves kept events
ROW_GROUP = 16384  # rows per row group of a saved file

# The columns of the carried and saved files, as the state's tables hold them (there ``rule``
# is ``rule_id``, and a window's end beside its start lets old windows be dropped).
GROUP_COLUMNS = ("rule", "dedup", "window_us", "events", "last_us")
UNIQUE_COLUMNS = ("rule", "dedup", "window_us", "uniq")
# A kept event: the picks' columns without ``pid``, ``python`` and ``payload`` (a saved event's
# alert functions have run: its values are rendered, so no record is kept).
EVENT_COLUMNS = ("rule", "dedup", "window_us", "event_us", "source", "position", "sample",
                 "title", "severity", "context", "description", "reference", "runbook",
                 "destinations")


@dataclass(frozen=True)
class GroupFiles:
    """Groups as Parquet files of ``GROUP_COLUMNS``, ``UNIQUE_COLUMNS`` and ``EVENT_COLUMNS``.
    Carried to a run (``Carry``), the events come with a ``pid`` first (negative, unique);
    saved by one (``save``), every row ends in ``window_end_us`` and the events are a directory
    of parts (``events / "*.parquet"``)."""

    groups: Path
    uniques: Path
    events: Path


# The stored groups among those of a Parquet file of (rule, dedup, window_us), the groups a
# run's matches reach, written as ``GroupFiles`` into a directory: only they are read.
Carry = Callable[[Path, Path], GroupFiles]


def parquet(path: Path) -> str:
    """The rows of the Parquet files at ``path`` (a glob may name several) as a table."""
    return f"read_parquet({sql_literal(str(path))})"


def matches_view(carried: GroupFiles | None) -> str:
    """The ``matches`` view: the run's match rows (``match_rows``), each counting one event,
    and the carried groups' rows (counting their events, or none for a unique value)."""
    own = "SELECT *, 1::BIGINT AS n, true AS new FROM match_rows"
    if carried is None:
        return f"CREATE VIEW matches AS {own}"
    return (f"CREATE VIEW matches AS {own} UNION ALL BY NAME "
            "SELECT rule, dedup, window_us, last_us AS event_us, NULL::VARCHAR AS uniq, "
            f"events AS n, false AS new FROM {parquet(carried.groups)} UNION ALL BY NAME "
            "SELECT rule, dedup, window_us, NULL::BIGINT AS event_us, uniq, 0::BIGINT AS n, "
            f"false AS new FROM {parquet(carried.uniques)}")


def picks_view(carried: GroupFiles | None) -> str:
    """The ``picks`` view: the run's picks (``pick_rows``) and the carried kept events."""
    if carried is None:
        return "CREATE VIEW picks AS SELECT * FROM pick_rows"
    return ("CREATE VIEW picks AS SELECT * FROM pick_rows UNION ALL BY NAME "
            "SELECT *, false AS python, NULL::BLOB AS payload "
            f"FROM {parquet(carried.events)}")


# The first events of the groups a run changed whose alert functions need Python: all of
# them run now, so that a saved event never needs its record (in the order alerts would be).
TOUCHED_FIRSTS = (
    "SELECT r.pid, r.rule, p.payload, r.event_us, r.source, r.position FROM ranked r "
    "JOIN picks p ON p.pid = r.pid WHERE r.rank = 1 AND r.python AND r.changed "
    "ORDER BY r.event_us, r.source, r.position, r.rule")
# What ``ranked`` adds for a run that carries groups: whether the group has a pick of this run
# (every group a match reached has one), for every row of the group.
CHANGED = (", bool_or(pid >= 0) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED "
           "FOLLOWING) AS changed")


def save(con: duckdb.DuckDBPyConnection, directory: Path, completed: bool) -> GroupFiles:
    """Write the changed groups (table ``touched``, and the rows of ``ranked`` that say
    ``changed``) under ``directory`` (``completed``: the ``completed`` table holds the first
    events' values that Python made). The kept events, samples and all, are the picks'
    rows, written a range of pick ids at a time (``EVENTS_PER_PART``): what a query holds is
    that range's ids, not the events."""
    saved = GroupFiles(directory / "saved-groups.parquet", directory / "saved-uniques.parquet",
                       directory / "saved-events")
    saved.events.mkdir()
    end = _window_end("t")
    con.execute(copy_sql(f"SELECT t.rule, t.dedup, t.window_us, t.events, t.last_us, {end} "
                         "FROM touched t JOIN rules USING (rule)", saved.groups))
    con.execute(copy_sql(f"SELECT DISTINCT m.rule, m.dedup, m.window_us, m.uniq, {end} "
                         "FROM matches m JOIN touched t USING (rule, dedup, window_us) "
                         "JOIN rules USING (rule) WHERE m.rule IN (SELECT rule FROM rules "
                         "WHERE uses_unique) AND m.uniq IS NOT NULL", saved.uniques))
    fields = EVENT_COLUMNS[EVENT_COLUMNS.index("title"):]
    values = ", ".join(f"CASE WHEN c.pid IS NULL THEN p.{name} ELSE c.{name} END AS {name}"
                       if completed else f"p.{name}" for name in fields)
    joined = " LEFT JOIN completed c ON c.pid = p.pid" if completed else ""
    bounds = con.execute("SELECT min(pid), max(pid) FROM ranked WHERE changed").fetchone()
    low, high = (0, -1) if bounds is None or bounds[0] is None else (bounds[0], bounds[1])
    starts = range(int(low), int(high) + 1, EVENTS_PER_PART) or range(1)  # a part at least
    for part, start in enumerate(starts):
        inside = f"BETWEEN {start} AND {start + EVENTS_PER_PART - 1}"
        con.execute(copy_sql(
            "SELECT p.rule, p.dedup, p.window_us, p.event_us, p.source, p.position, p.sample, "
            f"{values}, {_window_end('p')} FROM picks p JOIN rules USING (rule){joined} "
            f"WHERE p.pid {inside} AND p.pid IN (SELECT pid FROM ranked WHERE changed AND "
            f"pid {inside})", saved.events / f"{part:06d}.parquet"))
    return saved


def _window_end(alias: str) -> str:
    return f"{alias}.window_us + rules.period_us AS window_end_us"


def copy_sql(select: str, path: Path) -> str:
    """The statement that writes ``select``'s rows to the Parquet file ``path``."""
    # DuckDB's writer holds a row group until it is full: its default of 122,880 rows of
    # ~2 kB samples is more than the grouper's memory.
    return (f"COPY ({select}) TO {sql_literal(str(path))} "
            f"(FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP})")
