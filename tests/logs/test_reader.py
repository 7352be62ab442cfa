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
    assert by_type == {"AWS.VPCFlow": 54, "OCSF.NetworkActivity": 68}
    files = reader.stats.files
    # SOURCES.md and the Panther YAML scenario are not log files: one rejection each.
    unknown = {Path(s).name for s, f in files.items() if f.log_type is None}
    assert unknown == {"SOURCES.md", "panther-analysis_attacker_vpc.yml"}
    # flowlogs-reader's synthetic file has protocol 8080 in its third row.
    rejected = {Path(s).name: [r.reason for r in f.rejections]
                for s, f in files.items() if f.log_type is not None and f.rejected}
    assert rejected == {"flowlogs_reader_tests_flows.parquet": [
        'protocol (protocol): "8080" is out of range (0..255)']}


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


def _lines_of(reader) -> dict[str, list[int | None]]:
    """For each input, the line the reader reports for every record it yielded, in order."""
    counts: dict[str, int] = {}
    for item in reader:
        counts[item.source] = counts.get(item.source, 0) + item.batch.num_rows
    return {source: [reader.stats.files[source].line_at(i) for i in range(count)]
            for source, count in counts.items()}


def test_records_keep_their_line_numbers_past_blanks_rejections_and_the_window(tmp_path: Path):
    header = "version srcaddr dstport start end action log-status"
    ok = "2 10.0.0.{} 22 {} {} ACCEPT OK"
    old, new = 1420070400, 1714564800  # 2015 and 2024
    text = tmp_path / "flows.log"
    text.write_text("\n".join([header, ok.format(1, new, new), "", ok.format(2, old, old),
                               "2 10.0.0.3 x", ok.format(4, new, new), "   ",
                               ok.format(5, new, new)]) + "\n")
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("\n".join([
        json.dumps({"p_log_type": "AWS.VPCFlow", "srcAddr": "10.0.0.1", "dstPort": 22}),
        "not json", "",
        json.dumps({"p_log_type": "AWS.VPCFlow", "srcAddr": "10.0.0.4", "dstPort": 22})]) + "\n")
    reader = read([str(text), str(jsonl)])
    lines = _lines_of(reader)
    assert lines == {str(text): [2, 4, 6, 8], str(jsonl): [1, 4]}
    assert {f.numbered_by for f in reader.stats.files.values()} == {"line"}
    windowed = read([str(text)], ReadOptions(since=datetime(2020, 1, 1, tzinfo=UTC)))
    assert _lines_of(windowed) == {str(text): [2, 6, 8]}  # line 4 is from 2015
    # A clean block (the fast path) and a projected read number their records the same way
    clean = tmp_path / "clean.log"
    clean.write_text(header + "\n" + "\n".join(ok.format(i, new, new) for i in range(9)) + "\n")
    projected = read([str(clean)], ReadOptions(columns=("dstPort",), batch_size=4))
    assert _lines_of(projected) == {str(clean): list(range(2, 11))}


def test_parquet_records_are_numbered_by_record(samples: Path) -> None:
    path = next((samples / "parquet").glob("*.parquet"))
    reader = read([str(path)])
    (numbers,) = _lines_of(reader).values()
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 1
    assert reader.stats.files[str(path)].numbered_by == "record"


def test_rejected_input_is_shown_as_text_not_bytes(tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"a,b,c \x1b[2J\xff\n1,2,3\n")
    flows = tmp_path / "flows.log"
    flows.write_text("srcaddr dstport\n10.0.0.1 2\x1b]0;owned\x07\n")
    _, reader = read_rows([junk, flows])
    reasons = [r.reason for f in reader.stats.files.values() for r in f.rejections]
    assert reasons == ['not a recognised log format (first line "a,b,c \\x1b[2J\ufffd")',
                       'dstPort (dstport): not an integer: "2\\x1b]0;owned\\x07"']
    assert not any("b'" in r or "\x1b" in r for r in reasons)


def test_doctests() -> None:
    import doctest

    from flowwarden.logs import model

    result = doctest.testmod(model)
    assert result.attempted > 0 and result.failed == 0
