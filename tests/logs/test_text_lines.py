"""Flow log text lines: one parser wherever a line falls (the CSV fast path agrees with the
general path), and bounded line length with bounded memory."""

from __future__ import annotations

import random
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from flowwarden.logs import FileStats, ReadOptions, read
from flowwarden.logs.common import Projected
from flowwarden.logs.formats.vpcflow_header import header_fields
from flowwarden.logs.formats.vpcflow_text import _parse_fast, _split, block_size, parse_numbered
from tests.logs.fuzzing import TOKENS, mutate_line
from tests.logs.helpers import check_invariant

HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
          "bytes start end action log-status")
GOOD = ("2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
        "1418530010 1418530070 ACCEPT OK")
FIELDS = header_fields(HEADER)
assert FIELDS is not None
# ASCII the fast path accepts, so that the CSV reader splits most generated blocks.
PLAIN_TOKENS = ["-0", "+5", "-1", "9" * 18, "9" * 19, "65536", "256", "300000000000000",
                "253402300799", "x", "-", "REJECT", "MAYBE", "1e3", "0x10"]


def outcome(batch: pa.RecordBatch | Projected | None, numbers: pa.Array | None,
            stats: FileStats) -> dict[str, Any]:
    rows = [] if batch is None else [
        {k: v for k, v in row.items() if k != "p_parse_time"} for row in batch.to_pylist()
    ] if isinstance(batch, pa.RecordBatch) else []
    return {"rows": rows, "numbers": [] if numbers is None else numbers.to_pylist(),
            "counts": (stats.read, stats.parsed, stats.rejected),
            "rejections": [(r.line, r.reason) for r in stats.rejections]}


def both_paths(lines: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the fast path's outcome, or None where it declines; the general path's outcome)."""
    data = "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")
    fast_stats, general_stats = FileStats("f"), FileStats("f")
    fast = _parse_fast(data, FIELDS, HEADER, "f", fast_stats, 1)
    general = parse_numbered(_split(data), 1, FIELDS, "f", general_stats, skip=HEADER)
    return (None if fast is None else outcome(*fast, fast_stats),
            outcome(*general, general_stats))


def plain_line(rng: random.Random) -> str:
    tokens = GOOD.split(" ")
    for _ in range(rng.randrange(1, 3)):
        tokens[rng.randrange(len(tokens))] = rng.choice(PLAIN_TOKENS)
    return " ".join(tokens)


def test_fast_path_parses_every_plain_line_as_the_general_path() -> None:
    rng = random.Random(15)
    taken = 0
    for _ in range(200):
        lines = [plain_line(rng) for _ in range(rng.randrange(1, 6))]
        fast, general = both_paths(lines)
        if fast is not None:
            taken += 1
            assert fast == general, lines
    assert taken > 150  # the comparison did exercise the fast path


@settings(max_examples=150, deadline=None)
@given(st.lists(st.builds(mutate_line, st.just(GOOD), st.randoms(use_true_random=False)),
                min_size=1, max_size=6))
def test_fast_path_never_disagrees_with_the_general_path(lines: list[str]) -> None:
    fast, general = both_paths(lines)
    assert fast is None or fast == general


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from([*TOKENS, *PLAIN_TOKENS]), min_size=1, max_size=3))
def test_odd_whitespace_and_digits_send_the_block_to_the_general_path(tokens: list[str]) -> None:
    line = GOOD.replace(" 22 ", f" 22{''.join(tokens)} ")
    fast, general = both_paths([GOOD, line])
    assert fast is None or fast == general
    if any(t in ("\u00a0", "\u2028", "\x0b", "\r", "\t", "\x0c", "\x85") for t in tokens):
        assert fast is None


def test_a_line_parses_the_same_in_the_first_block_and_after_it(tmp_path: Path) -> None:
    rng = random.Random(7)
    odd = [plain_line(rng) if i % 2 else mutate_line(GOOD, rng) for i in range(150)]
    options = ReadOptions(batch_size=256)  # 64 KiB blocks: the filler takes several
    filler = [GOOD] * (3 * block_size(options.batch_size) // len(GOOD))
    early, late = tmp_path / "early.log", tmp_path / "late.log"
    early.write_text("\n".join([HEADER, *odd, *filler]) + "\n", errors="surrogateescape")
    late.write_text("\n".join([HEADER, *filler, *odd]) + "\n", errors="surrogateescape")

    def odd_part(path: Path, first_odd_line: int) -> tuple[list[Any], list[Any]]:
        reader = read([str(path)], options)
        rows = [row for item in reader for row in item.batch.to_pylist()]
        check_invariant(reader)
        stats = next(iter(reader.stats.files.values()))
        assert stats.rejected < 100  # all reasons kept
        shifted = [(r.line - first_odd_line, r.reason) for r in stats.rejections]
        kept = len(odd) - stats.rejected
        part = rows[:kept] if first_odd_line == 2 else rows[len(filler):]
        return [{k: v for k, v in r.items() if k not in ("p_parse_time", "p_source_file")}
                for r in part], shifted

    assert odd_part(early, 2) == odd_part(late, 2 + len(filler))


def test_a_long_line_is_one_rejection_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    path.write_text("\n".join([HEADER, GOOD, "x" * 5000, GOOD, "y" * 300]) + "\n" + "z" * 900)
    reader = read([str(path)], ReadOptions(max_line_bytes=200, batch_size=16))
    assert sum(item.batch.num_rows for item in reader) == 2
    stats = next(iter(reader.stats.files.values()))
    assert [(r.line, r.reason) for r in stats.rejections] == [
        (3, "line longer than 200 bytes (5,000 bytes, skipped)"),
        (5, "line longer than 200 bytes (300 bytes, skipped)"),
        (6, "line longer than 200 bytes (900 bytes, skipped)"),
    ]
    check_invariant(reader)


def test_a_long_json_line_is_one_rejection(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    row = '{"p_log_type": "AWS.VPCFlow", "dstPort": 22}'
    path.write_text("\n".join([row, '{"p_log_type": "' + "x" * 1000 + '"}', row]) + "\n")
    reader = read([str(path)], ReadOptions(max_line_bytes=100))
    assert sum(item.batch.num_rows for item in reader) == 2
    stats = next(iter(reader.stats.files.values()))
    assert [r.line for r in stats.rejections] == [2] and stats.read == 3


def test_a_huge_line_in_a_gzip_costs_no_more_than_a_block(tmp_path: Path) -> None:
    path = tmp_path / "huge.log.gz"
    packer = zlib.compressobj(1, wbits=31)
    chunk = b"a" * (1 << 20)
    with path.open("wb") as out:
        out.write(packer.compress(f"{HEADER}\n{GOOD}\n".encode()))
        for _ in range(192):  # one line of 192 MiB
            out.write(packer.compress(chunk))
        out.write(packer.compress(f"\n{GOOD}\n".encode()) + packer.flush())
    options = ReadOptions(max_line_bytes=1 << 20, batch_size=1024)
    tracemalloc.start()
    try:
        reader = read([str(path)], options)
        rows = sum(item.batch.num_rows for item in reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stats = next(iter(reader.stats.files.values()))
    assert rows == 2 and [(r.line, r.reason) for r in stats.rejections] == [
        (3, "line longer than 1,048,576 bytes (201,326,592 bytes, skipped)")]
    assert peak < 16 << 20, peak
