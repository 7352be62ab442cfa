"""S3 through boto3's standard credential chain, shared by the readers and the writers of alerts.

``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``) points it at another endpoint, such as a test
server on localhost, with path-style addressing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from flowwarden.errors import Location, SourceError

S3_SCHEME = "s3://"


def split_s3(url: str) -> tuple[str, str]:
    """(bucket, key or prefix) of an ``s3://`` URL.

    >>> split_s3("s3://logs/AWSLogs/")
    ('logs', 'AWSLogs/')
    """
    bucket, _, key = url[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise SourceError("an S3 URL needs a bucket name", Location(url))
    return bucket, key


@dataclass
class S3:
    """A lazily created boto3 S3 client (standard credential chain; endpoint from env)."""

    _client: Any = field(default=None, repr=False)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            config = Config(s3={"addressing_style": "path"}) if endpoint else None
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            self._client = boto3.client(
                "s3", endpoint_url=endpoint, config=config, region_name=region or "us-east-1"
            )
        return self._client


