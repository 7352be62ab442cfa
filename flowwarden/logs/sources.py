"""Where inputs come from: files, directories (recursive), globs, ``-`` for stdin, and
``s3://bucket/prefix`` through boto3's standard credential chain. Keys are pruned by their
layout (see ``keys``) before anything is opened; S3 prefixes are walked folder by folder so
pruned folders are never listed.
"""

from __future__ import annotations

import glob
import io
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from flowwarden.errors import Location, SourceError
from flowwarden.logs.keys import keep
from flowwarden.logs.model import DEFAULT_OPTIONS, InputObject, ReadOptions
from flowwarden.util.s3 import S3, S3_SCHEME, split_s3

STDIN = "-"
GLOB_CHARS = frozenset("*?[")
RANGE_BUFFER = 8 << 20


def list_inputs(
    sources: Sequence[str], options: ReadOptions = DEFAULT_OPTIONS, s3: S3 | None = None
) -> list[InputObject]:
    """Every input object the sources name, pruned by key layout, in a stable order."""
    s3 = s3 or S3()
    out: list[InputObject] = []
    for source in sources:
        if source == STDIN:
            out.append(InputObject(STDIN, None, None))
        elif source.startswith(S3_SCHEME):
            out.extend(_list_s3(source, options, s3))
        elif GLOB_CHARS & set(source):
            for match in sorted(glob.glob(source, recursive=True)):
                out.extend(_list_local(match, options))
        else:
            if not os.path.exists(source):
                raise SourceError("no such file or directory", Location(source))
            out.extend(_list_local(source, options))
    return out


def _list_local(path: str, options: ReadOptions) -> Iterator[InputObject]:
    if os.path.isfile(path):
        if keep(path, options):
            yield _local_object(path)
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and keep(f"{root}/{d}/", options))
        for name in sorted(files):
            full = os.path.join(root, name)
            if not name.startswith(".") and keep(full, options):
                yield _local_object(full)


def _local_object(path: str) -> InputObject:
    stat = os.stat(path)
    return InputObject(str(Path(path)), stat.st_size, str(stat.st_mtime_ns))


def _list_s3(url: str, options: ReadOptions, s3: S3) -> Iterator[InputObject]:
    bucket, prefix = split_s3(url)
    pending = [prefix]
    paginator = s3.client.get_paginator("list_objects_v2")
    while pending:
        current = pending.pop(0)
        try:
            pages = list(paginator.paginate(Bucket=bucket, Prefix=current, Delimiter="/"))
        except Exception as exc:  # botocore raises many types; all mean "cannot list"
            raise SourceError(f"cannot list: {exc}", Location(f"s3://{bucket}/{current}")) from exc
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith("/") and item.get("Size", 0) > 0 and keep(key, options):
                    etag = str(item.get("ETag", "")).strip('"') or None
                    yield InputObject(f"s3://{bucket}/{key}", item.get("Size"), etag)
            folders = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            pending.extend(sorted(f for f in folders if keep(f, options)))


@contextmanager
def open_stream(obj: InputObject, s3: S3) -> Iterator[BinaryIO]:
    """A sequential binary stream over the object's bytes."""
    if obj.url == STDIN:
        yield sys.stdin.buffer
        return
    if obj.url.startswith(S3_SCHEME):
        bucket, key = split_s3(obj.url)
        try:
            body = s3.client.get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as exc:  # botocore errors
            raise SourceError(f"cannot open: {exc}", Location(obj.url)) from exc
        try:
            yield body
        finally:
            body.close()
        return
    try:
        handle = open(obj.url, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise SourceError(f"cannot open: {exc.strerror}", Location(obj.url)) from exc
    with handle:
        yield handle


@contextmanager
def open_seekable(obj: InputObject, s3: S3) -> Iterator[BinaryIO]:
    """A seekable binary file over the object (S3 through ranged GETs), for Parquet."""
    if obj.url.startswith(S3_SCHEME):
        bucket, key = split_s3(obj.url)
        raw = _S3Range(s3.client, bucket, key, obj.size)
        with io.BufferedReader(raw, RANGE_BUFFER) as handle:
            yield handle
        return
    with open(obj.url, "rb") as handle:
        yield handle


class _S3Range(io.RawIOBase):
    """A read-only seekable view of one S3 object, fetched by byte ranges on demand."""

    def __init__(self, client: Any, bucket: str, key: str, size: int | None) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        if size is None:
            size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        self._size = int(size)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        end = self._pos + want - 1
        response = self._client.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-{end}"
        )
        data = response["Body"].read()
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)
