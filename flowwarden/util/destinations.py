"""Whole objects written under a destination that is a local directory or ``s3://bucket/prefix``.

A local object is written atomically (``files.atomic_writer``); an S3 object appears whole when
its upload completes. Writing the same key again replaces it. An object is written through a
file, never held in memory whole: a scan's alerts can make gigabytes (8.7 GB of JSON lines for
10M records under the default pack). For S3 that file is a temporary one, uploaded when it is
complete (in parts, above boto3's 8 MB threshold).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from flowwarden.errors import Location, UsageError
from flowwarden.util.files import atomic_writer
from flowwarden.util.s3 import S3, S3_SCHEME, split_s3


def object_url(destination: str, key: str) -> str:
    """Where ``key`` under ``destination`` is: an ``s3://`` URL or a local path.

    >>> object_url("s3://lake/custom/", "a/b.parquet"), object_url("s3://lake", "a.json")
    ('s3://lake/custom/a/b.parquet', 's3://lake/a.json')
    >>> object_url("out", "a/b.parquet")
    'out/a/b.parquet'
    """
    if destination.startswith(S3_SCHEME):
        bucket, prefix = split_s3(destination)
        full = f"{prefix.rstrip('/')}/{key}" if prefix.strip("/") else key
        return f"s3://{bucket}/{full}"
    return str(Path(destination) / key)


@contextmanager
def object_writer(destination: str, key: str, s3: S3 | None = None) -> Iterator[IO[bytes]]:
    """A binary file whose content becomes the object ``destination``/``key`` when the block
    completes (``object_url`` says where); a block that raises writes nothing."""
    url = object_url(destination, key)
    if not url.startswith(S3_SCHEME):
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(url) as out:
            yield out
        return
    bucket, full = split_s3(url)
    with tempfile.TemporaryFile(prefix="flowwarden-upload-") as spool:
        yield spool
        spool.flush()
        spool.seek(0)
        try:
            (s3 or S3()).client.upload_fileobj(spool, bucket, full)
        except Exception as exc:  # botocore raises many types; all mean "cannot write"
            raise UsageError(f"cannot write: {exc}", Location(url)) from exc

