"""The reader: detection, since/until, stats, overrides, stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from flowwarden.logs import InputObject, ReadOptions, list_inputs, read
from flowwarden.logs.common import any_ips
from tests.logs.helpers import check_invariant, read_rows


def test_every_sample_reads(samples: Path) -> None:
    rows, reader = read_rows([samples])
    check_invariant(reader)
    by_type: dict[str, int] = {}
    for row in rows:
        by_type[row["p_log_type"]] = by_type.get(row["p_log_type"], 0) + 1
    assert by_type == {"AWS.VPCFlow": 55, "OCSF.NetworkActivity": 68}
    files = reader.stats.files
    # SOURCES.md and the Panther YAML scenario are not log files: one rejection each.
    unknown = {Path(s).name for s, f in files.items() if f.log_type is None}
    assert unknown == {"SOURCES.md", "panther-analysis_attacker_vpc.yml"}
    assert all(f.rejected == 0 for f in files.values() if f.log_type is not None)


def test_panther_scenario_raw_lines(samples: Path, tmp_path: Path) -> None:
    import yaml

    scenario = yaml.safe_load((samples / "panther/panther-analysis_attacker_vpc.yml").read_text())
    path = tmp_path / "raw.log"
    path.write_text("\n".join(scenario["Logs"]) + "\n")
    rows, _ = read_rows([path])
    assert len(rows) == 6 and rows[0]["srcAddr"] == "92.55.146.245" and rows[0]["dstPort"] == 22


def test_since_until_filters_records(samples: Path) -> None:
    path = samples / "s3-text/awsdocs_default_v2_examples.log"
    since = datetime(2015, 1, 1, tzinfo=UTC)
    until = datetime(2015, 12, 31, tzinfo=UTC)
    rows, reader = read_rows([path], since=since, until=until)
    assert {r["status"] for r in rows} == {"NODATA", "SKIPDATA", "OK"}
    assert len(rows) == 4 and all(since <= r["p_event_time"] <= until for r in rows)
    stats = reader.stats.files[str(path)]
    assert stats.filtered == 3 and stats.parsed == 7
    check_invariant(reader)


def test_stats_to_json(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    path.write_text("srcaddr dstport\n10.0.0.1 22\n10.0.0.2 x\n")
    _, reader = read_rows([path])
    data = json.loads(json.dumps(reader.stats.to_json()))
    assert data["totals"] == {"read": 2, "parsed": 1, "rejected": 1, "filtered": 0, "files": 1}
    assert data["files"][0]["rejections"][0]["line"] == 3
    assert data["files"][0]["log_type"] == "AWS.VPCFlow"


def test_iterating_again_restarts_stats(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    path.write_text("srcaddr dstport\n10.0.0.1 22\n")
    reader = read([str(path)])
    assert sum(b.batch.num_rows for b in reader) == 1
    assert sum(b.batch.num_rows for b in reader) == 1
    assert reader.stats.totals()["read"] == 1


def test_list_inputs_local(samples: Path) -> None:
    objects = list_inputs([str(samples / "s3-text" / "*.log")])
    assert len(objects) == 8 and all(isinstance(o, InputObject) for o in objects)
    assert all(o.size and o.etag_or_mtime for o in objects)
    pruned = list_inputs([str(samples / "ocsf/aws")], ReadOptions(regions=("ap-southeast-2",)))
    assert [Path(o.url).parent.name for o in pruned] == ["eventDay=20210326"]
    window = ReadOptions(since=datetime(2019, 8, 27, 12), until=datetime(2020, 1, 1))
    days = list_inputs([str(samples / "ocsf/aws")], window)
    assert [Path(o.url).parent.name for o in days] == ["eventDay=20190827"]


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    from flowwarden.errors import SourceError

    try:
        list_inputs([str(tmp_path / "nope.log")])
    except SourceError as exc:
        assert "no such file" in str(exc)
    else:
        raise AssertionError("expected SourceError")


def test_stdin(samples: Path) -> None:
    code = (
        "from flowwarden.logs import read\n"
        "r = read(['-'])\n"
        "print(sum(b.batch.num_rows for b in r), r.stats.totals()['rejected'])\n"
    )
    data = (samples / "s3-text/AWSLogs").rglob("*.gz").__next__().read_bytes()
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True)
    assert out.stdout.decode().split() == ["7", "0"]


def test_any_ips_distinct_non_null() -> None:
    got = any_ips(
        [
            pa.array(["a", None, "c", None]),
            pa.array(["a", "b", "d", None]),
            pa.array(["x", "b", "c", None]),
        ]
    )
    assert got.to_pylist() == [["a", "x"], ["b"], ["c", "d"], []]


def test_log_type_override_on_text(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_text("10.0.0.1 22\n")
    rows, _ = read_rows([path], log_type="AWS.VPCFlow", format="${srcaddr} ${dstport}")
    assert rows[0]["dstPort"] == 22


def test_forced_log_type_that_does_not_fit(tmp_path: Path, samples: Path) -> None:
    import pytest

    from flowwarden.errors import LogFormatError

    text = tmp_path / "odd.txt"
    text.write_text("10.0.0.1 22\n")
    with pytest.raises(LogFormatError, match="not OCSF.NetworkActivity"):
        read_rows([text], log_type="OCSF.NetworkActivity")
    with pytest.raises(LogFormatError, match="Parquet columns"):
        read_rows(
            [samples / "parquet/synthetic_v8_aws_doc_types.parquet"],
            log_type="OCSF.NetworkActivity",
        )
    with pytest.raises(LogFormatError, match="names no fields"):
        read_rows([text], format="   ")


def test_stdin_parquet(samples: Path) -> None:
    code = (
        "from flowwarden.logs import read\n"
        "r = read(['-'])\n"
        "print(sum(b.batch.num_rows for b in r), r.stats.files['-'].log_type)\n"
    )
    data = (samples / "parquet/synthetic_v8_aws_doc_types.parquet").read_bytes()
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True)
    assert out.stdout.decode().split() == ["6", "AWS.VPCFlow"]


def test_log_type_known_when_window_drops_everything(samples: Path) -> None:
    path = samples / "s3-text/awsdocs_default_v2_examples.log"
    rows, reader = read_rows([path], since=datetime(2030, 1, 1, tzinfo=UTC))
    stats = reader.stats.files[str(path)]
    assert rows == [] and stats.log_type == "AWS.VPCFlow" and stats.filtered == 7
