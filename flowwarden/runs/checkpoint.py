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

    ``--output FILE`` gets each run's alerts appended (JSON lines), so a run that delivers an
    interrupted run and then its own leaves both in the file. Before appending, the state
    remembers where the run's alerts begin; a repeated delivery cuts the file back there first,
    so a half-written or fully written but unmarked delivery is not doubled.

When delivery fails
    A sink that cannot be written (a bucket gone, a store locked, a disk full) fails the
    delivery, not the run: the failure is in ``RunResult.delivery_error``, the run stays in the
    outbox, and later runs still read and commit new inputs. Each run tries the oldest waiting
    delivery first; the runs after it wait their turn, so a sink never gets an older version of
    an alert after a newer one.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO

from flowwarden.alerts.delivery import OutputSpec, deliver
from flowwarden.alerts.formats import ALERT_FORMATS
from flowwarden.alerts.grouping import from_micros, micros
from flowwarden.alerts.groupstore import SqlGrouper
from flowwarden.alerts.model import Alert
from flowwarden.engine.engines import Engine, Progress, batchwise_engine, engine_named
from flowwarden.engine.loop import scan_loop
from flowwarden.engine.scan import ScanResult
from flowwarden.errors import FlowwardenError, UsageError
from flowwarden.logs import (
    DEFAULT_OPTIONS,
    InputObject,
    LogReader,
    ReadOptions,
    ScanStats,
    list_inputs,
)
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule
from flowwarden.runs.diskroom import room_to_scan
from flowwarden.runs.outbox import FAILPOINT_ENV, deliver_pending, failpoint, leave_output, reason
from flowwarden.runs.state import StateStore

__all__ = ["FAILPOINT_ENV", "RunResult", "deliver_pending", "failpoint", "run_checkpointed",
           "run_stateless"]

DEFAULT_RETENTION = timedelta(days=7)


@dataclass
class RunResult:
    """What one checkpointed run did."""

    run: int | None
    inputs: list[InputObject] = field(default_factory=list)
    unchanged: int = 0
    alerts: Sequence[Alert] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)
    undelivered: list[int] = field(default_factory=list)  # committed runs a sink did not take
    delivery_error: str | None = None  # why (the next run tries them again)
    late_events: int = 0
    written: list[str] = field(default_factory=list)
    scan: ScanResult = field(default_factory=ScanResult)
    stats: ScanStats = field(default_factory=ScanStats)
    rules: list[Rule] = field(default_factory=list)
    engine: str = ""
    per_file_stats: bool = True  # False where the engine keeps no per-input statistics


class InputsReader(LogReader):
    """A reader of exactly these input objects (already listed, already chosen)."""

    def __init__(self, objects: Sequence[InputObject], options: ReadOptions = DEFAULT_OPTIONS) -> None:
        super().__init__([o.url for o in objects], options)
        self._objects = list(objects)

    def inputs(self) -> list[InputObject]:
        return list(self._objects)


def _engine(engine: str | Engine) -> Engine:
    return engine_named(engine) if isinstance(engine, str) else engine


def run_checkpointed(pack: Pack, sources: Sequence[str], state_path: str | os.PathLike[str],
                     options: ReadOptions | None = None, *, engine: str | Engine = "duckdb",
                     rule_ids: Sequence[str] = (), max_samples: int = 3,
                     outputs: OutputSpec | None = None, retention: timedelta | None = DEFAULT_RETENTION,
                     progress: Progress | None = None,
                     stdout: IO[str] | None = None) -> RunResult:
    """One checkpointed run over ``sources``; see the module docstring for what it emits."""
    # The sinks are checked once by the command (``OutputSpec.preflight``), not here: in a
    # watch, a sink that fails one step is a delivery failure the next step retries.
    outputs = (outputs or OutputSpec()).check()
    if outputs.output and not ALERT_FORMATS[outputs.format].text:
        raise UsageError(f"with --state, --output gets each run's alerts appended, which "
                         f"{outputs.format} cannot take; use --output-dir DIR (a file per run)")
    options = options or DEFAULT_OPTIONS
    engine = batchwise_engine(engine, "--state")
    if any(source == "-" for source in sources):
        raise UsageError("--state cannot checkpoint standard input; name files or s3:// prefixes")
    rules = pack.active_rules(rule_ids)
    state = StateStore(state_path)
    try:
        result = RunResult(None, rules=rules, engine=engine.name)
        before_run = deliver_pending(state, outputs, stdout, result.written)
        result.redelivered = before_run.delivered
        result.undelivered, result.delivery_error = before_run.waiting, before_run.error
        listed = list_inputs(list(sources), options)
        seen = state.processed()
        new = [o for o in listed if seen.get(o.url) != (o.size, o.etag_or_mtime)]
        result.inputs, result.unchanged = new, len(listed) - len(new)
        if not new:
            leave_output(outputs)
            return result
        previous = state.watermark()
        grouper = SqlGrouper(max_samples)
        horizon = _horizon(previous, retention)
        grouper.carry(state.carried, None if horizon is None else micros(horizon))
        scanner = engine.scanner(pack, rules, max_samples=max_samples, grouper=grouper)
        reader = InputsReader(new, options)
        with room_to_scan():
            scan_loop(reader, [scanner], progress)
            scanner.finish()
            alerts = grouper.collect()
        result.scan, result.stats, result.late_events = scanner.result, reader.stats, grouper.late
        result.alerts = alerts
        newest = None if grouper.newest_us is None else from_micros(grouper.newest_us)
        watermark = _latest(previous, newest)
        failpoint("scanned")
        result.run = state.commit(new, grouper.saved, watermark, _horizon(watermark, retention),
                                  alerts, result.stats.to_json()["files"],
                                  store=state.is_file(outputs.store))
        failpoint("committed")
        if before_run.error is None:  # else this run waits behind the one that failed
            after = deliver_pending(state, outputs, stdout, result.written,
                                    fresh=(result.run, alerts))
            result.undelivered, result.delivery_error = after.waiting, after.error
        else:
            result.undelivered.append(result.run)
        leave_output(outputs)
        return result
    finally:
        state.close()


def run_stateless(pack: Pack, sources: Sequence[str], options: ReadOptions | None = None, *,
                  engine: str | Engine = "duckdb", rule_ids: Sequence[str] = (),
                  max_samples: int = 3, outputs: OutputSpec | None = None,
                  progress: Progress | None = None, stdout: IO[str] | None = None) -> RunResult:
    """A plain scan (no state) whose alerts go to ``outputs``, named by a digest of the alerts,
    so scanning the same data again replaces the same files. Each scan adds its own per-input
    statistics to a store (scan id: a random UUID), so a store tells how often data was read."""
    outputs = (outputs or OutputSpec()).check().preflight()
    engine = _engine(engine)
    rules = pack.active_rules(rule_ids)
    with room_to_scan():
        outcome = engine.scan(pack, rules, sources, options or DEFAULT_OPTIONS,
                              max_samples=max_samples, progress=progress,
                              findings=ALERT_FORMATS[outputs.format].findings)
    scan = outcome.result
    stats = outcome.stats if outcome.stats is not None else ScanStats()
    try:
        # the digest reads every alert in id order: made only where a file is named by it
        written = deliver(scan.alerts, outputs, lambda: alerts_name(scan.alerts), stdout=stdout,
                          scan_files=(uuid.uuid4().hex, stats.to_json()["files"]))
    except FlowwardenError:
        raise
    except Exception as exc:  # a disk filling up mid-write: one line, not a traceback
        raise UsageError(f"cannot deliver the alerts: {reason(exc)}") from None
    return RunResult(None, alerts=scan.alerts, written=written, scan=scan, stats=stats,
                     rules=rules, engine=engine.name, per_file_stats=outcome.stats is not None)


def alerts_name(alerts: Sequence[Alert]) -> str:
    """A file name that depends only on the alerts' ids, counts and last times."""
    digest = hashlib.sha256()
    text = getattr(alerts, "identity_text", None)  # written by a query (AlertTable, Spark's)
    if text is not None:
        for chunk in text():
            digest.update(chunk)
    else:
        for identity in sorted(alert.identity() for alert in alerts):
            digest.update(f"{identity}\n".encode())
    return f"flowwarden-{digest.hexdigest()[:24]}"


def _horizon(watermark: datetime | None, retention: timedelta | None) -> datetime | None:
    """Windows ending at or before this are closed: their groups are dropped, their events late."""
    return watermark - retention if watermark is not None and retention else None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)
