"""``--filter KEY=A,B`` / ``KEY!=A`` on a detection's YAML attributes, as Panther's test tool
reads them: filters on different keys must all hold, a filter's values are alternatives, a
list attribute (``Tags``, ``LogTypes``) matches when any of its items does, strings compare
without regard to case, and ``!=`` excludes what it names.

>>> select = selector(parse_filters(["Severity=high,critical", "Tags!=Deprecated"]))
>>> select({"Severity": "High", "Tags": ["AWS"]}), select({"Severity": "Low"})
(True, False)
>>> select({"Severity": "Critical", "Tags": ["deprecated", "AWS"]})
False
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowwarden.errors import UsageError

# The analysis YAML keys Panther's schemas define for rules, policies and helpers.
FILTER_KEYS = frozenset({
    "AnalysisType", "RuleID", "PolicyID", "GlobalID", "DisplayName", "Enabled", "Severity",
    "LogTypes", "ResourceTypes", "ScheduledQueries", "Tags", "Reports", "Status", "CreateAlert",
    "DedupPeriodMinutes", "Threshold", "Filename", "Description", "Runbook", "Reference",
    "SummaryAttributes", "OutputIds", "BaseDetection", "OnlyUseBaseRiskScore", "Suppressions",
})
TRUE_WORDS, FALSE_WORDS = ("y", "yes", "t", "true", "on", "1"), ("n", "no", "f", "false", "off", "0")


@dataclass(frozen=True)
class Filter:
    key: str
    values: tuple[Any, ...]
    inverted: bool = False

    def holds(self, doc: Mapping[str, Any]) -> bool:
        found = doc.get(self.key, "")
        items = found if isinstance(found, list) else [found]
        hit = bool({_normal(v) for v in items} & {_normal(v) for v in self.values})
        return hit != self.inverted


def parse_filters(items: Sequence[str]) -> list[Filter]:
    """``KEY=A,B`` and ``KEY!=A`` strings as filters; a bad one is a usage error."""
    filters = []
    for item in items:
        key, sep, value = item.partition("=")
        inverted = key.endswith("!")
        key = key.removesuffix("!")
        if not sep or not key or not value:
            raise UsageError(f"--filter takes KEY=VALUE[,VALUE...] or KEY!=VALUE, got {item!r}")
        if key not in FILTER_KEYS:
            raise UsageError(f"--filter: {key} is not a detection attribute (one of "
                             f"{', '.join(sorted(FILTER_KEYS))})")
        values: tuple[Any, ...] = tuple(v for v in value.split(",") if v)
        if key == "Enabled":
            values = (_boolean(value),)
        filters.append(Filter(key, values, inverted))
    return filters


def selector(filters: Sequence[Filter]) -> Callable[[Mapping[str, Any]], bool] | None:
    """A predicate on detection YAML that every filter must satisfy (None: no filters)."""
    if not filters:
        return None
    return lambda doc: all(f.holds(doc) for f in filters)


def _normal(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    return str(value).lower()


def _boolean(text: str) -> bool:
    if text.lower() in TRUE_WORDS:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    raise UsageError(f"--filter: Enabled takes true or false, got {text!r}")
