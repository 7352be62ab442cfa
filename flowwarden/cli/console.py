"""What a scan shows a person: a progress bar with records/s, then a summary table."""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from flowwarden.alerts.model import Alert
from flowwarden.alerts.store import AlertStore, write_lines, write_lines_file
from flowwarden.engine.scan import Scanner, ScanResult
from flowwarden.rules.loader import Pack

MAX_REJECTIONS_SHOWN = 20


@dataclass
class ScanOutcome:
    result: ScanResult
    stats: Any


def run_scan_command(pack: Pack, sources: Sequence[str], options: Any, *, engine: str,
                     rule_ids: Sequence[str], output: str | None, store: str | None,
                     max_samples: int, quiet: bool) -> ScanOutcome:
    """Read, scan, write alerts, and report; the CLI's scan in one call."""
    from flowwarden.logs import read

    console = Console(stderr=True)
    scanner = Scanner(pack, pack.active_rules(rule_ids), engine, max_samples)
    reader = read(list(sources), options)
    with _progress(console, quiet or not console.is_terminal) as advance:
        result = scanner.scan(reader, advance)
    deliver(result.alerts, output, store, reader.stats.to_json()["files"])
    if not quiet:
        print_summary(console, scanner, result, reader.stats)
    return ScanOutcome(result, reader.stats)


def run_spark_scan_command(pack: Pack, sources: Sequence[str], options: Any, *,
                           rule_ids: Sequence[str], output: str | None, store: str | None,
                           max_samples: int, quiet: bool, master: str | None,
                           conf: dict[str, str], pack_paths: Sequence[str] | None) -> list[Alert]:
    """The CLI's scan on Spark: scan, write alerts as ``run_scan_command`` does, report."""
    from flowwarden.engine.spark.session import spark_scan

    result = spark_scan(pack, pack.active_rules(rule_ids), sources, master=master,
                        options=options, max_samples=max_samples, pack_paths=pack_paths,
                        conf=conf)
    deliver(result.alerts, output, store)
    if not quiet:
        print(f"records {result.records:,}, alerts {len(result.alerts):,} (engine spark)",
              file=sys.stderr)
    return result.alerts


def deliver(alerts: list[Alert], output: str | None, store: str | None,
            files: Any = None) -> None:
    """Alerts to ``output`` (else stdout) as JSON lines and to the ``store``, with the scan's
    per-file statistics when given."""
    if output:
        write_lines_file(alerts, output)
    else:
        write_lines(alerts, sys.stdout)
        sys.stdout.flush()
    if store:
        alert_store = AlertStore(store)
        try:
            alert_store.add(alerts)
            if files is not None:
                alert_store.add_scan_files(uuid.uuid4().hex, files)
        finally:
            alert_store.close()


@contextmanager
def _progress(console: Console, disabled: bool) -> Iterator[Any]:
    if disabled:
        yield lambda n: None
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


def print_summary(console: Console, scanner: Scanner, result: ScanResult, stats: Any) -> None:
    totals = stats.totals()
    console.print(
        f"records read {totals['read']:,} = parsed {totals['parsed']:,} + rejected {totals['rejected']:,}"
        f"   engine {scanner.engine}, {len(scanner.rules)} rules"
    )
    shown = 0
    for file_stats in stats.files.values():
        for rejection in file_stats.rejections:
            if shown < MAX_REJECTIONS_SHOWN:
                console.print(f"[yellow]rejected[/] {escape(str(rejection.source))}:"
                              f"{rejection.line}: {escape(rejection.reason)}", highlight=False)
            shown += 1
    if totals["rejected"] > shown:
        console.print(f"... {totals['rejected'] - shown} more rejected records (see --stats)")
    table = Table(title="alerts by rule", title_justify="left")
    for column in ("rule", "severity", "matches", "alerts", "errors"):
        table.add_column(column, justify="left" if column in ("rule", "severity") else "right")
    alerts = Counter(a.rule_id for a in result.alerts)
    errors: Counter[str] = Counter()
    for (rule_id, _), count in result.error_counts.items():
        errors[rule_id] += count
    for rule in scanner.rules:
        table.add_row(rule.id, rule.severity, str(result.matches[rule.id]), str(alerts[rule.id]),
                      str(errors[rule.id]))
    console.print(table)
    for error in result.errors[:5]:
        console.print(f"[red]rule error[/] {escape(error.rule_id)}.{error.function}() on "
                      f"{escape(error.source)}#{error.position}: {escape(error.error)}",
                      highlight=False)
