"""Extraction coverage of a pack: which rules extract fully, partially or not at all, and why.

>>> from flowwarden.rules.loader import load_pack, resolve_pack_paths
>>> stats = logic_stats(load_pack(resolve_pack_paths([])))
>>> stats.counts
{'full': 6, 'partial': 0, 'none': 0}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flowwarden.logic import ir
from flowwarden.logic.extract import extract_rule
from flowwarden.logic.rewrite import resolve_fields
from flowwarden.rules.loader import Pack

STATUSES = ("full", "partial", "none")


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


def render_stats(stats: PackStats) -> str:
    """A plain-text table: one line per rule, one indented line per residual.

    >>> print(render_stats(PackStats((RuleStats("R.1", "partial",
    ...     (ResidualInfo("call to helper()", 7, "helper(event)"),)),))))
    rule  extraction  residuals
    R.1   partial     1
      line 7: call to helper(): helper(event)
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
    counts = stats.counts
    lines += ["", f"{len(stats.rules)} rules: "
              + ", ".join(f"{counts[s]} {s}" for s in STATUSES)]
    return "\n".join(lines)


def _first_line(source: str) -> str:
    first = source.strip().splitlines()[0] if source.strip() else ""
    return first if len(first) <= 80 else first[:77] + "..."


def _unique(nodes: Iterable[ir.Node]) -> list[ir.Node]:
    return list(dict.fromkeys(nodes))
