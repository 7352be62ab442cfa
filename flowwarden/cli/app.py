"""The `flowwarden` command: parse arguments, call the layers, print."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from flowwarden import __version__
from flowwarden.config import Config, load_config
from flowwarden.errors import FlowwardenError, UsageError
from flowwarden.rules.loader import Pack, load_pack, resolve_pack_paths

F = TypeVar("F", bound=Callable[..., Any])
EXIT_OK, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2


def friendly_errors(fn: F) -> F:
    """User mistakes print one line on stderr and exit 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FlowwardenError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_INPUT)

    return wrapper  # type: ignore[return-value]


def config_option(fn: F) -> F:
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False),
        help="Configuration file (default: ./flowwarden.yaml if present, else built-in defaults).",
    )(fn)


def pack_option(fn: F) -> F:
    return click.option(
        "--pack", "packs", multiple=True, metavar="NAME|PATH",
        help="Built-in pack (default, tuned) or a rule directory in Panther's layout. Repeatable.",
    )(fn)


def load_rules(packs: Sequence[str], config_path: str | None, report: bool = True) -> Pack:
    """Load the packs with the configuration; print problems (with paths) on stderr."""
    config: Config = load_config(config_path)
    pack = load_pack(resolve_pack_paths(packs), config)
    if report:
        for problem in pack.problems:
            click.echo(f"invalid: {problem}", err=True)
    return pack


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowwarden")
def main() -> None:
    """flowwarden runs Panther-format detection rules over network flow logs.

    Loading a rule directory runs its Python code: load only rules you trust.
    """


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@pack_option
@config_option
@click.option("--filter", "filters", multiple=True, metavar="RuleID=A,B",
              help="Only run the tests of these rules.")
@friendly_errors
def test_command(paths: tuple[str, ...], packs: tuple[str, ...], config_path: str | None,
                 filters: tuple[str, ...]) -> None:
    """Run the unit tests (`Tests:`) of every rule in PATHS (default: the built-in pack)."""
    from flowwarden.rules.testing import run_tests

    pack = load_rules([*paths, *packs], config_path)
    report = run_tests(pack, _rule_filter(filters))
    for rule_id, outcomes in report.by_rule().items():
        failed = [o for o in outcomes if not o.passed]
        if failed:
            click.echo(f"FAIL {rule_id} ({len(outcomes) - len(failed)}/{len(outcomes)} passed)")
            for outcome in failed:
                click.echo(f"  - {outcome.name}: {outcome.reason}")
        else:
            click.echo(f"PASS {rule_id} ({len(outcomes)} tests)")
    for path, reason in pack.skipped:
        click.echo(f"skipped {path}: {reason}")
    failed_total = report.failed + len(pack.problems)
    click.echo(f"{report.passed} passed, {failed_total} failed")
    sys.exit(EXIT_FINDINGS if failed_total else EXIT_OK)


def _rule_filter(filters: Sequence[str]) -> list[str]:
    ids: list[str] = []
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or key != "RuleID":
            raise UsageError(f"--filter takes RuleID=A,B, got {item!r}")
        ids.extend(v for v in value.split(",") if v)
    return ids


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@config_option
@friendly_errors
def check_command(paths: tuple[str, ...], config_path: str | None) -> None:
    """Validate rule directories: every problem with its file path, and what was skipped."""
    pack = load_rules(paths, config_path, report=False)
    for problem in pack.problems:
        click.echo(f"invalid: {problem}")
    for path, reason in pack.skipped:
        click.echo(f"skipped {path}: {reason}")
    click.echo(f"{len(pack.rules)} rules, {len(pack.data_models)} data-model log types, "
               f"{len(pack.problems)} problems, {len(pack.skipped)} skipped")
    sys.exit(EXIT_FINDINGS if pack.problems else EXIT_OK)


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not an ISO 8601 time: {value!r} (e.g. 2024-05-01 or 2024-05-01T12:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def input_options(fn: F) -> F:
    options = [
        click.option("--log-type", help="Override log-type detection (AWS.VPCFlow, OCSF.NetworkActivity, ...)."),
        click.option("--format", "fmt", metavar="'${version} ${account-id} ...'",
                     help="AWS format string for headerless flow logs (CloudWatch, Firehose)."),
        click.option("--since", help="Only inputs and events at or after this time (ISO 8601)."),
        click.option("--until", help="Only inputs and events before this time (ISO 8601)."),
        click.option("--account", "accounts", multiple=True, help="Only these AWS accounts (by S3 key)."),
        click.option("--region", "regions", multiple=True, help="Only these regions (by S3 key)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def read_options(log_type: str | None, fmt: str | None, since: str | None, until: str | None,
                 accounts: Sequence[str], regions: Sequence[str]) -> Any:
    from flowwarden.logs import ReadOptions

    return ReadOptions(log_type=log_type, format=fmt, since=parse_time(since),
                       until=parse_time(until), accounts=tuple(accounts), regions=tuple(regions))


OUTPUT_FORMATS = ("jsonl", "ocsf", "ocsf-parquet")


def output_options(fn: F) -> F:
    """Where alerts go: shared by scan and watch."""
    options = [
        click.option("-o", "--output", type=click.Path(dir_okay=False),
                     help="Write alerts here (default: stdout; with --state, each run's alerts)."),
        click.option("--output-format", type=click.Choice(OUTPUT_FORMATS), default="jsonl",
                     show_default=True,
                     help="jsonl: flowwarden alerts. ocsf: OCSF 1.1.0 Detection Findings as JSON "
                          "lines. ocsf-parquet: the findings as Parquet."),
        click.option("--output-dir", metavar="DIR|s3://bucket/prefix",
                     help="Write each run's alerts as one file here; ocsf-parquet uses the Security "
                          "Lake custom-source layout ext/flowwarden/region=/accountId=/eventDay=/."),
        click.option("--store", type=click.Path(dir_okay=False),
                     help="Also add alerts to this DuckDB alert store (one row per alert id)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def key_values(pairs: Sequence[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict (a later key wins); a pair without ``=`` is a usage error.

    >>> key_values(["spark.executor.memory=8g", "a.b=x=y"], "--spark-conf")
    {'spark.executor.memory': '8g', 'a.b': 'x=y'}
    """
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} takes KEY=VALUE, got {pair!r}")
        found[key.strip()] = value
    return found


def output_spec(output_format: str, output: str | None, output_dir: str | None,
                store: str | None) -> Any:
    from flowwarden.alerts.delivery import OutputSpec

    return OutputSpec(output_format, output=output, output_dir=output_dir, store=store).check()


@main.command("scan")
@click.argument("sources", nargs=-1, required=True)
@pack_option
@config_option
@input_options
@click.option("--engine", type=click.Choice(["duckdb", "python", "spark"]), default="duckdb",
              show_default=True,
              help="duckdb: compiled conditions, Python only where needed. python: every rule on "
                   "every event. spark: the same on a Spark cluster (pip install 'flowwarden[spark]').")
@click.option("--master", help="Spark master URL for --engine spark (default: local[*]).")
@click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE",
              help="A Spark setting for --engine spark (repeatable), as spark-submit's --conf.")
@click.option("--rule-id", "rule_ids", multiple=True, help="Run only these rules (enabled or not).")
@output_options
@click.option("--state", type=click.Path(dir_okay=False),
              help="DuckDB checkpoint: read only new or changed inputs, continue open dedup windows "
                   "and thresholds, emit only new or updated alerts.")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), help="Write read/parse/reject counts per file as JSON.")
@click.option("--strict", is_flag=True, help="Exit 2 if any record was rejected.")
@click.option("--fail-on-alert", is_flag=True, help="Exit 1 if any alert was produced.")
@click.option("--max-samples", default=3, show_default=True, help="Sample events kept per alert.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@friendly_errors
def scan_command(sources: tuple[str, ...], packs: tuple[str, ...], config_path: str | None,
                 log_type: str | None, fmt: str | None, since: str | None, until: str | None,
                 accounts: tuple[str, ...], regions: tuple[str, ...], engine: str,
                 master: str | None, spark_conf: tuple[str, ...], rule_ids: tuple[str, ...],
                 output: str | None, output_format: str, output_dir: str | None, store: str | None,
                 state: str | None, stats_path: str | None, strict: bool, fail_on_alert: bool,
                 max_samples: int, quiet: bool) -> None:
    """Run the rules over SOURCES (files, directories, globs, s3://bucket/prefix, or - for stdin)."""
    pack = load_rules(packs, config_path)
    options = read_options(log_type, fmt, since, until, accounts, regions)
    if engine != "spark" and (master or spark_conf):
        raise UsageError("--master and --spark-conf need --engine spark")
    if engine == "spark":
        if state or output_dir or output_format != "jsonl" or stats_path or strict:
            raise UsageError("--engine spark writes JSON-line alerts (-o, --store); "
                             "--state, --output-dir, --output-format, --stats and --strict "
                             "need --engine duckdb or python")
        from flowwarden.cli.console import run_spark_scan_command

        stats = None
        alerts = run_spark_scan_command(pack, sources, options, rule_ids=rule_ids, output=output,
                                        store=store, max_samples=max_samples, quiet=quiet,
                                        master=master, pack_paths=packs or None,
                                        conf=key_values(spark_conf, "--spark-conf"))
    elif state or output_dir or output_format != "jsonl":
        from flowwarden.runs.watch import scan_step

        result = scan_step(pack, sources, options, state=state, engine=engine, rule_ids=rule_ids,
                           max_samples=max_samples, quiet=quiet,
                           outputs=output_spec(output_format, output, output_dir, store))
        stats, alerts = result.stats, result.alerts
    else:
        from flowwarden.cli.console import run_scan_command

        outcome = run_scan_command(pack, sources, options, engine=engine, rule_ids=rule_ids,
                                   output=output, store=store, max_samples=max_samples, quiet=quiet)
        stats, alerts = outcome.stats, outcome.result.alerts
    if stats_path:  # refused above for spark, which has no per-file statistics
        Path(stats_path).write_text(json.dumps(stats.to_json(), indent=2))
    if strict and stats.totals()["rejected"]:
        sys.exit(EXIT_INPUT)
    if fail_on_alert and alerts:
        sys.exit(EXIT_FINDINGS)


@main.command("watch")
@click.argument("sources", nargs=-1, required=True)
@pack_option
@config_option
@input_options
@click.option("--state", required=True, type=click.Path(dir_okay=False),
              help="DuckDB checkpoint file (created on the first run).")
@click.option("--every", default="5m", show_default=True, help="Time between runs: 30s, 5m, 1h.")
@click.option("--max-runs", type=click.IntRange(min=1), help="Stop after N runs (default: until Ctrl-C).")
@click.option("--engine", type=click.Choice(["duckdb", "python"]), default="duckdb", show_default=True)
@click.option("--rule-id", "rule_ids", multiple=True, help="Run only these rules (enabled or not).")
@output_options
@click.option("--max-samples", default=3, show_default=True, help="Sample events kept per alert.")
@click.option("-q", "--quiet", is_flag=True, help="No line per run.")
@friendly_errors
def watch_command(sources: tuple[str, ...], packs: tuple[str, ...], config_path: str | None,
                  log_type: str | None, fmt: str | None, since: str | None, until: str | None,
                  accounts: tuple[str, ...], regions: tuple[str, ...], state: str, every: str,
                  max_runs: int | None, engine: str, rule_ids: tuple[str, ...],
                  output: str | None, output_format: str, output_dir: str | None,
                  store: str | None, max_samples: int, quiet: bool) -> None:
    """Scan SOURCES with --state every --every until stopped; Ctrl-C finishes the current run."""
    from flowwarden.runs.watch import parse_every
    from flowwarden.runs.watch import watch_command as run_watch

    parse_every(every)  # a bad duration is a usage error before anything runs
    pack = load_rules(packs, config_path)
    options = read_options(log_type, fmt, since, until, accounts, regions)
    run_watch(pack, sources, options, state=state, every=every, max_runs=max_runs, engine=engine,
              rule_ids=rule_ids, max_samples=max_samples, quiet=quiet,
              outputs=output_spec(output_format, output, output_dir, store))


@main.command("backtest")
@click.argument("sources", nargs=-1, required=True)
@pack_option
@click.option("--config", "config_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Configuration file; give it twice to compare two configurations side by side.")
@click.option("--log-type", help="Override log-type detection (AWS.VPCFlow, OCSF.NetworkActivity, ...).")
@click.option("--flow-format", metavar="'${version} ${account-id} ...'",
              help="AWS format string for headerless flow logs (CloudWatch, Firehose).")
@click.option("--since", help="Only inputs and events at or after this time (ISO 8601).")
@click.option("--until", help="Only inputs and events before this time (ISO 8601).")
@click.option("--account", "accounts", multiple=True, help="Only these AWS accounts (by S3 key).")
@click.option("--region", "regions", multiple=True, help="Only these regions (by S3 key).")
@click.option("--engine", type=click.Choice(["duckdb", "python"]), default="duckdb", show_default=True)
@click.option("--rule-id", "rule_ids", multiple=True, help="Run only these rules (enabled or not).")
@click.option("--top", default=5, show_default=True, help="Dedup keys shown per rule.")
@click.option("--format", "out_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: tables for people; json: for machines.")
@friendly_errors
def backtest_command(sources: tuple[str, ...], packs: tuple[str, ...],
                     config_paths: tuple[str, ...], log_type: str | None, flow_format: str | None,
                     since: str | None, until: str | None, accounts: tuple[str, ...],
                     regions: tuple[str, ...], engine: str, rule_ids: tuple[str, ...], top: int,
                     out_format: str) -> None:
    """Run rules over historical SOURCES without alerting anyone: per rule matched events,
    alerts, alerts per day, top dedup keys, first and last alert."""
    from flowwarden.runs.backtest import load_sides, render_backtest, run_backtest

    if len(config_paths) > 2:
        raise UsageError("--config compares at most two configurations")
    sides = load_sides(packs, config_paths)
    for _, pack in sides:
        for problem in pack.problems:
            click.echo(f"invalid: {problem}", err=True)
    options = read_options(log_type, flow_format, since, until, accounts, regions)
    report = run_backtest(sources, sides, options, engine=engine, rule_ids=rule_ids, top=top)
    click.echo(render_backtest(report, out_format), nl=False)

# ---- END ---------------------------------------------------------------------------------------


@main.command("parse")
@click.argument("sources", nargs=-1, required=True)
@input_options
@click.option("--to", "to", type=click.Choice(["parquet", "jsonl"]), required=True, help="Output format.")
@click.option("-o", "--out", required=False, type=click.Path(dir_okay=False),
              help="Output file (default: stdout for jsonl; required for parquet).")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), help="Write read/parse/reject counts as JSON.")
@friendly_errors
def parse_command(sources: tuple[str, ...], log_type: str | None, fmt: str | None,
                  since: str | None, until: str | None, accounts: tuple[str, ...],
                  regions: tuple[str, ...], to: str, out: str | None, stats_path: str | None) -> None:
    """Normalize SOURCES to Panther-named records as Parquet or JSON lines."""
    from flowwarden.logs import read
    from flowwarden.logs.convert import write_normalized

    if to == "parquet" and not out:
        raise UsageError("--to parquet needs --out FILE")
    reader = read(list(sources), read_options(log_type, fmt, since, until, accounts, regions))
    write_normalized(reader, to, out or sys.stdout)  # type: ignore[arg-type]
    totals = reader.stats.totals()
    click.echo(f"records read {totals['read']}, parsed {totals['parsed']}, rejected {totals['rejected']}",
               err=True)
    for stats in reader.stats.files.values():
        for rejection in stats.rejections:
            click.echo(f"rejected {rejection.source}:{rejection.line}: {rejection.reason}", err=True)
    if stats_path:
        Path(stats_path).write_text(json.dumps(reader.stats.to_json(), indent=2))


@main.command("explain")
@click.argument("rule_id")
@pack_option
@config_option
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "html"]),
              default="text", show_default=True, help="Output format.")
@friendly_errors
def explain_command(rule_id: str, packs: tuple[str, ...], config_path: str | None,
                    fmt: str) -> None:
    """Explain RULE_ID: metadata, ATT&CK, detection logic, exclusions, indicators, outputs."""
    from flowwarden.pages import render_explanation

    pack = load_rules(packs, config_path)
    click.echo(render_explanation(pack, rule_id, fmt), nl=False)


@main.command("catalog")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@pack_option
@config_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write the site into (created if missing).")
@friendly_errors
def catalog_command(paths: tuple[str, ...], packs: tuple[str, ...], config_path: str | None,
                    out_dir: str) -> None:
    """Write a static HTML catalog of the rules in PATHS (default: the built-in pack)."""
    from flowwarden.pages import build_catalog

    pack = load_rules([*paths, *packs], config_path)
    index = build_catalog(pack, out_dir)
    click.echo(f"{len(pack.rules)} rules: {index}")


@main.command("report")
@click.option("--store", required=True, type=click.Path(dir_okay=False),
              help="DuckDB alert store written by `scan --store`.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write (one file, viewable offline).")
@friendly_errors
def report_command(store: str, out_path: str) -> None:
    """Write a one-file HTML report of the alerts and input statistics in an alert store."""
    from flowwarden.pages import build_report

    click.echo(f"report: {build_report(store, out_path)}")


@main.group("logic")
def logic_group() -> None:
    """The condition IR extracted from rules' Python."""


@logic_group.command("stats")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@pack_option
@config_option
@friendly_errors
def logic_stats_command(paths: tuple[str, ...], packs: tuple[str, ...],
                        config_path: str | None) -> None:
    """How many rules in PATHS extract to the IR fully, partially, or not at all, and why."""
    from flowwarden.logic.stats import logic_stats, render_stats

    pack = load_rules([*paths, *packs], config_path)
    click.echo(render_stats(logic_stats(pack)).rstrip("\n"))


if __name__ == "__main__":
    main()
