"""Options shared by the commands, and the one way they turn into the layers' arguments."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from flowwarden.alerts.delivery import OutputSpec
from flowwarden.alerts.formats import ALERT_FORMATS
from flowwarden.config import Config, load_config
from flowwarden.engine.engines import ENGINE_HELP
from flowwarden.errors import FlowwardenError, Location, UsageError
from flowwarden.logs import ReadOptions
from flowwarden.logs.limits import DEFAULT_MAX_LINE
from flowwarden.rules.loader import Pack, Selector, load_pack, resolve_pack_paths
from flowwarden.util.files import same_file, write_atomic
from flowwarden.util.writable import check_file_target

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


def load_rules(packs: Sequence[str], config_path: str | None, report: bool = True,
               select: Selector | None = None) -> Pack:
    """Load the packs with the configuration; print problems (with paths) on stderr.
    ``select`` keeps only the detections it accepts (``load_pack``)."""
    config: Config = load_config(config_path)
    pack = load_pack(resolve_pack_paths(packs), config, select)
    if report:
        for problem in pack.problems:
            click.echo(f"invalid: {problem}", err=True)
    return pack


RELATIVE = re.compile(r"(?:T-)?(\d+)([smhdw])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TIME_HELP = ("ISO 8601 (2024-05-01, 2024-05-01T12:00Z), a time ago (24h, 7d, 90m, T-7d), or "
             "now, today, yesterday (UTC)")


def parse_time(value: str | None, now: datetime | None = None) -> datetime | None:
    """A --since/--until value as an aware datetime: ISO 8601 (naive means UTC), a duration
    before now (``24h``, ``7d``, ``90m``, ``30s``, ``2w``, or Tailpipe's ``T-7d``), ``now``,
    ``today`` (the start of the current UTC day) or ``yesterday`` (the start of the previous
    one). ``now`` is the current time unless given.

    >>> clock = datetime(2024, 5, 8, 15, 30, tzinfo=UTC)
    >>> [parse_time(v, clock).isoformat() for v in ("24h", "7d", "90m", "T-7d", "2w")]
    ['2024-05-07T15:30:00+00:00', '2024-05-01T15:30:00+00:00', '2024-05-08T14:00:00+00:00', '2024-05-01T15:30:00+00:00', '2024-04-24T15:30:00+00:00']
    >>> [parse_time(v, clock).isoformat() for v in ("now", "today", "yesterday")]
    ['2024-05-08T15:30:00+00:00', '2024-05-08T00:00:00+00:00', '2024-05-07T00:00:00+00:00']
    >>> parse_time("2024-05-01", clock).isoformat(), parse_time("2024-05-01T12:00Z").isoformat()
    ('2024-05-01T00:00:00+00:00', '2024-05-01T12:00:00+00:00')
    """
    if value is None:
        return None
    text = value.strip()
    current = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = current.replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"now": current, "today": midnight, "yesterday": midnight - timedelta(days=1)}
    if text.lower() in named:
        return named[text.lower()]
    relative = RELATIVE.fullmatch(text)
    if relative:
        return current - timedelta(**{UNITS[relative[2]]: int(relative[1])})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a time: {value!r} (give {TIME_HELP})") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def input_options(fn: F) -> F:
    options = [
        click.option("--log-type", help="Override log-type detection (AWS.VPCFlow, OCSF.NetworkActivity, ...)."),
        click.option("--format", "fmt", metavar="'${version} ${account-id} ...'",
                     help="AWS format string for headerless flow logs (CloudWatch, Firehose)."),
        click.option("--since", help=f"Only inputs and events at or after this time: {TIME_HELP}."),
        click.option("--until", help=f"Only inputs and events at or before this time: {TIME_HELP}."),
        click.option("--account", "accounts", multiple=True, help="Only these AWS accounts (by S3 key)."),
        click.option("--region", "regions", multiple=True, help="Only these regions (by S3 key)."),
        click.option("--max-line-bytes", type=click.IntRange(min=1024), default=DEFAULT_MAX_LINE,
                     show_default=True, metavar="BYTES",
                     help="A longer line (or CloudWatch payload) is one rejected record."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def read_options(log_type: str | None, fmt: str | None, since: str | None, until: str | None,
                 accounts: Sequence[str], regions: Sequence[str],
                 max_line_bytes: int = DEFAULT_MAX_LINE) -> ReadOptions:
    return ReadOptions(log_type=log_type, format=fmt, since=parse_time(since),
                       until=parse_time(until), accounts=tuple(accounts), regions=tuple(regions),
                       max_line_bytes=max_line_bytes)


OUTPUT_FORMATS = tuple(ALERT_FORMATS)


def output_options(fn: F) -> F:
    """Where alerts go: shared by scan and watch."""
    options = [
        click.option("-o", "--output", type=click.Path(dir_okay=False),
                     help="Write alerts here (default: stdout). With --state each run appends "
                          "its alerts (JSON lines; the file is left, empty if need be)."),
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
                store: str | None) -> OutputSpec:
    return OutputSpec(output_format, output=output, output_dir=output_dir, store=store).check()


def check_targets(outputs: OutputSpec, *, state: str | None = None,
                  stats: str | None = None) -> None:
    """Every file and directory the command will write, checked before it reads anything."""
    if stats:
        check_file_target(stats, "--stats")
    if state:
        check_file_target(state, "--state")
    # a store that is the state file: its lock is checked when the state is opened
    outputs.preflight(skip_store=same_file(state, outputs.store))


def write_stats(path: str, stats: dict[str, Any]) -> None:
    """``--stats``: checked before the scan, yet a disk can fill up during it."""
    try:
        write_atomic(path, json.dumps(stats, indent=2))
    except OSError as exc:
        raise UsageError(f"--stats: cannot write: {exc.strerror or exc}", Location(path)) from None


def warn(reasons: Sequence[str]) -> list[str]:
    """Print each reason as a ``warning:`` line on stderr (quiet or not); returns them."""
    for reason in reasons:
        click.echo(f"warning: {reason}", err=True)
    return list(reasons)


def engine_option(names: Sequence[str]) -> Callable[[F], F]:
    """``--engine`` choosing among ``names`` (registry order), each explained in the help."""
    explained = " ".join(f"{name}: {ENGINE_HELP[name]}." for name in names)
    return click.option("--engine", type=click.Choice(list(names)), default=names[0],
                        show_default=True, help=explained)
