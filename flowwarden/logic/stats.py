"""Extraction coverage of a pack: which rules extract fully, partially or not at all, and why.

>>> from flowwarden.rules.loader import load_pack, resolve_pack_paths
>>> stats = logic_stats(load_pack(resolve_pack_paths([])))
>>> stats.counts
{'full': 8, 'partial': 0, 'none': 0}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flowwarden.logic import ir
from flowwarden.logic.extract import extract_rule
from flowwarden.logic.render.python import ResidualReached, compile_condition
from flowwarden.logic.rewrite import resolve_fields
from flowwarden.rules.event import PantherEvent
from flowwarden.rules.loader import Pack

STATUSES = ("full", "partial", "none")
# What a rule directory of a Panther repository needs from the repository around it.
SUPPORT_DIRS = ("global_helpers", "data_models")
TOP_REASONS = 10


@dataclass(frozen=True)
class ResidualInfo:
    """One residual: why it could not be expressed and where it is."""

    reason: str
    line: int | None
    source: str


@dataclass(frozen=True)
class RuleStats:
    """One rule's extraction result."""

    rule_id: str
    status: str
    residuals: tuple[ResidualInfo, ...]
    python_fields: tuple[tuple[str, str], ...] = ()  # (log type, data-model name) needing Python


@dataclass(frozen=True)
class PackStats:
    """Every rule's extraction result, in pack order."""

    rules: tuple[RuleStats, ...]

    @property
    def counts(self) -> dict[str, int]:
        """How many rules extract fully, partially, not at all."""
        return {s: sum(1 for r in self.rules if r.status == s) for s in STATUSES}


def support_dirs(paths: Sequence[str]) -> list[str]:
    """The ``global_helpers/`` and ``data_models/`` directories the rules in ``paths`` import and
    use: those of the nearest directory at or above each path that has either, unless a given
    path holds them already (so ``rules/`` finds its helpers as the repository root does).

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("rules/aws", "global_helpers", "data_models"):
    ...     (root / name).mkdir(parents=True)
    >>> [Path(p).name for p in support_dirs([str(root / "rules" / "aws")])]
    ['global_helpers', 'data_models']
    >>> support_dirs([str(root)])
    []
    """
    given = [Path(p).resolve() for p in paths]
    found: list[str] = []
    for path in given:
        for root in [path, *path.parents]:
            dirs = [root / name for name in SUPPORT_DIRS if (root / name).is_dir()]
            if not dirs:
                continue
            found += [str(d) for d in dirs if str(d) not in found
                      and not any(d == g or g in d.parents for g in given)]
            break
    return found


def logic_stats(pack: Pack) -> PackStats:
    """Extract every rule of ``pack`` and summarise the outcome."""
    rules = []
    for rule in pack.rules:
        extraction = extract_rule(rule)
        residuals = tuple(
            ResidualInfo(r.reason, r.span.line if r.span else None, _first_line(r.source))
            for r in extraction.residuals
        )
        python_fields = tuple(
            (log_type, node.name)
            for log_type in rule.log_types
            for node in _unique(ir.walk(resolve_fields(extraction.condition,
                                                       pack.data_models.get(log_type))))
            if isinstance(node, ir.Udm)
        )
        rules.append(RuleStats(rule.id, extraction.status, residuals, python_fields))
    return PackStats(tuple(rules))


@dataclass(frozen=True)
class Agreement:
    """Compiled conditions against ``rule()`` on the rules' own test events: how many events
    the condition decided (reached no residual), and the (rule id, test name) pairs where its
    verdict (True, False, or an error) differed from the rule's."""

    events: int
    decided: int
    disagreements: tuple[tuple[str, str], ...]

    def render(self) -> str:
        agreed = self.decided - len(self.disagreements)
        share = f" ({100 * agreed / self.decided:.1f}%)" if self.decided else ""
        lines = [f"test events: {self.events}, decided by the condition: {self.decided}, "
                 f"agreeing with rule(): {agreed}{share}"]
        lines += [f"  disagrees: {rule_id}: {name}" for rule_id, name in self.disagreements]
        return "\n".join(lines)


def agreement(pack: Pack) -> Agreement:
    """Each rule's condition, resolved for the test event's log type, evaluated on every test
    event of the rule, against what ``rule()`` returns there."""
    events = decided = 0
    disagreements: list[tuple[str, str]] = []
    for rule in pack.rules:
        condition = extract_rule(rule).condition
        for test in rule.tests:
            events += 1
            event = pack.event(test.log)
            model = pack.data_models.get(str(test.log.get("p_log_type")))
            verdict = _verdict(resolve_fields(condition, model), event)
            if verdict is None:
                continue
            decided += 1
            truth = rule.evaluate(event).matched
            if verdict != ("error" if truth is None else truth):
                disagreements.append((rule.id, test.name))
    return Agreement(events, decided, tuple(disagreements))


def _verdict(condition: ir.Node, event: PantherEvent) -> bool | str | None:
    """The condition's verdict on ``event``: a bool, "error", or None (a residual decides)."""
    try:
        value = compile_condition(condition)(event)
    except ResidualReached:
        return None
    except Exception:  # noqa: BLE001 - the rule raising there too is agreement
        return "error"
    return value if isinstance(value, bool) else "error"


def render_stats(stats: PackStats) -> str:
    """A plain-text table: one line per rule, one indented line per residual.

    >>> print(render_stats(PackStats((RuleStats("R.1", "partial",
    ...     (ResidualInfo("call to helper()", 7, "helper(event)"),)),))))
    rule  extraction  residuals
    R.1   partial     1
      line 7: call to helper(): helper(event)
    <BLANKLINE>
    top residual reasons (rules affected):
          1  call to helper()
    <BLANKLINE>
    1 rules: 0 full, 1 partial, 0 none
    """
    width = max([len("rule"), *(len(r.rule_id) for r in stats.rules)])
    lines = [f"{'rule':<{width}}  extraction  residuals"]
    for rule in stats.rules:
        lines.append(f"{rule.rule_id:<{width}}  {rule.status:<10}  {len(rule.residuals)}")
        for residual in rule.residuals:
            where = f"line {residual.line}" if residual.line is not None else "rule"
            source = f": {residual.source}" if residual.source else ""
            lines.append(f"  {where}: {residual.reason}{source}")
        for log_type, name in rule.python_fields:
            lines.append(f"  {log_type}: data-model field {name!r} is resolved in Python")
    reasons = top_reasons(stats)
    if reasons:
        lines += ["", "top residual reasons (rules affected):"]
        lines += [f"  {count:>5}  {reason}" for reason, count in reasons]
    counts = stats.counts
    lines += ["", f"{len(stats.rules)} rules: "
              + ", ".join(f"{counts[s]} {s}" for s in STATUSES)]
    return "\n".join(lines)


def reason_kind(reason: str) -> str:
    """A residual reason with what differs per rule taken out, so that like reasons count
    together: a method call by its method name, whatever object it is called on.

    >>> reason_kind("call to response_status.get()"), reason_kind("call to '/'.join()")
    ('call to .get()', 'call to .join()')
    >>> reason_kind("call to isinstance()"), reason_kind("Try statement")
    ('call to isinstance()', 'Try statement')
    """
    if reason.startswith("call to ") and reason.endswith("()"):
        callee = reason.removeprefix("call to ").removesuffix("()")
        if "." in callee:
            return f"call to .{callee.rsplit('.', 1)[1]}()"
    return reason


def top_reasons(stats: PackStats, limit: int = TOP_REASONS) -> list[tuple[str, int]]:
    """The most common residual reasons, each counted once per rule it affects (a rule with
    three `isinstance()` calls is one rule that `isinstance()` keeps from compiling fully).

    >>> one = RuleStats("A", "partial", (ResidualInfo("call to x.get()", 1, ""),
    ...                                   ResidualInfo("call to y.get()", 2, "")))
    >>> two = RuleStats("B", "none", (ResidualInfo("Try statement", 1, ""),
    ...                               ResidualInfo("call to z.get()", 3, "")))
    >>> top_reasons(PackStats((one, two)))
    [('call to .get()', 2), ('Try statement', 1)]
    """
    counted = Counter(kind for rule in stats.rules
                      for kind in {reason_kind(r.reason) for r in rule.residuals})
    return sorted(counted.items(), key=lambda item: (-item[1], item[0]))[:limit]


def stats_json(stats: PackStats, agreed: Agreement | None = None) -> dict[str, Any]:
    """The coverage as JSON values: counts, shares, top reasons and every rule's residuals.

    >>> data = stats_json(PackStats((RuleStats("R.1", "full", ()),)))
    >>> data["counts"], data["percent"]["full"], data["top_reasons"]
    ({'full': 1, 'partial': 0, 'none': 0}, 100.0, [])
    """
    counts = stats.counts
    total = len(stats.rules)
    data: dict[str, Any] = {
        "rules_total": total,
        "counts": counts,
        "percent": {s: round(100 * counts[s] / total, 1) if total else 0.0 for s in STATUSES},
        "top_reasons": [{"reason": reason, "rules": count}
                        for reason, count in top_reasons(stats)],
        "rules": [{"rule_id": r.rule_id, "status": r.status,
                   "residuals": [asdict(info) for info in r.residuals],
                   "python_fields": [list(pair) for pair in r.python_fields]}
                  for r in stats.rules],
    }
    if agreed is not None:
        data["agreement"] = {"events": agreed.events, "decided": agreed.decided,
                             "disagreements": [list(pair) for pair in agreed.disagreements]}
    return data


def _first_line(source: str) -> str:
    first = source.strip().splitlines()[0] if source.strip() else ""
    return first if len(first) <= 80 else first[:77] + "..."


def _unique(nodes: Iterable[ir.Node]) -> list[ir.Node]:
    return list(dict.fromkeys(nodes))
