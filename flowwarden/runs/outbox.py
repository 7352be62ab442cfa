"""The outbox of a checkpointed run: committed alerts delivered to every sink, in run order.

See ``flowwarden.runs.checkpoint`` for when a run is committed and what a kill at any moment
leaves; this module is the part after the commit, and the failpoints the kill tests use.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from flowwarden.alerts.delivery import OutputSpec, deliver
from flowwarden.alerts.groupstore import AlertTable
from flowwarden.alerts.model import Alert
from flowwarden.alerts.store import record_scan_files
from flowwarden.errors import FlowwardenError
from flowwarden.runs.outboxalerts import FreshRun
from flowwarden.runs.state import StateStore
from flowwarden.runs.statefile import DamagedState
from flowwarden.util.files import size_of

FAILPOINT_ENV = "FLOWWARDEN_FAILPOINT"


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL here if ``$FLOWWARDEN_FAILPOINT`` names this point.

    The crash tests use it to stop a run at chosen moments: ``scanned`` (before the commit),
    ``committed`` (after it, before delivery), ``appending`` (half of a run's alerts appended
    to ``--output``), ``delivering`` (between two sinks) and ``delivered`` (before the outbox
    entry is marked).
    """
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Delivery:
    """What ``deliver_pending`` did: the runs delivered, and the first failure with the runs
    still waiting (the failed one and those after it, kept in order)."""

    delivered: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    error: str | None = None


def deliver_pending(state: StateStore, outputs: OutputSpec, stdout: IO[str] | None = None,
                    written: list[str] | None = None,
                    fresh: tuple[int, AlertTable] | None = None) -> Delivery:
    """Deliver every committed, undelivered run in order, until one fails. ``fresh``: a run
    this process just committed, and its alerts as the scan's tables (``FreshRun``).

    A failure (a sink that cannot be written, whatever the cause) does not stop the caller: the
    run stays in the outbox, the next run tries it again, and runs after it wait so that no sink
    gets an older alert version after a newer one. What the state itself cannot read is not a
    delivery failure and is raised.
    """
    runs = state.pending_runs()
    same_store = state.is_file(outputs.store)
    output = str(Path(outputs.output).resolve()) if outputs.output else None
    done = Delivery()
    for index, run in enumerate(runs):
        waiting = state.run_alerts(run)
        alerts: Sequence[Alert] = (FreshRun(fresh[1], waiting) if fresh is not None
                                   and fresh[0] == run else waiting)
        name = f"flowwarden-{state.instance[:12]}-{run:08d}"
        scan_files = (name, state.run_files(run))
        append_at: int | None | Literal[False] = False
        if output is not None:
            append_at = _append_offset(state, run, output)
        try:
            if same_store:
                record_scan_files(state.con, *scan_files)
            files = deliver(alerts, outputs, name, stdout=stdout, skip_store=same_store,
                            scan_files=scan_files, keep_output_when_empty=True,
                            between=lambda: failpoint("delivering"), append_at=append_at,
                            midway=lambda: failpoint("appending"))
        except DamagedState:  # the outbox itself, read as it is delivered
            raise
        except Exception as exc:  # any sink failing for any reason must not wedge the state
            done.waiting, done.error = runs[index:], reason(exc)
            return done
        if written is not None:
            written.extend(files)
        failpoint("delivered")
        state.mark_delivered(run)
        done.delivered.append(run)
    return done


def _append_offset(state: StateStore, run: int, output: str) -> int | None:
    """Where run ``run``'s alerts go in ``output``: where an interrupted delivery of the same
    run began, or the file's end now, remembered before anything is written."""
    offset = state.output_offset(run, output)
    if offset is None:
        offset = size_of(output)
        if offset is not None:
            state.set_output_offset(run, output, offset)
    return offset


def leave_output(outputs: OutputSpec) -> None:
    """``--output`` exists after every run, empty if no run has had alerts for it yet."""
    if outputs.output and not Path(outputs.output).exists():
        Path(outputs.output).touch()


def reason(exc: Exception) -> str:
    if isinstance(exc, FlowwardenError):
        return str(exc)
    text = str(exc).strip().split("\n", 1)[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
