"""The `flowwarden` command: parse arguments, call the layers, print."""

from __future__ import annotations

import json
import sys

import click

from flowwarden import __version__
from flowwarden.cli.options import (
    EXIT_FINDINGS,
    EXIT_OK,
    check_targets,
    config_option,
    engine_option,
    friendly_errors,
    input_options,
    key_values,
    load_rules,
    output_options,
    output_spec,
    pack_option,
    read_options,
    warn,
    write_stats,
)
from flowwarden.engine.engines import ENGINES, batchwise_engines, engine_named
from flowwarden.errors import UsageError
from flowwarden.util.allocator import choose_arrow_pool


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowwarden")
def main() -> None:
    """flowwarden runs Panther-format detection rules over network flow logs.

    Loading a rule directory runs its Python code: load only rules you trust.
    """
    choose_arrow_pool()


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@pack_option
@config_option
@click.option("--filter", "filters", multiple=True, metavar="KEY=A,B|KEY!=A",
              help="Only test detections whose YAML attribute KEY (RuleID, Severity, LogTypes, "
                   "Tags, AnalysisType, ...) is one of the values, or (KEY!=) none of them. "
                   "Repeatable: every filter must hold.")
@click.option("--minimum-tests", type=click.IntRange(min=0), default=0, show_default=True,
              help="A detection with fewer tests fails; above 1, it also needs one positive "
                   "and one negative test.")
@click.option("--verbose", is_flag=True, help="One PASS/FAIL line per test.")
@friendly_errors
def test_command(paths: tuple[str, ...], packs: tuple[str, ...], config_path: str | None,
                 filters: tuple[str, ...], minimum_tests: int, verbose: bool) -> None:
    """Run the unit tests (`Tests:`) of every rule, scheduled rule and policy in PATHS
    (default: the built-in pack). The last line counts passed and failed tests, then files
    that failed to load (invalid) and analysis types not run (skipped)."""
    from flowwarden.cli.testing_view import render_report
    from flowwarden.rules.filters import parse_filters, selector
    from flowwarden.rules.testing import run_tests

    select = selector(parse_filters(filters))
    pack = load_rules([*paths, *packs], config_path, select=select)
    report = run_tests(pack, minimum_tests=minimum_tests)
    # As Panther's test tool: a filter that selects nothing fails, rather than pass silently.
    unmatched = select is not None and not pack.rules and not pack.skipped
    if unmatched:
        click.echo(f"error: no detection matched --filter {' '.join(filters)}", err=True)
    for line in render_report(report, pack, verbose):
        click.echo(line)
    sys.exit(EXIT_FINDINGS if report.failed or pack.problems or unmatched else EXIT_OK)


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@pack_option
@config_option
@friendly_errors
def check_command(paths: tuple[str, ...], packs: tuple[str, ...], config_path: str | None) -> None:
    """Validate rule directories (default: the built-in pack): every problem with its file path,
    warnings (the checks `explain` and the catalog show too), replaced rules and what was
    skipped. Exits 1 on problems; warnings alone exit 0."""
    from flowwarden.pages.schemas import summary_attribute_problems

    pack = load_rules([*paths, *packs], config_path, report=False)
    warnings = [f"{rule.yaml_path}: {message}" for rule in pack.rules
                for message in summary_attribute_problems(rule, pack.data_models)]
    for problem in pack.problems:
        click.echo(f"invalid: {problem}")
    for warning in warnings:
        click.echo(f"warning: {warning}")
    for old, new in sorted(pack.replaced.items()):
        click.echo(f"replaced: {old} by {new}")
    for path, reason in pack.skipped:
        click.echo(f"skipped {path}: {reason}")
    click.echo(f"{len(pack.rules)} rules, {len(pack.data_models)} data-model log types, "
               f"{len(pack.problems)} problems, {len(warnings)} warnings, "
               f"{len(pack.skipped)} skipped")
    sys.exit(EXIT_FINDINGS if pack.problems else EXIT_OK)


@main.command("scan")
@click.argument("sources", nargs=-1, required=True)
@pack_option
@config_option
@input_options
@engine_option(list(ENGINES))
@click.option("--master", help="Spark master URL for --engine spark (default: local[*]).")
@click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE",
              help="A Spark setting for --engine spark (repeatable), as spark-submit's --conf.")
@click.option("--verbose", is_flag=True,
              help="--engine spark: show Spark's own output (JVM, log4j, Ivy); by default it "
                   "goes to $TMPDIR/flowwarden-spark-*.log and only errors are logged.")
@click.option("--rule-id", "rule_ids", multiple=True, help="Run only these rules (enabled or not).")
@output_options
@click.option("--state", type=click.Path(dir_okay=False),
              help="DuckDB checkpoint: read only new or changed inputs, continue open dedup windows "
                   "and thresholds, emit only new or updated alerts.")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), help="Write read/parse/reject counts per file as JSON.")
@click.option("--strict", is_flag=True,
              help="Exit 2 if any record was rejected or the run cannot have done what was "
                   "meant: an unknown --format field, no inputs or none in a known format, "
                   "rules that failed to load, a rule raising on most events.")
@click.option("--fail-on-alert", is_flag=True, help="Exit 1 if any alert was produced.")
@click.option("--max-samples", default=3, show_default=True, help="Sample events kept per alert.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bar or summary (warnings and errors are still printed).")
@friendly_errors
def scan_command(sources: tuple[str, ...], packs: tuple[str, ...], config_path: str | None,
                 log_type: str | None, fmt: str | None, since: str | None, until: str | None,
                 accounts: tuple[str, ...], regions: tuple[str, ...], max_line_bytes: int, engine: str,
                 master: str | None, spark_conf: tuple[str, ...], verbose: bool,
                 rule_ids: tuple[str, ...],
                 output: str | None, output_format: str, output_dir: str | None, store: str | None,
                 state: str | None, stats_path: str | None, strict: bool, fail_on_alert: bool,
                 max_samples: int, quiet: bool) -> None:
    """Run the rules over SOURCES (files, directories, globs, s3://bucket/prefix, or - for stdin).

    With --state, --output FILE gets each run's alerts appended (JSON lines), so alerts an
    interrupted run left for the next one are never overwritten; the file exists after every
    run, empty if no alert was ever written.
    """
    from flowwarden.cli.console import delivery_failure, first_rejection, run_scan
    from flowwarden.cli.doubts import format_doubts, input_doubts, pack_doubts, rule_doubts

    settings = {k: v for k, v in (("master", master),
                                  ("conf", key_values(spark_conf, "--spark-conf")),
                                  ("verbose", verbose and engine == "spark")) if v}
    chosen = engine_named(engine, **settings)
    if (stats_path or strict) and not chosen.file_stats:
        raise UsageError(f"--stats and --strict need per-file statistics, which --engine "
                         f"{chosen.name} does not keep")
    outputs = output_spec(output_format, output, output_dir, store)
    check_targets(outputs, state=state, stats=stats_path)
    pack = load_rules(packs, config_path)
    options = read_options(log_type, fmt, since, until, accounts, regions, max_line_bytes)
    doubts = warn([*format_doubts(fmt), *pack_doubts(pack)])
    if strict and doubts:
        raise UsageError("--strict: stopped on the warning(s) above before scanning")
    result = run_scan(pack, sources, options, state=state, engine=chosen, rule_ids=rule_ids,
                      max_samples=max_samples, quiet=quiet, outputs=outputs)
    if stats_path:
        write_stats(stats_path, result.stats.to_json())
    doubts += warn([*input_doubts(result, sources, stateful=bool(state)), *rule_doubts(result)])
    if not quiet:
        for hint in result.scan.hints:
            click.echo(f"note: lookup table {hint}", err=True)
    if result.delivery_error:
        raise UsageError(delivery_failure(result))
    rejected = result.stats.totals()["rejected"]
    if strict and (doubts or rejected):
        reasons = [f"{len(doubts)} warning(s) above"] if doubts else []
        if rejected:
            reasons.append(f"{rejected:,} record(s) rejected ({first_rejection(result.stats)})")
        raise UsageError(f"--strict: {' and '.join(reasons)}")
    if fail_on_alert and result.alerts:
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
@engine_option(batchwise_engines())
@click.option("--rule-id", "rule_ids", multiple=True, help="Run only these rules (enabled or not).")
@output_options
@click.option("--max-samples", default=3, show_default=True, help="Sample events kept per alert.")
@click.option("-q", "--quiet", is_flag=True, help="No line per run.")
@friendly_errors
def watch_command(sources: tuple[str, ...], packs: tuple[str, ...], config_path: str | None,
                  log_type: str | None, fmt: str | None, since: str | None, until: str | None,
                  accounts: tuple[str, ...], regions: tuple[str, ...], max_line_bytes: int, state: str, every: str,
                  max_runs: int | None, engine: str, rule_ids: tuple[str, ...],
                  output: str | None, output_format: str, output_dir: str | None,
                  store: str | None, max_samples: int, quiet: bool) -> None:
    """Scan SOURCES with --state every --every until stopped; Ctrl-C finishes the current run."""
    from flowwarden.cli.console import watch_command as run_watch
    from flowwarden.cli.doubts import format_doubts, pack_doubts
    from flowwarden.runs.watch import parse_every

    parse_every(every)  # a bad duration is a usage error before anything runs
    outputs = output_spec(output_format, output, output_dir, store)
    check_targets(outputs, state=state)
    pack = load_rules(packs, config_path)
    options = read_options(log_type, fmt, since, until, accounts, regions, max_line_bytes)
    warn([*format_doubts(fmt), *pack_doubts(pack)])
    run_watch(pack, sources, options, state=state, every=every, max_runs=max_runs, engine=engine,
              rule_ids=rule_ids, max_samples=max_samples, quiet=quiet, outputs=outputs)


@main.command("backtest")
@click.argument("sources", nargs=-1, required=True)
@pack_option
@click.option("--config", "config_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Configuration file; give it twice to compare two configurations side by side.")
@input_options
@engine_option(batchwise_engines())
@click.option("--rule-id", "rule_ids", multiple=True, help="Run only these rules (enabled or not).")
@click.option("--top", default=5, show_default=True, help="Dedup keys shown per rule.")
@click.option("--output-format", "out_format", type=click.Choice(["text", "json", "csv"]),
              default="text", show_default=True,
              help="text: for people (100 columns); json: everything; csv: one row per rule and "
                   "side.")
@friendly_errors
def backtest_command(sources: tuple[str, ...], packs: tuple[str, ...],
                     config_paths: tuple[str, ...], log_type: str | None, fmt: str | None,
                     since: str | None, until: str | None, accounts: tuple[str, ...],
                     regions: tuple[str, ...], max_line_bytes: int, engine: str, rule_ids: tuple[str, ...], top: int,
                     out_format: str) -> None:
    """Run rules over historical SOURCES without alerting anyone: per rule matched events,
    alerts, alerts per day, top dedup keys, first and last alert."""
    from flowwarden.cli.backtest_view import render_backtest
    from flowwarden.runs.backtest import load_sides, run_backtest

    if len(config_paths) > 2:
        raise UsageError("--config compares at most two configurations")
    sides = load_sides(packs, config_paths)
    for _, pack in sides:
        for problem in pack.problems:
            click.echo(f"invalid: {problem}", err=True)
    options = read_options(log_type, fmt, since, until, accounts, regions, max_line_bytes)
    report = run_backtest(sources, sides, options, engine=engine, rule_ids=rule_ids, top=top)
    click.echo(render_backtest(report, out_format), nl=False)


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
                  regions: tuple[str, ...], max_line_bytes: int, to: str, out: str | None, stats_path: str | None) -> None:
    """Normalize SOURCES to Panther-named records as Parquet or JSON lines."""
    from flowwarden.cli.console import records_line, rejection_location
    from flowwarden.cli.doubts import format_doubts
    from flowwarden.logs import read
    from flowwarden.logs.convert import write_normalized
    from flowwarden.util.writable import check_file_target

    if to == "parquet" and not out:
        raise UsageError("--to parquet needs --out FILE")
    for path, option in ((out, "--out"), (stats_path, "--stats")):
        if path:
            check_file_target(path, option)
    warn(format_doubts(fmt))
    options = read_options(log_type, fmt, since, until, accounts, regions, max_line_bytes)
    reader = read(list(sources), options)
    write_normalized(reader, to, out or sys.stdout)  # type: ignore[arg-type]
    click.echo(records_line(reader.stats), err=True)
    for stats in reader.stats.files.values():
        for rejection in stats.rejections:
            where = rejection_location(rejection.source, rejection.line)
            click.echo(f"rejected {where}: {rejection.reason}", err=True)
    if stats_path:
        write_stats(stats_path, reader.stats.to_json())


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
@click.option("--alerts-per-rule", "limit", type=click.IntRange(min=0), default=50,
              show_default=True,
              help="Alerts of each rule embedded in the page (the first by first event time, "
                   "then id); the page shows the DuckDB query that lists the rest.")
@friendly_errors
def report_command(store: str, out_path: str, limit: int) -> None:
    """Write a one-file HTML report of the alerts and input statistics in an alert store.

    Counts, charts and top addresses cover every alert; the page embeds the first alerts of
    each rule, so a store of millions of alerts still gives a page of a few megabytes.
    """
    from flowwarden.pages import build_report
    from flowwarden.util.writable import check_file_target

    check_file_target(out_path, "--out")
    click.echo(f"report: {build_report(store, out_path, limit=limit)}")


@main.group("logic")
def logic_group() -> None:
    """The condition IR extracted from rules' Python."""


@logic_group.command("stats")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@pack_option
@config_option
@click.option("--tests", "with_tests", is_flag=True,
              help="Also evaluate each compiled condition on its rule's test events and count "
                   "where it agrees with rule().")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@friendly_errors
def logic_stats_command(paths: tuple[str, ...], packs: tuple[str, ...],
                        config_path: str | None, with_tests: bool, fmt: str) -> None:
    """How many rules in PATHS extract to the IR fully, partially, or not at all, and why.

    A rule directory inside a Panther repository (``rules/`` or one of its subdirectories)
    brings the repository's ``global_helpers/`` and ``data_models/`` along, so its rules load.
    """
    from flowwarden.logic.stats import (
        agreement,
        logic_stats,
        render_stats,
        stats_json,
        support_dirs,
    )

    pack = load_rules([*paths, *support_dirs(paths), *packs], config_path)
    stats = logic_stats(pack)
    agreed = agreement(pack) if with_tests else None
    if fmt == "json":
        click.echo(json.dumps(stats_json(stats, agreed), indent=2))
        return
    click.echo(render_stats(stats).rstrip("\n"))
    if agreed is not None:
        click.echo(agreed.render())
