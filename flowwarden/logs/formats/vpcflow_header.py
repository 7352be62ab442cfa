"""The leading lines of flow log text: a header naming the fields (else ``--format`` or AWS's
default), junk before it, and a header that cannot be used (a field named twice)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.errors import LogFormatError
from flowwarden.logs import fields as F
from flowwarden.logs.common import indices, printable
from flowwarden.logs.model import FileStats, ReadOptions

HEADER_TOKEN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
HEADER_LOOKAHEAD = 20  # non-blank lines searched for a header after leading junk


def header_fields(line: str) -> tuple[F.Field, ...] | None:
    """The fields a header line names, or None if ``line`` is not a header.

    >>> [f.panther for f in header_fields("version srcaddr log-status")]
    ['version', 'srcAddr', 'status']
    """
    tokens = line.split()
    if not tokens or not all(HEADER_TOKEN.match(t) for t in tokens):
        return None
    if not any(t.replace("_", "-") in F.BY_AWS for t in tokens):
        return None
    return tuple(F.field_for(t) for t in tokens)


def format_fields(options: ReadOptions) -> tuple[F.Field, ...]:
    """Fields for headerless input: ``options.format`` or AWS's default (v2) format."""
    names = F.parse_format(options.format) if options.format else F.DEFAULT_V2
    if not names:
        raise LogFormatError(f"the format {options.format!r} names no fields")
    return tuple(F.field_for(n) for n in names)


def detect(head: bytes) -> bool:
    """Whether ``head`` (decompressed first bytes) looks like flow log text: one of its first
    non-blank lines is a header or a default-format record.

    >>> detect(b"junk\\nversion srcaddr dstaddr\\n"), detect(b"a b c\\n")
    (True, False)
    """
    for line in _first_lines(head):
        if header_fields(line) is not None:
            return True
        tokens = line.split()
        if len(tokens) == len(F.DEFAULT_V2) and tokens[0].isdigit() and tokens[-1].isupper():
            return True
    return False


class Header:
    """What the leading lines of a text input said: its fields and header line, or why its
    records cannot be read (a header naming a field twice)."""

    def __init__(self) -> None:
        self.fields: tuple[F.Field, ...] | None = None
        self.header: str | None = None
        self.problem: str | None = None

    def resolve(self, lines: pa.Array, options: ReadOptions, line_no: int,
                stats: FileStats) -> tuple[pa.Array, int]:
        """Take the fields from the leading lines (``resolve_fields``); the lines left and the
        line number before them. Lines before a header are rejected."""
        self.fields, self.header, junk, lines, line_no = resolve_fields(lines, options, line_no)
        for number, text in junk:
            stats.reject(number, f"before the header line {line_no}: not a flow log record: "
                                 f"{printable(text)}")
        if self.fields is not None:
            twice = sorted({f.aws for f in self.fields
                            if sum(g.panther == f.panther for g in self.fields) > 1})
            if twice:
                self.problem = (f"the header line {line_no} names {', '.join(twice)} more than "
                                "once, so its records cannot be read")
        return lines, line_no


def reject_all(lines: pa.Array, first_line: int, state: Header, stats: FileStats) -> None:
    """Reject every record line (not blank, not a repeat of the header) for ``state.problem``."""
    trimmed = pc.utf8_trim_whitespace(lines)
    keep = pc.greater(pc.binary_length(trimmed), 0)
    if state.header is not None:
        keep = pc.and_(keep, pc.not_equal(trimmed, state.header))
    stats.reject_lines([first_line + i for i in indices(keep)], str(state.problem))


def resolve_fields(
    lines: pa.Array, options: ReadOptions, line_no: int
) -> tuple[tuple[F.Field, ...] | None, str | None, list[tuple[int, str]], pa.Array, int]:
    """Find the header among the leading lines: (fields, header, junk lines before the header
    with their numbers, remaining lines, line number before them).

    A header may follow a few lines that are not records either (the wrong number of fields
    for headerless input; up to ``HEADER_LOOKAHEAD`` non-blank lines): those are junk. Without
    a header, the first non-blank line is the first record. Fields stay None while only blank
    lines have been seen.
    """
    seen: list[tuple[int, str]] = []
    width: int | None = None
    for index, value in enumerate(lines.slice(0, 1000).to_pylist()):
        text = (value or "").strip()
        if not text:
            continue
        found = header_fields(text)
        if found is not None:
            junk = [(line_no + i + 1, t) for i, t in seen]
            return found, " ".join(text.split()), junk, lines.slice(index + 1), line_no + index + 1
        seen.append((index, text))
        width = width or len(format_fields(options))
        if len(seen) >= HEADER_LOOKAHEAD or len(text.split()) == width:
            break
    if not seen:
        return None, None, [], lines.slice(len(lines)), line_no + len(lines)
    first = seen[0][0]
    return format_fields(options), None, [], lines.slice(first), line_no + first


def _first_lines(head: bytes) -> Iterator[str]:
    """The first ``HEADER_LOOKAHEAD`` non-blank lines of ``head``, stripped."""
    found = 0
    for raw in head.split(b"\n", 1000)[:1000]:
        line = raw.decode("utf-8", errors="replace").strip()
        if line:
            yield line
            found += 1
            if found >= HEADER_LOOKAHEAD:
                return
