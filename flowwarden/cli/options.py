"""Options shared by the commands, and the one way they turn into the layers' arguments."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from flowwarden.alerts.delivery import OutputSpec
from flowwarden.alerts.formats import ALERT_FORMATS
from flowwarden.config import Config, load_config
from flowwarden.engine.engines import ENGINE_HELP
from flowwarden.errors import FlowwardenError, UsageError
from flowwarden.logs import ReadOptions
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
        click.option("--until", help="Only inputs and events at or before this time (ISO 8601)."),
        click.option("--account", "accounts", multiple=True, help="Only these AWS accounts (by S3 key)."),
        click.option("--region", "regions", multiple=True, help="Only these regions (by S3 key)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def read_options(log_type: str | None, fmt: str | None, since: str | None, until: str | None,
                 accounts: Sequence[str], regions: Sequence[str]) -> ReadOptions:
    return ReadOptions(log_type=log_type, format=fmt, since=parse_time(since),
                       until=parse_time(until), accounts=tuple(accounts), regions=tuple(regions))


OUTPUT_FORMATS = tuple(ALERT_FORMATS)


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
                store: str | None) -> OutputSpec:
    return OutputSpec(output_format, output=output, output_dir=output_dir, store=store).check()


def engine_option(names: Sequence[str]) -> Callable[[F], F]:
    """``--engine`` choosing among ``names`` (registry order), each explained in the help."""
    explained = " ".join(f"{name}: {ENGINE_HELP[name]}." for name in names)
    return click.option("--engine", type=click.Choice(list(names)), default=names[0],
                        show_default=True, help=explained)
