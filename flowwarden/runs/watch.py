"""``flowwarden watch``: a checkpointed scan every few minutes until stopped, and the CLI glue of
stateful and OCSF scans.

Ctrl-C (SIGINT) or SIGTERM lets the current step finish (its commit and delivery complete) and
then stops; a second Ctrl-C interrupts at once, which the checkpoint survives too (an interrupted
step is redone by the next run). ``--max-runs N`` stops after N steps.

>>> parse_every("5m"), parse_every("90s"), parse_every("1h"), parse_every("2")
(300.0, 90.0, 3600.0, 2.0)
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape

from flowwarden.alerts.delivery import OutputSpec
from flowwarden.errors import UsageError
from flowwarden.rules.loader import Pack
from flowwarden.runs.checkpoint import (
    DEFAULT_RETENTION,
    RunResult,
    run_checkpointed,
    run_stateless,
)

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 1}
SLICE = 0.2  # seconds between checks for a stop request while waiting


def parse_every(text: str) -> float:
    """Seconds in ``30s``, ``5m``, ``1h``, ``1d`` or a plain number of seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if not match:
        raise UsageError(f"--every takes a duration like 30s, 5m or 1h, got {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


@dataclass
class WatchOutcome:
    """How a watch ended: steps run, alerts emitted in all, whether a signal stopped it."""

    runs: int = 0
    alerts: int = 0
    stopped_by_signal: bool = False
    last: RunResult | None = None


@dataclass
class _StopFlag:
    requested: bool = False
    signals: list[int] = field(default_factory=list)

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        self.requested = True
        self.signals.append(signum)


def watch(step: Callable[[], RunResult], every: float, *, max_runs: int | None = None,
          report: Callable[[int, RunResult], None] | None = None,
          sleep: Callable[[float], None] = time.sleep) -> WatchOutcome:
    """Run ``step`` now and then every ``every`` seconds until stopped or ``max_runs`` steps."""
    flag = _StopFlag()
    previous = _install(flag)
    outcome = WatchOutcome()
    try:
        while not flag.requested:
            result = step()
            outcome.runs += 1
            outcome.alerts += len(result.alerts)
            outcome.last = result
            if report is not None:
                report(outcome.runs, result)
            if max_runs is not None and outcome.runs >= max_runs:
                break
            _wait(every, flag, sleep)
    finally:
        _restore(previous)
    outcome.stopped_by_signal = flag.requested
    return outcome


def _wait(seconds: float, flag: _StopFlag, sleep: Callable[[float], None]) -> None:
    deadline = time.monotonic() + seconds
    while not flag.requested:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        sleep(min(SLICE, remaining))


def _install(flag: _StopFlag) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}  # signals reach only the main thread; max_runs still ends the loop
    return {sig: signal.signal(sig, flag.handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def scan_step(pack: Pack, sources: Sequence[str], options: Any, *, state: str | None,
              engine: str, rule_ids: Sequence[str], max_samples: int, outputs: OutputSpec,
              quiet: bool, retention: timedelta | None = DEFAULT_RETENTION,
              console: Console | None = None) -> RunResult:
    """One ``scan`` with ``--state`` or an OCSF/``--output-dir`` output: run, deliver, summarize."""
    console = console or Console(stderr=True)
    if state:
        result = run_checkpointed(pack, sources, state, options, engine=engine, rule_ids=rule_ids,
                                  max_samples=max_samples, outputs=outputs, retention=retention)
    else:
        result = run_stateless(pack, sources, options, engine=engine, rule_ids=rule_ids,
                               max_samples=max_samples, outputs=outputs)
    if not quiet:
        console.print(describe_run(result, stateful=bool(state)), highlight=False, markup=False,
                      soft_wrap=True)
        if result.scanner is not None:
            from flowwarden.cli.console import print_summary

            print_summary(console, result.scanner, result.scan, result.stats)
    return result


def describe_run(result: RunResult, stateful: bool = True) -> str:
    """One line about a run: what it read and what it emitted."""
    records = result.stats.totals()["read"]
    parts = []
    if stateful:
        head = f"run {result.run}" if result.run is not None else "nothing new"
        parts.append(f"{head}: {len(result.inputs)} new or changed inputs "
                     f"({result.unchanged} unchanged)")
    parts.append(f"{records:,} records, {len(result.alerts)} alerts"
                 + (" new or updated" if stateful else ""))
    if result.late_events:
        parts.append(f"{result.late_events} late events ignored")
    if result.redelivered:
        parts.append("delivered interrupted run(s) " + ", ".join(map(str, result.redelivered)))
    if result.written:
        parts.append(f"wrote {len(result.written)} file(s)")
    return ", ".join(parts)


def watch_command(pack: Pack, sources: Sequence[str], options: Any, *, state: str, every: str,
                  max_runs: int | None, engine: str, rule_ids: Sequence[str], max_samples: int,
                  outputs: OutputSpec, quiet: bool,
                  retention: timedelta | None = DEFAULT_RETENTION) -> WatchOutcome:
    """The CLI's watch: one line per step on stderr (unless quiet)."""
    console = Console(stderr=True)
    seconds = parse_every(every)

    def step() -> RunResult:
        return run_checkpointed(pack, sources, state, options, engine=engine, rule_ids=rule_ids,
                                max_samples=max_samples, outputs=outputs, retention=retention)

    def report(number: int, result: RunResult) -> None:
        if not quiet:
            console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(describe_run(result))}",
                          highlight=False, soft_wrap=True)

    outcome = watch(step, seconds, max_runs=max_runs, report=report)
    if outcome.stopped_by_signal and not quiet:
        console.print(f"stopped after {outcome.runs} run(s); the state is saved", highlight=False)
    return outcome
