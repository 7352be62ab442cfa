"""Dedup windows and thresholds over event time.

Windows are tumbling and aligned to the epoch (`DedupPeriodMinutes` wide), so the same events give
the same alerts whatever order they arrive in, which is what lets incremental scans agree with one
scan over everything.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from flowwarden.alerts.formats.jsonl import jsonable
from flowwarden.alerts.model import Alert, alert_id, mitre_entries
from flowwarden.rules.immutable import SCALARS
from flowwarden.rules.rule import Rule, RuleResult

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
OrderKey = tuple[datetime, str, int]
GroupKey = tuple[str, str, datetime]  # (rule id, dedup string, window start)


@dataclass
class _Group:
    rule: Rule
    dedup: str
    window_start: datetime
    first_key: OrderKey
    first: RuleResult
    last_time: datetime
    count: int = 0
    uniques: set[str] = field(default_factory=set)
    # The first events' records, ``compact`` except the first event's while its alert
    # functions have not run (they see the record as read); None until ``AlertGrouper.fill``
    # hands over a record that was not loaded yet.
    samples: list[tuple[OrderKey, dict[str, Any] | None]] = field(default_factory=list)
    first_record: dict[str, Any] | None = None  # kept only when samples are not (max 0)

    def record_of_first(self) -> dict[str, Any] | None:
        if self.samples and self.samples[0][0] == self.first_key:
            return self.samples[0][1]
        return self.first_record


# Fills in a keys-only first result's alert functions from its event's record.
Complete = Callable[[Rule, RuleResult, OrderKey, dict[str, Any]], None]


@dataclass(frozen=True)
class MatchColumns:
    """A rule's matches in one batch whose keys were computed together (the compiled ones):
    batch rows, dedup strings (``rules.rule.dedup_string`` applied), event times in
    microseconds since the epoch, ``unique()`` values (None: the rule has none) and the title
    a result keeps (where dedup fell back to it; None elsewhere)."""

    rows: np.ndarray
    dedup: pa.Array
    event_us: np.ndarray
    unique: pa.Array | None = None
    title: pa.Array | None = None

    def take(self, indexes: np.ndarray) -> MatchColumns:
        """The matches at ``indexes``."""
        at = pa.array(indexes, type=pa.int64())
        return MatchColumns(self.rows[indexes], self.dedup.take(at), self.event_us[indexes],
                            None if self.unique is None else self.unique.take(at),
                            None if self.title is None else self.title.take(at))

    def unique_array(self) -> pa.Array:
        return self.unique if self.unique is not None else pa.nulls(len(self.rows), pa.string())

    def title_array(self) -> pa.Array:
        return self.title if self.title is not None else pa.nulls(len(self.rows), pa.string())

    def unique_values(self, indexes: np.ndarray) -> list[str | None]:
        return _values(self.unique, indexes)

    def title_values(self, indexes: np.ndarray) -> list[str | None]:
        return _values(self.title, indexes)

    def times(self) -> list[datetime]:
        return [from_micros(v) for v in self.event_us.tolist()]


def _values(column: pa.Array | None, indexes: np.ndarray) -> list[str | None]:
    if column is None:
        return [None] * len(indexes)
    return column.take(pa.array(indexes, type=pa.int64())).to_pylist()


class AlertGrouper:
    """Collects matches into (rule, dedup string, window) groups and turns them into alerts.

    A match may come with its result's keys only (dedup, unique: ``Rule.evaluate_match`` with
    ``keys_only``): ``complete`` then runs the alert functions once per alert, on its first
    event, when the alert is made. A match may also come without its record: ``add`` says
    whether the record is wanted (the event is now a group's first or a sample), and ``fill``
    hands over the wanted records of a batch, so records of other matches are never built.
    """

    def __init__(self, max_samples: int = 3, complete: Complete | None = None) -> None:
        self.max_samples = max_samples
        self.complete = complete
        self._groups: dict[tuple[str, str, datetime], _Group] = {}
        self._unfilled: list[_Group] = []

    def add(self, rule: Rule, result: RuleResult, key: OrderKey,
            record: dict[str, Any] | None) -> bool:
        """Count one match; ``key`` is (event time, source, position) and orders events.
        Returns True when ``record`` is None and the record is wanted: pass it to ``fill``."""
        dedup = result.dedup or f"defaultDedupString:{rule.id}"
        start = window_start(key[0], rule.dedup_minutes)
        group = self._groups.get((rule.id, dedup, start))
        wanted = False
        if group is None:
            group = _Group(rule, dedup, start, key, result, key[0])
            self._groups[(rule.id, dedup, start)] = group
            wanted = True
        elif key < group.first_key:
            previous = group.first_key
            group.first_key, group.first = key, result
            _compact_sample(group, previous)
            wanted = True
        group.count += 1
        group.last_time = max(group.last_time, key[0])
        if result.unique is not None:
            group.uniques.add(result.unique)
        if self.max_samples:
            if len(group.samples) < self.max_samples or key < group.samples[-1][0]:
                bisect.insort(group.samples, (key, kept(group, key, record)), key=lambda s: s[0])
                del group.samples[self.max_samples:]
                wanted = True
        elif wanted:
            group.first_record = record
        if wanted and record is None:
            self._unfilled.append(group)
            return True
        return False

    def add_matches(self, rule: Rule, matches: MatchColumns, source: str, offset: int
                    ) -> list[tuple[int, RuleResult, OrderKey]]:
        """``add`` for each of ``matches`` (positions ``offset`` on in ``source``, no records);
        returns the rows whose record is wanted, with their rule results and order keys."""
        dedups, times = matches.dedup.to_pylist(), matches.times()
        everything = np.arange(len(matches.rows))
        uniques, titles = matches.unique_values(everything), matches.title_values(everything)
        wanted = []
        for index, row in enumerate(matches.rows.tolist()):
            result = RuleResult(rule.id, matched=True, title=titles[index], unique=uniques[index],
                                dedup=dedups[index], keys_only=True)
            key = (times[index], source, offset + row)
            if self.add(rule, result, key, None):
                wanted.append((row, result, key))
        return wanted

    def end_batch(self) -> None:
        """The groups are up to date after each match; records not handed over stay None."""
        self._unfilled.clear()

    def collect(self) -> Sequence[Alert]:
        """The alerts of every group that reached its threshold."""
        return list(self.alerts())

    def fill(self, records: Mapping[OrderKey, dict[str, Any]]) -> None:
        """The records ``add`` asked for (by order key), put where they were wanted; they may
        come in parts (``end_batch`` forgets what a batch did not hand over)."""
        missing = []
        for group in self._unfilled:
            group.samples = [(k, kept(group, k, records[k]) if r is None and k in records else r)
                             for k, r in group.samples]
            if group.first_record is None and not self.max_samples:
                group.first_record = records.get(group.first_key)
            if any(r is None for _, r in group.samples) or (
                    not self.max_samples and group.first_record is None):
                missing.append(group)
        self._unfilled = missing

    @property
    def groups(self) -> dict[GroupKey, _Group]:
        """The groups by (rule id, dedup string, window start): what a checkpoint saves and restores."""
        return self._groups

    def alerts(self, only: Collection[GroupKey] | None = None) -> Iterator[Alert]:
        """Alerts of every group (or of the `only` groups) that reached its rule's threshold,
        in a stable order."""
        groups = self._groups.values() if only is None else [
            self._groups[k] for k in only if k in self._groups
        ]
        for group in sorted(groups, key=lambda g: (g.first_key, g.rule.id, g.dedup)):
            uses_unique = group.rule.function("unique") is not None
            reached = len(group.uniques) if uses_unique else group.count
            if reached >= group.rule.threshold:
                self._complete(group)
                yield _to_alert(group, uses_unique)

    def _complete(self, group: _Group) -> None:
        record = group.record_of_first()
        if not group.first.keys_only or self.complete is None or record is None:
            return
        self.complete(group.rule, group.first, group.first_key, record)
        # as the compiled alert functions give it: JSON values
        group.first.alert_context = jsonable(group.first.alert_context)
        group.first_record = None
        _compact_sample(group, group.first_key)


def kept(group: _Group, key: OrderKey, record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A sample's record as the group keeps it (see ``_Group.samples``)."""
    if record is None or (key == group.first_key and group.first.keys_only):
        return record
    return compact(record)


def _compact_sample(group: _Group, key: OrderKey) -> None:
    for index, (k, record) in enumerate(group.samples):
        if k == key and record is not None:
            group.samples[index] = (k, compact(record))


Group = _Group  # the public name of a group's state, for checkpoints


class Grouper(Protocol):
    """What a scanner hands its matches to: ``AlertGrouper`` (in memory, what checkpoints
    save) or ``groupstore.SqlGrouper`` (in DuckDB, for scans of any size)."""

    max_samples: int
    complete: Complete | None

    def add(self, rule: Rule, result: RuleResult, key: OrderKey,
            record: dict[str, Any] | None) -> bool: ...

    def add_matches(self, rule: Rule, matches: MatchColumns, source: str, offset: int
                    ) -> list[tuple[int, RuleResult, OrderKey]]: ...

    def fill(self, records: Mapping[OrderKey, dict[str, Any]]) -> None: ...

    def end_batch(self) -> None: ...

    def collect(self) -> Sequence[Alert]: ...


def micros(when: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (when - EPOCH) // MICROSECOND


def from_micros(value: int) -> datetime:
    """The aware UTC datetime ``value`` microseconds after the epoch."""
    return EPOCH + value * MICROSECOND


def period_us(minutes: int) -> int:
    """A dedup window's width in microseconds (``window_start`` on epoch microseconds)."""
    return minutes * 60_000_000


def window_start(when: datetime, minutes: int) -> datetime:
    period = timedelta(minutes=minutes)
    return EPOCH + ((when - EPOCH) // period) * period


def event_time(record: dict[str, Any]) -> datetime:
    """`p_event_time` as timezone-aware UTC, or the epoch when the event has none.

    Not the parse time: that would give the same events different alert ids on every run.
    """
    return time_value(record.get("p_event_time"))


def time_value(value: Any) -> datetime:
    """A ``p_event_time`` value as ``event_time`` reads it."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return EPOCH
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return EPOCH


FLAT = SCALARS | {datetime}  # what compact() returns unchanged


def compact(value: Any) -> Any:
    """The record without its null fields: a sample shows what the flow had, not the schema."""
    if isinstance(value, dict):
        return {k: v if type(v) in FLAT else compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def _to_alert(group: _Group, uses_unique: bool) -> Alert:
    first = group.first
    samples = [compact(record) if key == group.first_key and first.keys_only else record
               for key, record in group.samples if record is not None]
    return make_alert(group.rule, first, group.dedup, group.window_start, group.first_key[0],
                      group.last_time, group.count,
                      len(group.uniques) if uses_unique else None, samples)


def make_alert(rule: Rule, first: RuleResult, dedup: str, window: datetime,
               first_time: datetime, last_time: datetime, count: int,
               unique_count: int | None, samples: list[dict[str, Any]]) -> Alert:
    """The alert of one group: ``first`` is its first event's complete rule result. Its
    context and samples hold JSON values (``jsonable``), as written and as an alert read back
    from its line holds them, whichever path made it."""
    return Alert(
        id=alert_id(rule.id, dedup, window),
        rule_id=rule.id,
        rule_name=rule.display_name or rule.id,
        title=first.title or rule.display_name or rule.id,
        severity=first.severity or rule.severity,
        dedup=dedup,
        window_start=window,
        first_event_time=first_time,
        last_event_time=last_time,
        event_count=count,
        unique_count=unique_count,
        threshold=rule.threshold,
        mitre=mitre_entries(rule.mitre),
        runbook=first.runbook or rule.runbook,
        reference=first.reference or rule.reference,
        description=first.description or rule.description,
        log_types=list(rule.log_types),
        alert_context=jsonable(first.alert_context),
        destinations=first.destinations,
        samples=jsonable(samples),
    )
