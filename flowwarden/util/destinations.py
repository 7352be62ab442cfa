"""Whole objects written under a destination that is a local directory or ``s3://bucket/prefix``.

A local object is written atomically (``files.atomic_writer``); an S3 object appears whole on
its one PUT. Writing the same key again replaces it.
"""

from __future__ import annotations

from pathlib import Path

from flowwarden.errors import Location, UsageError
from flowwarden.util.files import write_atomic
from flowwarden.util.s3 import S3, S3_SCHEME, split_s3


def write_object(destination: str, key: str, data: bytes, s3: S3 | None = None) -> str:
    """Write ``data`` whole at ``destination``/``key``; returns where it went."""
    if destination.startswith(S3_SCHEME):
        bucket, prefix = split_s3(destination)
        full = f"{prefix.rstrip('/')}/{key}" if prefix.strip("/") else key
        try:
            (s3 or S3()).client.put_object(Bucket=bucket, Key=full, Body=data)
        except Exception as exc:  # botocore raises many types; all mean "cannot write"
            raise UsageError(f"cannot write: {exc}", Location(f"s3://{bucket}/{full}")) from exc
        return f"s3://{bucket}/{full}"
    target = Path(destination) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, data)
    return str(target)
