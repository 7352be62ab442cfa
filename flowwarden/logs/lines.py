"""Complete lines of a decompressed text stream, in runs of blocks, with bounded line length.

A line longer than the bound is not kept: its bytes are skipped until the next newline, and the
consumer counts it as one rejected line. So memory stays near one block plus one bound whatever
the input holds (a gigabyte without a newline costs one block at a time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from flowwarden.logs.model import FileStats
from flowwarden.logs.streams import Opened, blocks
from flowwarden.util.iterables import ahead

NEWLINE = 10


@dataclass(frozen=True)
class Lines:
    """Complete lines (each ending in ``\\n``, none longer than the bound), then, if
    ``overlong``, one skipped line of that many bytes, then, if ``error``, the end of input."""

    data: bytes
    overlong: int = 0
    error: str | None = None


def line_chunks(opened: Opened, size: int, max_line: int) -> Iterator[Lines]:
    """Runs of complete lines, about ``size`` bytes each; a line over ``max_line`` bytes is
    reported as ``overlong``. After a read error, the partial last line is dropped."""
    max_line = max(max_line, 1)
    carry = b""  # the start of an unfinished line, never more than max_line bytes
    skipped = 0  # bytes of an overlong line skipped so far; 0 when not in one
    for block, error in ahead(blocks(opened, size)):
        start = 0
        if skipped:
            end = block.find(b"\n")
            if end < 0:
                skipped += len(block)
                start = len(block)
            else:
                yield Lines(b"", skipped + end)
                skipped, start = 0, end + 1
        cut = block.rfind(b"\n", start) + 1
        if cut:
            data = carry + block[start:cut] if carry else block[start:cut]
            carry, start = b"", cut
            yield from _bounded(data, max_line)
        if start < len(block):
            if len(carry) + len(block) - start > max_line:
                skipped, carry = len(carry) + len(block) - start, b""
            else:
                carry += block[start:]
        if error is not None:
            yield Lines(b"", 0, error)
            return
    if skipped:
        yield Lines(b"", skipped)
    elif carry.strip():
        yield Lines(carry + b"\n")


def after_chunk(chunk: Lines, line_no: int, max_line: int, stats: FileStats) -> int:
    """Count a chunk's skipped overlong line and its read error; the line number after it."""
    if chunk.overlong:
        line_no += 1
        stats.reject(line_no, f"line longer than {max_line:,} bytes ({chunk.overlong:,} bytes, "
                              "skipped)")
    if chunk.error is not None:
        stats.reject(line_no + 1, f"truncated or corrupt input: {chunk.error}")
    return line_no


def _bounded(data: bytes, max_line: int) -> Iterator[Lines]:
    """``data`` (complete lines) split around its lines longer than ``max_line``."""
    if len(data) <= max_line:
        yield Lines(data)
        return
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE)
    starts = np.concatenate(([0], ends[:-1] + 1))
    long = np.flatnonzero(ends - starts > max_line)
    done = 0
    for index in long.tolist():
        yield Lines(data[done:int(starts[index])], int(ends[index] - starts[index]))
        done = int(ends[index]) + 1
    if done < len(data):
        yield Lines(data[done:])
