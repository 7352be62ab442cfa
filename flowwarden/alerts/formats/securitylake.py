"""OCSF findings in the Amazon Security Lake custom-source layout.

Security Lake reads a custom source's objects from
``ext/<source>/region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/<name>.parquet``: Parquet
only, one OCSF class per source (here Detection Finding, 2004). Each finding goes to the partition
of its cloud region and account (``unknown`` when the alert had none) and the UTC day of its
``time``. The destination is a local directory or ``s3://bucket/prefix``; a local file is written
under a temporary name and renamed, an S3 object appears whole when its upload completes.

Read it back with DuckDB as ``read_parquet('<root>/ext/<source>/**/*.parquet',
hive_partitioning=true, hive_types_autocast=false)``: without the last option DuckDB reads
``accountId`` as an integer and drops an account id's leading zeros.

Writing the same findings under the same ``name`` again overwrites the same objects, so a caller
that picks names deterministically (a checkpointed run uses its run number; a plain write uses a
digest of the findings) never leaves two copies of one write behind.

>>> lake_key("flowwarden", "eu-west-1", "123456789012", "20240501", "run-1")
'ext/flowwarden/region=eu-west-1/accountId=123456789012/eventDay=20240501/run-1.parquet'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from flowwarden.alerts.formats.ocsf import findings_table
from flowwarden.alerts.model import Alert
from flowwarden.alerts.tablequery import QueriedAlerts
from flowwarden.errors import UsageError
from flowwarden.util.s3 import S3

DEFAULT_SOURCE = "flowwarden"
UNKNOWN = "unknown"
SOURCE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PartitionKey = tuple[str, str, str]
UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_PART = 64  # characters of a region or account id in a key (real ones have 12 to 20)


def lake_key(source: str, region: str, account: str, day: str, name: str) -> str:
    """The object key of one partition's file, relative to the lake's root."""
    return f"ext/{source}/region={region}/accountId={account}/eventDay={day}/{name}.parquet"


def partition_of(finding: Mapping[str, Any]) -> PartitionKey:
    """(region, account, eventDay) of a finding."""
    cloud = finding.get("cloud") or {}
    region = _safe(cloud.get("region")) or UNKNOWN
    account = _safe((cloud.get("account") or {}).get("uid")) or UNKNOWN
    day = datetime.fromtimestamp(finding["time"] / 1000, tz=UTC).strftime("%Y%m%d")
    return region, account, day


def lake_table(findings: list[dict[str, Any]]) -> pa.Table:
    """Findings as ``ocsf.findings_table`` rows and their partitions (``lake_key``:
    region/account/day)."""
    keys = ["/".join(partition_of(finding)) for finding in findings]
    return findings_table(findings).append_column("lake_key", pa.array(keys, pa.string()))


def write_security_lake(alerts: Iterable[Alert], destination: str, *,
                        source: str = DEFAULT_SOURCE, name: str | None = None,
                        s3: S3 | None = None) -> list[str]:
    """Write the alerts' findings as Parquet under ``destination``, one object per partition
    in the order of their keys; returns the written URLs. Without a ``name``, the objects are
    named by a digest of the findings' ``uid``, ``count`` and ``time``."""
    if not SOURCE_NAME.match(source):
        raise UsageError(f"a Security Lake source name is 1-64 letters, digits, - or _: {source!r}")
    # it imports this module
    from flowwarden.alerts.formats.ocsftable import write_lake, write_walked_lake

    if isinstance(alerts, QueriedAlerts):  # partitions and findings from the query
        return write_lake(alerts, destination, source, name, s3) if len(alerts) else []
    return write_walked_lake(alerts, destination, source, name, s3)


def _safe(value: Any) -> str | None:
    """A partition value that is safe in a path and an S3 key, whatever the log said; None when
    empty. Real regions and account ids pass unchanged; anything else becomes letters, digits,
    ``.``, ``-`` and ``_``, and a long value is cut and suffixed with a digest of all of it (a
    log value is untrusted: a NUL byte or 300 bytes would fail the write, for every later run).

    >>> _safe("eu-west-1"), _safe("12/3=4 5\\x00"), len(_safe("9" * 300))
    ('eu-west-1', '12_3_4_5_', 57)
    """
    if value in (None, ""):
        return None
    text = UNSAFE.sub("_", str(value))
    if len(text) <= MAX_PART:
        return text
    digest = hashlib.sha256(str(value).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[:MAX_PART - 24]}-{digest}"
