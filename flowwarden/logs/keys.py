"""What an S3 key or file path says about its contents: account, region and time range.

Understands AWS's flow log layouts (default, hourly, Hive-compatible), Security Lake's
``region=/accountId=/eventDay=`` partitions and the ``_YYYYMMDDTHHmmZ_`` file-name stamp, so
inputs can be pruned by since/until, account and region before they are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flowwarden.logs.common import utc
from flowwarden.logs.model import ReadOptions

# Records in a file or folder can start a little before (aggregation interval, delivery lag)
# or after its nominal time; pruning keeps anything within this margin.
SLACK = timedelta(minutes=30)
FILE_WINDOW = timedelta(minutes=5)
STAMP = re.compile(r"_(\d{8}T\d{4})Z_")
FILE_NAME = re.compile(r"^(\d{12}|unknown)_vpcflowlogs_([a-z0-9-]+)_")
HIVE = {
    "aws-account-id": "account",
    "accountid": "account",
    "aws-region": "region",
    "region": "region",
}
DATE_KEYS = ("year", "month", "day", "hour")


@dataclass(frozen=True)
class KeyInfo:
    """Facts a key's layout states; None where it says nothing."""

    account: str | None = None
    region: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def parse_key(key: str) -> KeyInfo:
    """Account, region and time range stated by ``key`` (a full or partial S3 key or path).

    >>> info = parse_key("AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/05/")
    >>> info.account, info.region, info.start.isoformat(), info.end.day
    ('123456789012', 'us-east-1', '2024-03-05T00:00:00+00:00', 6)
    """
    parts = [p for p in key.replace("\\", "/").split("/") if p]
    found: dict[str, str] = {}
    dates: list[int] = []
    for index, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq:
            _hive(name.lower(), value, found, dates)
        elif part == "vpcflowlogs" and index + 1 < len(parts):
            if index >= 1 and parts[index - 1] != "AWSLogs":
                found.setdefault("account", parts[index - 1])
            found.setdefault("region", parts[index + 1])
            dates[:] = _numeric_run(parts[index + 2 :])
    start, end = _range(dates)
    if parts:
        start, end = _file_name(parts[-1], found, start, end)
    return KeyInfo(found.get("account"), found.get("region"), start, end)


def keep(key: str, options: ReadOptions) -> bool:
    """False when ``key``'s layout rules it out for the options' window, accounts or regions."""
    info = parse_key(key)
    if options.accounts and info.account is not None and info.account not in options.accounts:
        return False
    if options.regions and info.region is not None and info.region not in options.regions:
        return False
    if info.start is None or info.end is None:
        return True
    if options.since is not None and info.end + SLACK <= utc(options.since):
        return False
    return not (options.until is not None and info.start - SLACK > utc(options.until))


def _hive(name: str, value: str, found: dict[str, str], dates: list[int]) -> None:
    if name in HIVE:
        found[HIVE[name]] = value
    elif name in DATE_KEYS and value.isdigit():
        position = DATE_KEYS.index(name)
        if len(dates) == position:
            dates.append(int(value))
    elif name in ("eventday", "eventhour") and value.isdigit() and len(value) in (8, 10):
        dates[:] = [int(value[:4]), int(value[4:6]), int(value[6:8])]
        if len(value) == 10:
            dates.append(int(value[8:10]))


def _numeric_run(parts: list[str]) -> list[int]:
    out: list[int] = []
    for width, part in zip((4, 2, 2, 2), parts, strict=False):
        if len(part) != width or not part.isdigit():
            break
        out.append(int(part))
    return out


def _range(dates: list[int]) -> tuple[datetime | None, datetime | None]:
    if not dates:
        return None, None
    year, month, day, hour = [*dates, *(1, 1, 0)[len(dates) - 1 :]][:4]
    try:
        start = datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None, None
    if len(dates) == 1:
        return start, start.replace(year=year + 1)
    if len(dates) == 2:
        return start, (start + timedelta(days=32)).replace(day=1)
    return start, start + (timedelta(days=1) if len(dates) == 3 else timedelta(hours=1))


def _file_name(
    name: str, found: dict[str, str], start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    match = FILE_NAME.match(name)
    if match:
        found.setdefault("account", match.group(1))
        found.setdefault("region", match.group(2))
    stamp = STAMP.search(name)
    if stamp is None:
        return start, end
    moment = datetime.strptime(stamp.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)
    return moment, moment + FILE_WINDOW
