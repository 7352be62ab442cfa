"""Running the `Tests:` of each rule, with `Mocks:` patched for the duration of one test."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule, RuleTest


@dataclass(frozen=True)
class TestOutcome:
    """One test's verdict; `reason` explains a failure."""

    rule_id: str
    name: str
    passed: bool
    reason: str = ""


@dataclass
class TestReport:
    outcomes: list[TestOutcome] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.passed

    def by_rule(self) -> dict[str, list[TestOutcome]]:
        grouped: dict[str, list[TestOutcome]] = {}
        for outcome in self.outcomes:
            grouped.setdefault(outcome.rule_id, []).append(outcome)
        return grouped


def run_tests(pack: Pack, rule_ids: Sequence[str] = ()) -> TestReport:
    """Run every test of every loaded rule (or of `rule_ids`), enabled or not."""
    report = TestReport()
    for rule in pack.rules:
        if rule_ids and rule.id not in rule_ids:
            continue
        for test in rule.tests:
            report.outcomes.append(run_test(pack, rule, test))
    return report


def run_test(pack: Pack, rule: Rule, test: RuleTest) -> TestOutcome:
    with _mocked(rule, test.mocks):
        result = rule.evaluate(pack.event(test.log))
    if result.rule_error:
        return TestOutcome(rule.id, test.name, False, f"rule() raised {result.rule_error}")
    if result.matched != test.expected:
        return TestOutcome(
            rule.id, test.name, False, f"expected {test.expected}, got {result.matched}"
        )
    aux_errors = {k: v for k, v in result.errors.items() if k != "rule"}
    if aux_errors:
        detail = "; ".join(f"{name}() raised {err}" for name, err in aux_errors.items())
        return TestOutcome(rule.id, test.name, False, detail)
    return TestOutcome(rule.id, test.name, True)


@contextmanager
def _mocked(rule: Rule, mocks: Sequence[tuple[str, Any]]) -> Iterator[None]:
    if not mocks:
        yield
        return
    replacements = {}
    for name, value in mocks:
        current = getattr(rule.module, name, None)
        replacements[name] = mock.MagicMock(return_value=value) if callable(current) else value
    with mock.patch.multiple(rule.module, create=True, **replacements):
        yield
