"""The analysis types besides plain rules that Panther's test tool runs: scheduled rules and
policies. Both are ``Rule``s, so the engine, ``explain`` and the catalog take them as they are.

A scheduled rule has rule()'s interface; it runs on a scheduled query's rows, which no data
model describes (Panther's test tool gives its tests none either).

A policy's ``policy(resource)`` returns True for a compliant resource; False is the finding.
Seen as a rule, its ``rule()`` is the negation, so that a failing policy is a match (an alert)
in a scan, and a test compares ``ExpectedResult`` with what ``policy()`` returned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from flowwarden.rules.event import PantherEvent
from flowwarden.rules.rule import Rule


@dataclass(frozen=True)
class ScheduledRule(Rule):
    """``AnalysisType: scheduled_rule``: ``log_types`` holds its ``ScheduledQueries``."""

    KIND: ClassVar[str] = "scheduled_rule"

    def test_event(self, data: Mapping[str, Any]) -> PantherEvent:
        return PantherEvent(data)


@dataclass(frozen=True)
class Policy(Rule):
    """``AnalysisType: policy``: ``log_types`` holds its ``ResourceTypes``."""

    KIND: ClassVar[str] = "policy"

    def function(self, name: str) -> Callable[..., Any] | None:
        if name == "rule":
            return self._finding if callable(getattr(self.module, "policy", None)) else None
        return super().function(name)

    def _finding(self, resource: Any) -> Any:
        # Looked up on every call, so that a test's Mocks (patched on the module) apply.
        verdict = self.module.policy(resource)  # type: ignore[union-attr]
        return not verdict if isinstance(verdict, bool) else verdict

    def test_event(self, data: Mapping[str, Any]) -> Any:
        # Panther's test tool hands policies the resource as parsed (plain dicts and lists,
        # which policies test with isinstance); a copy, so a test cannot change the next one's.
        return copy.deepcopy(dict(data))


def kind(rule: Rule) -> str:
    """The rule's ``AnalysisType`` as Panther spells it."""
    return str(getattr(rule, "KIND", "rule"))


def detection_output(rule: Rule, matched: bool) -> bool:
    """What the matcher function itself returned, given the match: ``policy()`` is negated."""
    return not matched if isinstance(rule, Policy) else matched
