"""Signs that a run cannot have done what the user meant, each as one line for stderr.

A scan that exits 0 with no alerts is read as "nothing to see". These checks tell that apart
from a scan that could not have seen anything: a ``--format`` field nobody knows, no inputs, no
input in a format flowwarden reads, rules that did not load, a rule that raises on most events.
The command prints each reason (``-q`` too) and ``--strict`` makes any of them exit 2.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence

from flowwarden.logs import fields as F
from flowwarden.logs.model import FileStats
from flowwarden.rules.loader import Pack
from flowwarden.runs.checkpoint import RunResult

# How the reader names an input it could not place (logs.reader); matched to tell those apart.
UNRECOGNISED = "not a recognised log format"
SHOWN = 3  # inputs named in one line


def format_doubts(fmt: str | None) -> list[str]:
    """Unknown ``--format`` fields, each with the closest known one, and fields named twice.

    >>> format_doubts("${version} ${srcadr} ${dstaddr} ${dstaddr}")
    ["--format: unknown field 'srcadr' (did you mean 'srcaddr'?): its values go to a column no rule reads", "--format: field 'dstaddr' is named 2 times: only the last position is read"]
    """
    if not fmt:
        return []
    names = F.parse_format(fmt)
    doubts = []
    for name in dict.fromkeys(names):
        if name in F.BY_AWS:
            continue
        close = difflib.get_close_matches(name, list(F.BY_AWS), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "no known field is like it"
        doubts.append(f"--format: unknown field '{name}' ({hint}): its values go to a column "
                      f"no rule reads")
    for name, count in Counter(names).items():
        if count > 1:
            doubts.append(f"--format: field '{name}' is named {count} times: only the last "
                          f"position is read")
    return doubts


def pack_doubts(pack: Pack) -> list[str]:
    """Rule files that failed to load (each is also printed as an ``invalid:`` line)."""
    if not pack.problems:
        return []
    return [f"{len(pack.problems)} problem(s) loading the rules (the invalid: lines): "
            f"the rules concerned do not run"]


def input_doubts(result: RunResult, sources: Sequence[str], stateful: bool) -> list[str]:
    """No inputs, only empty inputs, inputs in no format flowwarden reads."""
    if stateful and result.inputs == [] and result.unchanged:
        return []  # nothing new since the last run: that is what --state is for
    named = ", ".join(sources)
    if not result.per_file_stats:
        return [] if result.scan.records else [f"no records read from {named}"]
    files = list(result.stats.files.values())
    if not files:
        return [f"no inputs found in {named}"]
    if not any(f.read for f in files):
        return [f"no records read: the {len(files)} input(s) are empty "
                f"({_names([f.source for f in files])})"]
    unknown = [f for f in files if _unrecognised(f)]
    if not unknown:
        return []
    reason = unknown[0].rejections[0].reason.removeprefix(UNRECOGNISED).strip(" ()")
    if len(unknown) == len(files):
        head = f"none of the {len(files)} input(s) is in a recognised log format"
    else:
        head = f"{len(unknown)} of the {len(files)} inputs are in no recognised log format"
    return [f"{head}: {_names([f.source for f in unknown])} (first: {reason})"]


def rule_doubts(result: RunResult) -> list[str]:
    """Rules whose ``rule()`` raised on more than half of the events of their log types, and
    lookup tables of the scanned log types left out (no data, disabled)."""
    doubts = []
    for rule in result.rules:
        errors = result.scan.error_counts.get((rule.id, "rule"), 0)
        if not errors:
            continue
        if result.per_file_stats:
            events = sum(f.parsed - f.filtered for f in result.stats.files.values()
                         if f.log_type in rule.log_types)
        else:
            events = result.scan.records
        if errors * 2 > events:
            sample = next((e.error for e in result.scan.errors
                           if e.rule_id == rule.id and e.function == "rule"), "")
            doubts.append(f"rule {rule.id} raised on {errors:,} of {events:,} events, so it "
                          f"cannot alert on them (first: {sample})")
    return doubts + [f"lookup table {note}" for note in result.scan.notes]


def _unrecognised(stats: FileStats) -> bool:
    return (not stats.parsed and bool(stats.rejections)
            and stats.rejections[0].reason.startswith(UNRECOGNISED))


def _names(sources: Sequence[str]) -> str:
    more = f" and {len(sources) - SHOWN} more" if len(sources) > SHOWN else ""
    return ", ".join(sources[:SHOWN]) + more
