"""Key layouts: what a key says about account, region and time, and pruning by it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowwarden.logs import ReadOptions
from flowwarden.logs.keys import keep, parse_key


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type,misc]


@pytest.mark.parametrize(
    ("key", "account", "region", "start", "end"),
    [
        (
            "b/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/05/",
            "123456789012",
            "us-east-1",
            at(2024, 3, 5),
            at(2024, 3, 6),
        ),
        (
            "AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/12/31/23/",
            "123456789012",
            "us-east-1",
            at(2024, 12, 31, 23),
            at(2025, 1, 1),
        ),
        (
            "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2024/",
            "123456789012",
            "eu-west-1",
            at(2024, 1, 1),
            at(2025, 1, 1),
        ),
        (
            "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2024/02/",
            "123456789012",
            "eu-west-1",
            at(2024, 2, 1),
            at(2024, 3, 1),
        ),
        (
            "p/AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/aws-region=ap-south-1/"
            "year=2023/month=07/day=09/hour=04/",
            "111122223333",
            "ap-south-1",
            at(2023, 7, 9, 4),
            at(2023, 7, 9, 5),
        ),
        (
            "aws/VPC_FLOW/2.0/region=us-east-1/accountId=123456789010/eventDay=20141214/a.parquet",
            "123456789010",
            "us-east-1",
            at(2014, 12, 14),
            at(2014, 12, 15),
        ),
        (
            "x/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz",
            "123456789010",
            "us-east-1",
            at(2018, 6, 20, 16, 20),
            at(2018, 6, 20, 16, 25),
        ),
        ("some/other/file.log", None, None, None, None),
    ],
)
def test_parse_key(
    key: str, account: str | None, region: str | None, start: datetime | None, end: datetime | None
) -> None:
    info = parse_key(key)
    assert (info.account, info.region, info.start, info.end) == (account, region, start, end)


DAY = "AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/05/"


def test_keep_by_time_window() -> None:
    assert keep(DAY, ReadOptions(since=at(2024, 3, 5, 12), until=at(2024, 3, 5, 13)))
    assert keep(DAY, ReadOptions(since=at(2024, 3, 4, 23)))  # overlaps the start of the day
    assert not keep(DAY, ReadOptions(since=at(2024, 3, 6, 2)))
    assert not keep(DAY, ReadOptions(until=at(2024, 3, 4, 12)))
    assert keep(DAY, ReadOptions(since=datetime(2024, 3, 5, 23, 59)))  # naive means UTC
    stamp = "123456789012_vpcflowlogs_us-east-1_fl-1_20240305T1620Z_ab.log.gz"
    assert keep(DAY + stamp, ReadOptions(since=at(2024, 3, 5, 16, 30)))
    assert not keep(DAY + stamp, ReadOptions(since=at(2024, 3, 5, 18)))


def test_keep_by_account_and_region() -> None:
    assert keep(DAY, ReadOptions(accounts=("123456789012",), regions=("us-east-1",)))
    assert not keep(DAY, ReadOptions(accounts=("999999999999",)))
    assert not keep(DAY, ReadOptions(regions=("eu-west-1",)))
    assert keep("unrelated/path.log", ReadOptions(accounts=("999999999999",)))
