"""What `flowwarden test` prints: a line per rule (with --verbose, a line per test and what
the rule printed during it), the skipped files, and the closing counts."""

from __future__ import annotations

from collections.abc import Iterator

from flowwarden.rules.loader import Pack
from flowwarden.rules.testing import TestReport


def render_report(report: TestReport, pack: Pack, verbose: bool = False) -> Iterator[str]:
    for rule_id, outcomes in report.by_rule().items():
        failed = [o for o in outcomes if not o.passed]
        if failed:
            yield f"FAIL {rule_id} ({len(outcomes) - len(failed)}/{len(outcomes)} passed)"
        else:
            yield f"PASS {rule_id} ({len(outcomes)} tests)"
        for outcome in outcomes if verbose else failed:
            if verbose:
                status = "PASS" if outcome.passed else "FAIL"
                reason = f": {outcome.reason}" if outcome.reason else ""
                yield f"  {status} {outcome.name}{reason}"
                yield from (f"    | {line}" for line in outcome.output.splitlines())
            else:
                yield f"  - {outcome.name}: {outcome.reason}"
    for path, reason in pack.skipped:
        yield f"skipped {path}: {reason}"
    yield closing_line(report, pack)


def closing_line(report: TestReport, pack: Pack) -> str:
    """``N passed, N failed``, then ``N invalid`` (files that failed to load) and ``N skipped``
    (analysis types not run) when there are any."""
    counts = [f"{report.passed} passed", f"{report.failed} failed"]
    if pack.problems:
        counts.append(f"{len(pack.problems)} invalid")
    if pack.skipped:
        counts.append(f"{len(pack.skipped)} skipped")
    return ", ".join(counts)
