"""What a scan shows a person: a progress bar with records/s, then a summary; one line per run.

Every scan goes the same way: ``run_scan`` picks a checkpointed run (``--state``) or a plain one,
both deliver their alerts through ``alerts.delivery`` and come back as a ``RunResult`` that the
summary prints. ``watch_command`` repeats checkpointed runs with one line each.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from flowwarden.alerts.delivery import OutputSpec
from flowwarden.engine.engines import Engine
from flowwarden.engine.scan import RuleError
from flowwarden.logs import ScanStats
from flowwarden.rules.loader import Pack
from flowwarden.runs.checkpoint import (
    DEFAULT_RETENTION,
    RunResult,
    run_checkpointed,
    run_stateless,
)
from flowwarden.runs.watch import WatchOutcome, parse_every, watch

MAX_REJECTIONS_SHOWN = 20
# Where stderr is not a terminal (a file, a pipe, a CI log) lines are never wrapped: one message
# per line, whole, for grep. Tables are only as wide as their content.
UNWRAPPED_WIDTH = 100_000


def stderr_console() -> Console:
    """A rich Console on stderr: fitted to the terminal, or, writing to anything else, never
    wrapping (rich would otherwise wrap at 80 columns)."""
    console = Console(stderr=True)
    if console.is_terminal:
        return console
    return Console(stderr=True, soft_wrap=True, width=UNWRAPPED_WIDTH)


def run_scan(pack: Pack, sources: Sequence[str], options: Any, *, state: str | None,
             engine: str | Engine, rule_ids: Sequence[str], max_samples: int,
             outputs: OutputSpec, quiet: bool, retention: timedelta | None = DEFAULT_RETENTION,
             console: Console | None = None) -> RunResult:
    """The CLI's ``scan``: one run (checkpointed with ``state``), delivered, then summarized."""
    console = console or stderr_console()
    with progress_bar(console, quiet or not console.is_terminal) as advance:
        if state:
            result = run_checkpointed(pack, sources, state, options, engine=engine,
                                      rule_ids=rule_ids, max_samples=max_samples,
                                      outputs=outputs, retention=retention, progress=advance)
        else:
            result = run_stateless(pack, sources, options, engine=engine, rule_ids=rule_ids,
                                   max_samples=max_samples, outputs=outputs, progress=advance)
    if not quiet:
        if state or outputs.output_dir:
            console.print(describe_run(result, stateful=bool(state)), highlight=False,
                          markup=False, soft_wrap=True)
        if not state or result.inputs:
            print_summary(console, result, pack.replaced)
    return result



def describe_run(result: RunResult, stateful: bool = True) -> str:
    """One line about a run: what it read and what it emitted."""
    records = result.stats.totals()["read"] if result.per_file_stats else result.scan.records
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
    if result.delivery_error:
        parts.append(delivery_failure(result))
    if result.written:
        parts.append(f"wrote {len(result.written)} file(s)")
    return ", ".join(parts)


def delivery_failure(result: RunResult) -> str:
    """One line: which committed runs could not be delivered, why, and what happens next."""
    runs = ", ".join(map(str, result.undelivered))
    return (f"delivery of run(s) {runs} failed: {result.delivery_error}; they are committed "
            f"and the next run with this --state delivers them")


def watch_command(pack: Pack, sources: Sequence[str], options: Any, *, state: str, every: str,
                  max_runs: int | None, engine: str | Engine, rule_ids: Sequence[str],
                  max_samples: int, outputs: OutputSpec, quiet: bool,
                  retention: timedelta | None = DEFAULT_RETENTION) -> WatchOutcome:
    """The CLI's watch: one line per step on stderr (unless quiet)."""
    console = stderr_console()
    seconds = parse_every(every)

    def step() -> RunResult:
        return run_checkpointed(pack, sources, state, options, engine=engine, rule_ids=rule_ids,
                                max_samples=max_samples, outputs=outputs, retention=retention)

    def report(number: int, result: RunResult) -> None:
        if not quiet or result.delivery_error:
            console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(describe_run(result))}",
                          highlight=False, soft_wrap=True)

    outcome = watch(step, seconds, max_runs=max_runs, report=report)
    if outcome.stopped_by_signal and not quiet:
        console.print(f"stopped after {outcome.runs} run(s); the state is saved", highlight=False)
    return outcome


@contextmanager
def progress_bar(console: Console, disabled: bool) -> Iterator[Callable[[int], None] | None]:
    """An ``advance(records)`` callback drawing a transient progress line, or None."""
    if disabled:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed:,} records"),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("scan", total=None, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            elapsed = progress.tasks[0].elapsed or 0
            if elapsed > 0:
                rate = progress.tasks[0].completed / elapsed
                progress.update(task, rate=f"{rate:,.0f} records/s")

        yield advance


def print_summary(console: Console, result: RunResult,
                  replaced: Mapping[str, str] | None = None) -> None:
    """Records read, rejections, then matches, alerts and errors per rule (the rules that ran),
    and which loaded rules were replaced by others."""
    scan, stats = result.scan, result.stats
    engine = f"engine {result.engine}, {len(result.rules)} rules"
    if result.per_file_stats:
        console.print(f"{records_line(stats)}   {engine}", highlight=False)
        _print_rejections(console, result)
    else:
        console.print(f"records {scan.records:,}   {engine}", highlight=False)
    table = Table(title="alerts by rule", title_justify="left")
    for column in ("rule", "severity", "matches", "alerts", "errors"):
        table.add_column(column, justify="left" if column in ("rule", "severity") else "right")
    by_rule = getattr(scan.alerts, "count_by_rule", None)  # a SqlGrouper's, in one query
    alerts = Counter(by_rule() if by_rule is not None else (a.rule_id for a in scan.alerts))
    errors = scan.errors_by_rule()
    for rule in result.rules:
        table.add_row(rule.id, rule.severity, str(scan.matches[rule.id]), str(alerts[rule.id]),
                      str(errors[rule.id]))
    console.print(table)
    for old, new in sorted((replaced or {}).items()):
        console.print(f"replaced: {old} by {new}", highlight=False, markup=False)
    for error in scan.errors[:5]:
        where = error_location(error, stats if result.per_file_stats else None)
        console.print(f"[red]rule error[/] {escape(error.rule_id)}.{error.function}() on "
                      f"{escape(where)}: {escape(error.error)}", highlight=False)


def records_line(stats: ScanStats) -> str:
    """``records read N = parsed N + rejected N``, and how many parsed records --since/--until
    left out, if any.

    >>> from flowwarden.logs import FileStats
    >>> stats = ScanStats({"f": FileStats("f", read=10, parsed=9, rejected=1, filtered=4)})
    >>> records_line(stats)
    'records read 10 = parsed 9 + rejected 1 (filtered 4 of the parsed by --since/--until)'
    """
    totals = stats.totals()
    line = (f"records read {totals['read']:,} = parsed {totals['parsed']:,} + "
            f"rejected {totals['rejected']:,}")
    if totals["filtered"]:
        line += f" (filtered {totals['filtered']:,} of the parsed by --since/--until)"
    return line


def error_location(error: RuleError, stats: ScanStats | None) -> str:
    """Where the record a rule failed on came from: ``file:line`` for text inputs, else
    ``file record N`` (1-based: the record's number in the input where the reader knows it,
    else among the records the scan read from it)."""
    file_stats = stats.files.get(error.source) if stats is not None else None
    number = file_stats.line_at(error.position) if file_stats is not None else None
    if number is None:
        return f"{error.source} record {error.position + 1:,}"
    if file_stats is not None and file_stats.numbered_by == "line":
        return f"{error.source}:{number}"
    return f"{error.source} record {number:,}"


def first_rejection(stats: ScanStats) -> str:
    """``first: file:line: reason`` of the first rejected record kept, for a one-line error."""
    for file_stats in stats.files.values():
        for rejection in file_stats.rejections:
            where = rejection_location(str(rejection.source), rejection.line)
            return f"first: {where}: {rejection.reason}"
    return "see --stats"


def rejection_location(source: str, line: int | None) -> str:
    """``file:line`` of a rejected record, or just the file when the input has no lines."""
    return f"{source}:{line}" if line is not None else source


def _print_rejections(console: Console, result: RunResult) -> None:
    totals = result.stats.totals()
    shown = 0
    for file_stats in result.stats.files.values():
        for rejection in file_stats.rejections:
            if shown < MAX_REJECTIONS_SHOWN:
                where = rejection_location(str(rejection.source), rejection.line)
                console.print(f"[yellow]rejected[/] {escape(where)}: {escape(rejection.reason)}",
                              highlight=False)
            shown += 1
    if totals["rejected"] > shown:
        console.print(f"... {totals['rejected'] - shown} more rejected records (see --stats)")
