"""OCSF findings written from a scan's alert tables (``ocsftable``) equal the per-alert path's
(``to_finding``, ``finding_json``, ``write_ocsf_parquet``, ``write_security_lake``) for every
alert: VPC flows from Parquet and text, OCSF events, alerts with and without samples, and
alerts the query leaves to Python (exotic ones)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flowwarden.alerts.delivery import OutputSpec, deliver
from flowwarden.alerts.formats import ocsftable
from flowwarden.alerts.formats.ocsf import finding_json, write_ocsf_parquet
from flowwarden.alerts.formats.ocsfquery import finding_sql
from flowwarden.alerts.formats.securitylake import write_security_lake
from flowwarden.alerts.groupstore import AlertTable
from tests.alerts.tablecase import flows_file, ocsf_file, odd_pack, scan


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("ocsftable")


@pytest.fixture(scope="module")
def pack(folder):
    return odd_pack(folder)


def exotic_counts(alerts) -> tuple[int, int]:
    """How many findings the query leaves to Python (all formats, Parquet only)."""
    with ocsftable._cursor(alerts) as con:
        sql = f"SELECT count(*) FILTER (WHERE exotic), count(*) FILTER (WHERE exotic_parquet) " \
              f"FROM ({finding_sql(alerts.grouper.max_samples)})"
        (counts,) = con.execute(sql).fetchall()
    return counts


def assert_same_findings(alerts) -> None:
    assert isinstance(alerts, AlertTable) and len(alerts) > 0
    walked = list(alerts)
    out = io.BytesIO()
    assert ocsftable.write_jsonl(alerts, out) == len(walked)
    lines = out.getvalue().decode("utf-8").split("\n")
    assert lines.pop() == ""  # every line ends with a newline
    assert len(lines) == len(walked)
    for line, alert in zip(lines, walked, strict=True):
        assert json.loads(line) == json.loads(finding_json(alert)), alert.id
    queried, listed = io.BytesIO(), io.BytesIO()
    assert ocsftable.write_parquet(alerts, queried) == len(walked)
    write_ocsf_parquet(walked, listed)
    got, want = (pq.read_table(io.BytesIO(b.getvalue())) for b in (queried, listed))
    assert got.schema == want.schema
    assert got.equals(want)


@pytest.mark.parametrize(("engine", "max_samples", "parquet"), [
    ("duckdb", 3, True), ("python", 3, False), ("duckdb", 0, True), ("duckdb", 10, False)])
def test_vpc_flow_findings_equal_the_per_alert_path(pack, folder, engine, max_samples, parquet):
    alerts = scan(pack, flows_file(folder, parquet=parquet), engine, max_samples)
    assert len({a.rule_id for a in alerts}) >= 4
    exotic, _ = exotic_counts(alerts)
    odd = sum(a.rule_id == "Test.Odd" for a in alerts)
    assert 0 < exotic <= odd  # the odd rule's nested nulls go to Python, the pack's never
    assert_same_findings(alerts)


def test_the_default_pack_leaves_nothing_to_python(default_pack, folder):
    alerts = scan(default_pack, flows_file(folder, records=4000, awkward=False))
    assert exotic_counts(alerts) == (0, 0)
    assert_same_findings(alerts)


@pytest.mark.parametrize("max_samples", [3, 0])
def test_ocsf_findings_equal_the_per_alert_path(pack, folder, max_samples):
    alerts = scan(pack, ocsf_file(folder), "duckdb", max_samples)
    plain = sum(a.rule_id == "Test.Plain" for a in alerts)
    assert plain >= 12
    exotic, parquet_only = exotic_counts(alerts)
    odd = sum(a.rule_id == "Test.Odd" for a in alerts)
    if max_samples:  # the odd rule's nested nulls go to Python, the plain rule's are dropped
        assert exotic == odd
    else:  # and a non-ASCII context as evidence data (json.dumps escapes it)
        assert odd < exotic < len(alerts)
    assert 0 < parquet_only < plain  # non-ASCII contexts, escaped in Parquet's unmapped
    assert_same_findings(alerts)


def test_every_exotic_alert_falls_back_alone(pack, folder, monkeypatch):
    """Whatever the query marks exotic is rendered by Python, in its place, in every chunk
    of alerts the query reads."""
    alerts = scan(pack, flows_file(folder), "duckdb")
    monkeypatch.setattr(ocsftable, "CHUNK", 100)
    real = finding_sql

    def every_third(max_samples: int, seqs: range | None = None) -> str:
        return (f"SELECT * REPLACE (exotic OR seq % 3 = 0 AS exotic, exotic_parquet OR "
                f"seq % 5 = 0 AS exotic_parquet, CASE WHEN seq % 3 = 0 THEN NULL ELSE message "
                f"END AS message) FROM ({real(max_samples, seqs)})")

    monkeypatch.setattr(ocsftable, "finding_sql", every_third)
    assert_same_findings(alerts)


def lake_files(root: Path) -> dict[str, object]:
    return {str(p.relative_to(root)): pq.read_table(p) for p in sorted(root.rglob("*.parquet"))}


@pytest.mark.parametrize("input_kind", ["flows", "ocsf"])
def test_security_lake_partitions_equal_the_per_alert_path(pack, folder, input_kind,
                                                           monkeypatch):
    monkeypatch.setattr(ocsftable, "CHUNK", 97)  # each partition read in several seq ranges
    path = flows_file(folder) if input_kind == "flows" else ocsf_file(folder)
    alerts = scan(pack, path)
    queried, listed = folder / f"lake-q-{input_kind}", folder / f"lake-l-{input_kind}"
    got_urls = write_security_lake(alerts, str(queried))  # name: a digest of the findings
    want_urls = write_security_lake(list(alerts), str(listed))
    assert [Path(u).relative_to(queried) for u in got_urls] == \
        [Path(u).relative_to(listed) for u in want_urls]
    got, want = lake_files(queried), lake_files(listed)
    assert list(got) == list(want) and len(got) >= 2
    for key, table in got.items():
        assert table.equals(want[key]), key


def test_deliver_writes_the_same_files_from_the_query(pack, folder):
    alerts = scan(pack, flows_file(folder))
    for fmt in ("ocsf", "ocsf-parquet"):
        queried, listed = folder / f"q.{fmt}", folder / f"l.{fmt}"
        deliver(alerts, OutputSpec(fmt, output=str(queried)), "x")
        deliver(list(alerts), OutputSpec(fmt, output=str(listed)), "x")
        if fmt == "ocsf":
            assert [json.loads(x) for x in queried.read_text().split("\n")[:-1]] == \
                [json.loads(x) for x in listed.read_text().split("\n")[:-1]]
        else:
            assert pq.read_table(queried).equals(pq.read_table(listed))
    lake = deliver(alerts, OutputSpec("ocsf-parquet", output_dir=str(folder / "dq")), "run-1")
    assert lake and all(u.endswith("/run-1.parquet") for u in lake)


def test_findings_are_written_with_more_memory_than_the_grouper_keeps_to(default_pack, folder,
                                                                         monkeypatch):
    # A findings query holds about 20 kB per finding: a chunk of them ran out of the 256 MB a
    # grouper keeps to, so its database's limit is raised while they are written. Here the
    # grouper keeps to 32 MB, too little for the findings of these alerts in one query.
    from flowwarden.alerts import groupstore

    monkeypatch.setattr(groupstore, "GROUP_MEMORY_MB", 32)
    alerts = scan(default_pack, flows_file(folder, records=4000, awkward=False))
    limit = "SELECT current_setting('memory_limit')"
    assert alerts.grouper.con.execute(limit).fetchone()[0].startswith("30.")  # 32 MB, in MiB
    with ocsftable._cursor(alerts) as con:
        assert con.execute(limit).fetchone()[0] == "488.2 MiB"  # FINDINGS_MEMORY_MB
    assert alerts.grouper.con.execute(limit).fetchone()[0].startswith("30.")
    assert_same_findings(alerts)
