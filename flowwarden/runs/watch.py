"""``flowwarden watch``: a step (a checkpointed run) every few minutes until stopped.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from flowwarden.errors import UsageError
from flowwarden.runs.checkpoint import RunResult

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
