"""The one delivery path: a scan's (or a checkpointed run's) alerts to every sink the user named.

Sinks: ``--output FILE``, ``--output-dir DIR|s3://bucket/prefix`` (with ``ocsf-parquet``, the
Security Lake custom-source layout), a DuckDB ``--store``, or standard output when no file or
directory is given; the format is one of ``formats.ALERT_FORMATS``.

Every file and object is written whole under a name chosen by the caller (a run number, or a digest
of the alerts): atomically locally (``util.files``), and on S3 from a temporary file by one upload
that completes or leaves nothing (``util.destinations``). Writing the same alerts
under the same name again therefore replaces what an interrupted write left, and the store keeps
one row per alert id: delivering a batch twice gives the same result as delivering it once.
Standard output is the exception: what was printed stays printed.

A scan's alerts that stay in DuckDB (``tablequery.QueriedAlerts``) reach the store, OCSF and
Security Lake from queries of its tables, in Arrow batches (``tablestore``, ``formats.ocsftable``);
a list of alerts is written alert by alert.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

from flowwarden.alerts.formats import ALERT_FORMATS
from flowwarden.alerts.formats.securitylake import DEFAULT_SOURCE, write_security_lake
from flowwarden.alerts.model import Alert
from flowwarden.alerts.store import (
    AlertStore,
    check_store,
    record_scan_files,
    upsert_alert_rows,
    upsert_alerts,
)
from flowwarden.alerts.tablequery import QueriedAlerts
from flowwarden.alerts.tablestore import store_rows
from flowwarden.errors import UsageError
from flowwarden.util.destinations import object_url, object_writer
from flowwarden.util.files import appender, atomic_writer
from flowwarden.util.iterables import chunks
from flowwarden.util.s3 import S3, S3_SCHEME
from flowwarden.util.writable import check_dir_target, check_file_target

FORMATS = tuple(ALERT_FORMATS)
STORE_CHUNK = 8192
ScanFiles = tuple[str, Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class OutputSpec:
    """The sinks of a scan; with none of output/output_dir, alerts go to standard output."""

    format: str = "jsonl"
    output: str | None = None
    output_dir: str | None = None
    store: str | None = None
    lake_source: str = DEFAULT_SOURCE

    def check(self) -> OutputSpec:
        """Raise UsageError for combinations that cannot work; return self."""
        if self.format not in ALERT_FORMATS:
            raise UsageError(f"unknown output format {self.format!r}; choose from {', '.join(FORMATS)}")
        if not ALERT_FORMATS[self.format].text and self.to_stdout:
            raise UsageError(f"--output-format {self.format} needs --output FILE or --output-dir DIR")
        if self.output and self.output.startswith(S3_SCHEME):
            raise UsageError("--output is a local file; use --output-dir for s3://bucket/prefix")
        return self

    def preflight(self, skip_store: bool = False) -> OutputSpec:
        """Raise UsageError unless every local sink can be written now (before a scan starts,
        not after it); ``skip_store`` when the store is a file the caller holds open."""
        if self.output:
            check_file_target(self.output, "--output")
        if self.output_dir and not self.output_dir.startswith(S3_SCHEME):
            check_dir_target(self.output_dir, "--output-dir")
        if self.store and not skip_store:
            check_store(self.store)
        return self

    @property
    def to_stdout(self) -> bool:
        return not (self.output or self.output_dir)


def deliver(alerts: Sequence[Alert], spec: OutputSpec, name: str | Callable[[], str], *,
            stdout: IO[str] | None = None, s3: S3 | None = None,
            skip_store: bool = False, between: Callable[[], None] | None = None,
            scan_files: ScanFiles | None = None,
            keep_output_when_empty: bool = False,
            append_at: int | None | Literal[False] = False,
            midway: Callable[[], None] | None = None) -> list[str]:
    """Deliver ``alerts`` to every sink of ``spec``; ``name`` names the files of this delivery
    (``--output-dir``'s, the only sink with files named by it), or makes that name when it is
    needed (a digest of the alerts reads every one of them).

    ``scan_files`` (a scan id and the per-input statistics) go to the store with the alerts, in
    one transaction. ``between`` is called after each sink (the crash tests stop a delivery
    there). Returns the files and objects written. An empty delivery writes no directory file or
    object (a run with nothing new leaves nothing behind), but ``--output FILE`` is still
    replaced unless ``keep_output_when_empty``, so it holds the latest delivery.

    ``append_at`` (anything but False) appends to ``--output FILE`` instead, from that offset
    (``files.appender``; None: at its end), so that each delivery adds to the file; ``midway``
    is called when half of the alerts are appended (the kill tests stop a delivery there).
    """
    written: list[str] = []
    step = between or (lambda: None)
    fmt = ALERT_FORMATS[spec.format]
    if spec.output_dir and alerts:
        named = name() if callable(name) else name
        if spec.format == "ocsf-parquet":
            written += write_security_lake(alerts, spec.output_dir, source=spec.lake_source,
                                           name=named, s3=s3)
        else:  # written through a file, local or spooled for S3, never whole in memory
            key = f"{named}{fmt.suffix}"
            with object_writer(spec.output_dir, key, s3) as out:
                fmt.write(alerts, out)
            written.append(object_url(spec.output_dir, key))
        step()
    if spec.output and append_at is not False:
        half = len(alerts) // 2
        with appender(spec.output, append_at) as out:
            fmt.write(alerts[:half], out)
            if midway is not None:
                out.flush()
                midway()
            fmt.write(alerts[half:], out)
        if alerts:
            written.append(spec.output)
        step()
    elif spec.output and (alerts or not keep_output_when_empty):
        with atomic_writer(spec.output) as out:
            fmt.write(alerts, out)
        written.append(spec.output)
        step()
    if spec.to_stdout and alerts:
        out_text = stdout or sys.stdout
        fmt.write(alerts, _TextBytes(out_text))
        out_text.flush()
        step()
    if spec.store and not skip_store:
        store = AlertStore(spec.store)
        try:
            store.con.execute("BEGIN TRANSACTION")
            if isinstance(alerts, QueriedAlerts):  # from the scan's tables, in batches
                upsert_alert_rows(store.con, store_rows(alerts))
            else:
                for chunk in chunks(alerts, STORE_CHUNK):
                    upsert_alerts(store.con, chunk)
            if scan_files is not None:
                record_scan_files(store.con, *scan_files)
            store.con.execute("COMMIT")
        finally:
            store.close()
        step()
    return written


class _TextBytes:
    """Bytes written to a text stream (standard output), decoded as UTF-8."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, data: bytes, /) -> int:
        self._out.write(data.decode("utf-8"))
        return len(data)
