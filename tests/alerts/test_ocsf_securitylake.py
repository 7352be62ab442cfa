from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from flowwarden.alerts.formats import ocsftable
from flowwarden.alerts.formats.ocsf import findings_table, to_finding
from flowwarden.alerts.formats.securitylake import (
    DEFAULT_SOURCE,
    lake_key,
    partition_of,
    write_security_lake,
)
from flowwarden.errors import UsageError
from tests.alerts.ocsf_jsonschema import validate
from tests.alerts.test_ocsf import alerts_of, flow
from tests.runs import test_crash

moto_server, s3_env = test_crash.moto_server, test_crash.s3_env  # the S3 server fixtures


@pytest.fixture(scope="module")
def alerts(default_pack):
    """Admin-port alerts in two regions, two accounts and two days (one without a region)."""
    rows = [
        flow(1), flow(2, srcAddr="45.33.32.157"),
        flow(60 * 24, region="us-east-1"),
        flow(5, account="210987654321", srcAddr="45.33.32.158"),
        flow(6, region=None, srcAddr="45.33.32.159"),
    ]
    return alerts_of(default_pack, rows, ["AWS.VPC.InboundAdminPort"])


def read_lake(root) -> list[tuple]:
    con = duckdb.connect()
    return con.execute(
        f"SELECT region, accountId, eventDay, finding_info.uid, count, class_uid "
        f"FROM read_parquet('{root}/ext/flowwarden/**/*.parquet', hive_partitioning=true, "
        f"hive_types_autocast=false) "
        f"ORDER BY finding_info.uid").fetchall()


def test_findings_land_in_security_lake_partitions(alerts, tmp_path):
    written = write_security_lake(alerts, str(tmp_path), name="run-1")
    keys = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))
    assert keys == sorted([
        "ext/flowwarden/region=eu-west-1/accountId=123456789012/eventDay=20240501/run-1.parquet",
        "ext/flowwarden/region=eu-west-1/accountId=210987654321/eventDay=20240501/run-1.parquet",
        "ext/flowwarden/region=us-east-1/accountId=123456789012/eventDay=20240502/run-1.parquet",
        "ext/flowwarden/region=unknown/accountId=123456789012/eventDay=20240501/run-1.parquet",
    ])
    assert sorted(written) == sorted(str(tmp_path / k) for k in keys)
    rows = read_lake(tmp_path)
    assert len(rows) == len(alerts) == 5
    by_id = {row[3]: row for row in rows}
    for alert in alerts:
        region, account, day, _, count, class_uid = by_id[alert.id]
        assert (region, account, day) == partition_of(to_finding(alert))
        assert count == alert.event_count and class_uid == 2004
    assert not list(tmp_path.rglob(".*.tmp"))


def reference_lake(alerts) -> dict[str, object]:
    """The lake's objects made the plain way, every finding in memory: each partition's
    findings in the alerts' order, partitions in the order of their keys, named by a digest of
    the findings' ``uid:count:time`` lines in the order of their uids."""
    findings = [to_finding(alert) for alert in alerts]
    parts = defaultdict(list)
    for finding in findings:
        parts["/".join(partition_of(finding))].append(finding)
    digest = hashlib.sha256()
    for finding in sorted(findings, key=lambda f: f["finding_info"]["uid"]):
        digest.update(f"{finding['finding_info']['uid']}:{finding.get('count')}:"
                      f"{finding['time']}\n".encode())
    name = f"flowwarden-{digest.hexdigest()[:24]}"
    return {lake_key(DEFAULT_SOURCE, *key.split("/"), name): findings_table(rows)
            for key, rows in sorted(parts.items())}


@pytest.mark.parametrize("walked", [1, 2, 4096])
def test_alerts_walked_a_chunk_at_a_time_give_the_plain_lake(alerts, tmp_path, monkeypatch,
                                                             walked):
    monkeypatch.setattr(ocsftable, "WALKED", walked)  # findings made this many at a time
    want = reference_lake(alerts)
    written = write_security_lake(iter(alerts), str(tmp_path))
    assert [Path(url).relative_to(tmp_path).as_posix() for url in written] == list(want)
    for key, table in want.items():
        assert pq.read_table(tmp_path / key).equals(table), key


def test_the_same_write_again_overwrites_the_same_files(alerts, tmp_path):
    first = write_security_lake(alerts, str(tmp_path))
    second = write_security_lake(alerts, str(tmp_path))
    assert first == second
    assert len(read_lake(tmp_path)) == len(alerts)
    assert write_security_lake([], str(tmp_path)) == []


def test_parquet_rows_read_back_as_valid_findings(alerts, tmp_path):
    write_security_lake(alerts, str(tmp_path), name="x")
    for path in tmp_path.rglob("*.parquet"):
        for row in pq.read_table(path).to_pylist():
            finding = _strip_nulls(row)
            finding["unmapped"] = dict(finding.get("unmapped") or [])
            assert validate(finding) == []


def test_bad_source_names_are_refused(alerts, tmp_path):
    with pytest.raises(UsageError, match="source name"):
        write_security_lake(alerts, str(tmp_path), source="../escape")


def test_lake_on_s3(alerts, s3_env):
    client = s3_env.client()
    client.create_bucket(Bucket="lake-bucket")
    written = write_security_lake(alerts, "s3://lake-bucket/custom/", name="run-7")
    listed = client.list_objects_v2(Bucket="lake-bucket", Prefix="custom/")["Contents"]
    keys = sorted(item["Key"] for item in listed)
    assert keys == sorted(w.removeprefix("s3://lake-bucket/") for w in written)
    assert f"custom/{lake_key('flowwarden', 'us-east-1', '123456789012', '20240502', 'run-7')}" in keys
    ids = set()
    for key in keys:
        body = client.get_object(Bucket="lake-bucket", Key=key)["Body"].read()
        ids.update(pq.read_table(io.BytesIO(body)).column("finding_info").combine_chunks()
                   .field("uid").to_pylist())
    assert ids == {a.id for a in alerts}


def test_event_day_is_the_utc_day_of_the_finding_time(alerts):
    finding = to_finding(alerts[0])
    when = datetime.fromtimestamp(finding["time"] / 1000, tz=UTC)
    assert partition_of(finding)[2] == when.strftime("%Y%m%d")
    late = {**finding, "time": finding["time"] + int(timedelta(days=1).total_seconds() * 1000)}
    assert partition_of(late)[2] == (when + timedelta(days=1)).strftime("%Y%m%d")


def _strip_nulls(value):
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("value", ["eu\x00west", "1" * 300, "é" * 200, "a/../../b", "x=y z"])
def test_any_region_or_account_value_gives_a_short_safe_partition(value):
    finding = {"time": 1714521600000, "cloud": {"region": value, "account": {"uid": value}}}
    region, account, day = partition_of(finding)
    assert region == account and day == "20240501"
    assert 0 < len(region.encode()) <= 64
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in region), region


def test_long_values_that_share_a_prefix_stay_apart():
    first = {"time": 0, "cloud": {"region": "r" * 100 + "1"}}
    second = {"time": 0, "cloud": {"region": "r" * 100 + "2"}}
    assert partition_of(first)[0] != partition_of(second)[0]


def test_a_nul_byte_and_a_300_byte_account_write_to_disk(alerts, tmp_path):
    odd = [replace(alerts[0], alert_context={**alerts[0].alert_context,
                                             "account_id": "9" * 300, "region": "eu\x00west"})]
    (written,) = write_security_lake(odd, str(tmp_path), name="run-1")
    assert Path(written).is_file() and "\x00" not in written
    assert "/region=eu_west/accountId=" + "9" * 40 + "-" in written


def test_doctests():
    import doctest

    from flowwarden.alerts.formats import securitylake

    result = doctest.testmod(securitylake)
    assert result.attempted >= 2 and result.failed == 0
