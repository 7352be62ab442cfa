"""Checkpointed scans: ``flowwarden scan SOURCE --state STATE`` reads only what is new.

What a run reads
    The inputs SOURCE lists now whose (url, size, etag or mtime) is not yet in the state: new
    inputs and changed ones. A changed input is read again in full and its events count again (S3
    flow-log objects are never rewritten, so for them "changed" means a new object under an old
    name). Standard input cannot be checkpointed.

What a run remembers
    Every dedup group (rule, dedup string, tumbling window aligned to the epoch) with its event
    count, unique values, first event and samples, so a later run continues the same windows and
    thresholds. Groups whose window ended more than ``retention`` (default 7 days) before the
    newest event time counted so far (the watermark) are dropped; a later event for such a window
    is *late*: it is counted in ``RunResult.late_events`` and otherwise ignored, so an alert that
    was emitted is never replaced by a smaller one.

Which alerts a run emits
    Exactly the alerts of the groups that this run changed and that have reached their rule's
    threshold: a new alert, or an alert emitted before, again, with the same id and its updated
    counts, times and samples. A run that reads nothing new emits nothing. Emitted alerts are
    final per id in the sense that the latest emission of an id carries the group's complete
    state, so the alerts of many small runs, latest emission per id, equal the alerts of one run
    over all the data (same ids, event counts, unique counts, first and last times, samples), as
    long as no event arrives later than ``retention``.

How a run is committed
    In one DuckDB transaction: the inputs read, the changed groups, the watermark, the alerts
    (table ``alerts``, latest version per id) and an outbox entry holding this run's alerts.
    Only then are the alerts delivered to the sinks (see ``flowwarden.alerts.delivery``), each
    under a name fixed by the run number, and the outbox entry is marked delivered. A run first
    delivers any outbox entry an earlier, interrupted run left. So a process killed at any point
    (SIGKILL included) either committed nothing (the next run reads the same inputs again and
    computes the same alerts) or committed a run whose delivery the next run repeats, replacing
    the same files and store rows: no alert is lost and no alert version is delivered twice, except
    on standard output, which cannot take back what it printed.
"""

from __future__ import annotations

import hashlib
import os
import signal
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from flowwarden.alerts.delivery import OutputSpec, deliver
from flowwarden.alerts.grouping import AlertGrouper, OrderKey, window_start
from flowwarden.alerts.model import Alert
from flowwarden.alerts.store import record_scan_files
from flowwarden.engine.engines import Engine, Progress, batchwise_engine, engine_named
from flowwarden.engine.loop import scan_loop
from flowwarden.engine.scan import ScanResult
from flowwarden.errors import UsageError
from flowwarden.logs import (
    DEFAULT_OPTIONS,
    InputObject,
    LogReader,
    ReadOptions,
    ScanStats,
    list_inputs,
)
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule, RuleResult
from flowwarden.runs.state import StateStore

DEFAULT_RETENTION = timedelta(days=7)
FAILPOINT_ENV = "FLOWWARDEN_FAILPOINT"


@dataclass
class RunResult:
    """What one checkpointed run did."""

    run: int | None
    inputs: list[InputObject] = field(default_factory=list)
    unchanged: int = 0
    alerts: list[Alert] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)
    late_events: int = 0
    written: list[str] = field(default_factory=list)
    scan: ScanResult = field(default_factory=ScanResult)
    stats: ScanStats = field(default_factory=ScanStats)
    rules: list[Rule] = field(default_factory=list)
    engine: str = ""
    per_file_stats: bool = True  # False where the engine keeps no per-input statistics


class WindowedGrouper(AlertGrouper):
    """An AlertGrouper that ignores events for windows that ended at or before ``horizon``."""

    def __init__(self, max_samples: int, horizon: datetime | None) -> None:
        super().__init__(max_samples)
        self.horizon = horizon
        self.late = 0
        self.newest: datetime | None = None

    def add(self, rule: Rule, result: RuleResult, key: OrderKey,
            record: dict[str, Any] | None) -> bool:
        if self.horizon is not None:
            end = window_start(key[0], rule.dedup_minutes) + timedelta(minutes=rule.dedup_minutes)
            if end <= self.horizon:
                self.late += 1
                return False
        self.newest = key[0] if self.newest is None else max(self.newest, key[0])
        return super().add(rule, result, key, record)


class InputsReader(LogReader):
    """A reader of exactly these input objects (already listed, already chosen)."""

    def __init__(self, objects: Sequence[InputObject], options: ReadOptions = DEFAULT_OPTIONS) -> None:
        super().__init__([o.url for o in objects], options)
        self._objects = list(objects)

    def inputs(self) -> list[InputObject]:
        return list(self._objects)


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL here if ``$FLOWWARDEN_FAILPOINT`` names this point.

    The crash tests use it to stop a run at chosen moments: ``scanned`` (before the commit),
    ``committed`` (after it, before delivery), ``delivering`` (between two sinks) and
    ``delivered`` (before the outbox entry is marked).
    """
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _engine(engine: str | Engine) -> Engine:
    return engine_named(engine) if isinstance(engine, str) else engine


def run_checkpointed(pack: Pack, sources: Sequence[str], state_path: str | os.PathLike[str],
                     options: ReadOptions | None = None, *, engine: str | Engine = "duckdb",
                     rule_ids: Sequence[str] = (), max_samples: int = 3,
                     outputs: OutputSpec | None = None, retention: timedelta | None = DEFAULT_RETENTION,
                     progress: Progress | None = None,
                     stdout: IO[str] | None = None) -> RunResult:
    """One checkpointed run over ``sources``; see the module docstring for what it emits."""
    outputs = (outputs or OutputSpec()).check()
    options = options or DEFAULT_OPTIONS
    engine = batchwise_engine(engine, "--state")
    if any(source == "-" for source in sources):
        raise UsageError("--state cannot checkpoint standard input; name files or s3:// prefixes")
    rules = pack.active_rules(rule_ids)
    state = StateStore(state_path)
    try:
        result = RunResult(None, rules=rules, engine=engine.name)
        result.redelivered = deliver_pending(state, outputs, stdout, result.written)
        listed = list_inputs(list(sources), options)
        seen = state.processed()
        new = [o for o in listed if seen.get(o.url) != (o.size, o.etag_or_mtime)]
        result.inputs, result.unchanged = new, len(listed) - len(new)
        if not new:
            return result
        previous = state.watermark()
        grouper = WindowedGrouper(max_samples, _horizon(previous, retention))
        grouper.groups.update(state.load_groups({r.id: r for r in rules}))
        before = {key: group.count for key, group in grouper.groups.items()}
        scanner = engine.scanner(pack, rules, max_samples=max_samples, grouper=grouper)
        reader = InputsReader(new, options)
        scan_loop(reader, [scanner], progress)
        changed = [key for key, group in grouper.groups.items() if before.get(key) != group.count]
        result.scan, result.stats, result.late_events = scanner.result, reader.stats, grouper.late
        result.alerts = scanner.result.alerts = list(grouper.alerts(changed))
        watermark = _latest(previous, grouper.newest)
        failpoint("scanned")
        result.run = state.commit(new, {k: grouper.groups[k] for k in changed}, watermark,
                                  _horizon(watermark, retention), result.alerts,
                                  result.stats.to_json()["files"])
        failpoint("committed")
        deliver_pending(state, outputs, stdout, result.written)
        return result
    finally:
        state.close()


def deliver_pending(state: StateStore, outputs: OutputSpec, stdout: IO[str] | None = None,
                    written: list[str] | None = None) -> list[int]:
    """Deliver every committed, undelivered run in order; returns their run numbers."""
    runs = state.pending_runs()
    same_store = outputs.store is not None and _same_file(outputs.store, state.path)
    for run in runs:
        alerts = state.run_alerts(run)
        name = f"flowwarden-{state.instance[:12]}-{run:08d}"
        scan_files = (name, state.run_files(run))
        if same_store:
            record_scan_files(state.con, *scan_files)
        files = deliver(alerts, outputs, name, stdout=stdout, skip_store=same_store,
                        scan_files=scan_files, keep_output_when_empty=True,
                        between=lambda: failpoint("delivering"))
        if written is not None:
            written.extend(files)
        failpoint("delivered")
        state.mark_delivered(run)
    return runs


def run_stateless(pack: Pack, sources: Sequence[str], options: ReadOptions | None = None, *,
                  engine: str | Engine = "duckdb", rule_ids: Sequence[str] = (),
                  max_samples: int = 3, outputs: OutputSpec | None = None,
                  progress: Progress | None = None, stdout: IO[str] | None = None) -> RunResult:
    """A plain scan (no state) whose alerts go to ``outputs``, named by a digest of the alerts,
    so scanning the same data again replaces the same files. Each scan adds its own per-input
    statistics to a store (scan id: a random UUID), so a store tells how often data was read."""
    outputs = (outputs or OutputSpec()).check()
    engine = _engine(engine)
    rules = pack.active_rules(rule_ids)
    outcome = engine.scan(pack, rules, sources, options or DEFAULT_OPTIONS,
                          max_samples=max_samples, progress=progress)
    scan = outcome.result
    name = alerts_name(scan.alerts)
    stats = outcome.stats if outcome.stats is not None else ScanStats()
    written = deliver(scan.alerts, outputs, name, stdout=stdout,
                      scan_files=(uuid.uuid4().hex, stats.to_json()["files"]))
    return RunResult(None, alerts=scan.alerts, written=written, scan=scan, stats=stats,
                     rules=rules, engine=engine.name, per_file_stats=outcome.stats is not None)


def alerts_name(alerts: Sequence[Alert]) -> str:
    """A file name that depends only on the alerts' ids, counts and last times."""
    digest = hashlib.sha256()
    for alert in sorted(alerts, key=lambda a: a.id):
        digest.update(f"{alert.id}:{alert.event_count}:{alert.last_event_time.isoformat()}\n".encode())
    return f"flowwarden-{digest.hexdigest()[:24]}"


def _horizon(watermark: datetime | None, retention: timedelta | None) -> datetime | None:
    """Windows ending at or before this are closed: their groups are dropped, their events late."""
    return watermark - retention if watermark is not None and retention else None


def _same_file(a: str, b: str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)
