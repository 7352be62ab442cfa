"""The format registry: detection order per sample kind, and a format added without the reader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowwarden.errors import LogFormatError
from flowwarden.logs import DEFAULT_OPTIONS, FileStats, ReadOptions, formats
from flowwarden.logs.common import IP_LIST, with_standard
from flowwarden.logs.formats.base import FormatBase
from flowwarden.logs.streams import PARQUET_MAGIC, Opened, blocks, open_content
from tests.logs.helpers import read_rows

OCSF, VPC = "OCSF.NetworkActivity", "AWS.VPCFlow"


def detected(path: Path, options: ReadOptions = DEFAULT_OPTIONS) -> str | None:
    """The name of the registry's format for ``path``, found as the reader finds it."""
    with path.open("rb") as raw:
        head = raw.read(len(PARQUET_MAGIC))
        if head == PARQUET_MAGIC:
            found = formats.parquet_format(pq.read_schema(path), options)
        else:
            found = formats.text_format(open_content(raw, head).head, options)
    return found.name if found is not None else None


def test_registry_order() -> None:
    assert [f.name for f in formats.FORMATS] == [
        "cloudwatch", "panther-json", "ocsf-json", "vpcflow-text", "ocsf-parquet",
        "vpcflow-parquet",
    ]
    for f in formats.FORMATS:
        assert f.log_types in ((), (VPC,), (OCSF,)), f.name


@pytest.mark.parametrize(("folder", "name"), [
    ("cloudwatch", "cloudwatch"),
    ("s3-text", "vpcflow-text"),
    ("parquet", "vpcflow-parquet"),
    ("ocsf", "ocsf-json"),  # the .jsonl files; the Parquet ones below
    ("ocsf/aws", "ocsf-parquet"),
    ("panther", None),  # a YAML scenario, not a log file
])
def test_each_sample_kind_is_detected_by_its_format(samples: Path, folder: str,
                                                    name: str | None) -> None:
    paths = sorted((samples / folder).rglob("*.parquet" if folder == "ocsf/aws" else "*"))
    if folder == "ocsf":
        paths = [p for p in paths if p.suffix == ".jsonl"]
    paths = [p for p in paths if p.is_file()]
    assert paths
    assert {p.name: detected(p) for p in paths} == {p.name: name for p in paths}


def test_forced_options_decide(samples: Path, tmp_path: Path) -> None:
    ocsf_lines = samples / "ocsf/vpcflow_ocsf_1.1.0.jsonl"
    text = samples / "s3-text/awsdocs_default_v2_examples.log"
    assert detected(ocsf_lines, ReadOptions(log_type=VPC)) == "panther-json"
    assert detected(text, ReadOptions(log_type=OCSF)) is None
    assert detected(samples / "parquet/synthetic_v8_aws_doc_types.parquet",
                    ReadOptions(log_type=OCSF)) is None
    odd = tmp_path / "odd.txt"
    odd.write_text("10.0.0.1 22\n")
    assert detected(odd) is None
    assert detected(odd, ReadOptions(format="${srcaddr} ${dstport}")) == "vpcflow-text"
    junk = tmp_path / "junk.json"
    junk.write_text('{"a": 1}\n')
    assert detected(junk, ReadOptions(format="${srcaddr} ${dstport}")) is None
    assert detected(junk, ReadOptions(log_type="Custom.Thing")) == "panther-json"
    panther = tmp_path / "panther.json"
    panther.write_text('{"p_log_type": "Custom.Thing", "a": 1}\n')
    assert detected(panther) == "panther-json"


class Csv(FormatBase):
    """A format the reader has never heard of: ``a,b`` CSV text, or Parquet with a ``csv_b``
    column."""

    name = "test-csv"
    log_types = ("Test.Csv",)

    def detect_text(self, head: bytes, options: ReadOptions) -> bool:
        return self.allows(options) and head.startswith(b"a,b\n")

    def read_text(self, opened: Opened, source: str, options: ReadOptions,
                  stats: FileStats) -> Iterator[pa.RecordBatch]:
        data = b"".join(block for block, _ in blocks(opened)).decode()
        rows = [line.split(",") for line in data.splitlines()[1:] if line]
        yield self._batch({"a": [r[0] for r in rows], "b": [r[1] for r in rows]}, source, stats)

    def detect_parquet(self, schema: pa.Schema, options: ReadOptions) -> bool:
        return self.allows(options) and "csv_b" in schema.names

    def read_parquet(self, file: pq.ParquetFile, source: str, options: ReadOptions,
                     stats: FileStats) -> Iterator[pa.RecordBatch]:
        table = file.read()
        yield self._batch({"a": table.column("csv_a").to_pylist(),
                           "b": table.column("csv_b").to_pylist()}, source, stats)

    def _batch(self, columns: dict[str, list[str]], source: str,
               stats: FileStats) -> pa.RecordBatch:
        rows = len(columns["a"])
        stats.accept(rows)
        ips = pa.array([[a] for a in columns["a"]], IP_LIST)
        return with_standard(pa.record_batch(columns), "Test.Csv", source,
                             pa.nulls(rows, pa.timestamp("us", tz="UTC")),
                             {"p_any_ip_addresses": ips})


def test_a_registered_format_is_detected_and_read(samples: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.csv").write_text("a,b\n10.0.0.1,x\n10.0.0.2,y\n")
    pq.write_table(pa.table({"csv_a": ["10.0.0.3"], "csv_b": ["z"]}), tmp_path / "x.parquet")
    flows = samples / "s3-text/awsdocs_default_v2_examples.log"
    _, reader = read_rows([tmp_path, flows])
    assert reader.stats.totals()["rejected"] == 2  # neither file is a known format
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, Csv()))
    rows, reader = read_rows([tmp_path, flows])
    by_type: dict[str, list[str]] = {}
    for row in rows:
        by_type.setdefault(row["p_log_type"], []).append(row.get("b") or row["srcAddr"])
    assert sorted(by_type["Test.Csv"]) == ["x", "y", "z"] and len(by_type[VPC]) == 7
    assert reader.stats.totals()["rejected"] == 0
    csv = {r["b"]: r for r in rows if r["p_log_type"] == "Test.Csv"}
    assert csv["z"]["p_any_ip_addresses"] == ["10.0.0.3"]
    assert csv["x"]["p_source_file"] == str(tmp_path / "x.csv")
    with pytest.raises(LogFormatError, match="not Test.Csv"):
        read_rows([flows], log_type="Test.Csv")
