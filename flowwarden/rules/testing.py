"""Running the `Tests:` of each rule, with `Mocks:` patched for the duration of one test.

As Panther's test tool does: a policy's test compares ``ExpectedResult`` with what
``policy()`` returned; a scheduled rule's and a policy's tests get no data model; the alert
functions' errors fail a test only where it expects an alert; ``minimum_tests`` fails a rule
with fewer tests (and, above 1, one without both a positive and a negative test).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field, replace
from typing import Any
from unittest import mock

from flowwarden.rules.kinds import detection_output
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule, RuleTest

COVERAGE = "(test coverage)"  # the name of the outcome that --minimum-tests adds


@dataclass(frozen=True)
class TestOutcome:
    """One test's verdict; `reason` explains a failure."""

    rule_id: str
    name: str
    passed: bool
    reason: str = ""
    output: str = ""  # what the rule printed during the test


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


def run_tests(pack: Pack, rule_ids: Sequence[str] = (), minimum_tests: int = 0) -> TestReport:
    """Run every test of every loaded rule (or of `rule_ids`), enabled or not."""
    report = TestReport()
    for rule in pack.rules:
        if rule_ids and rule.id not in rule_ids:
            continue
        for test in rule.tests:
            report.outcomes.append(run_test(pack, rule, test))
        shortfall = coverage_problem(rule, minimum_tests)
        if shortfall:
            report.outcomes.append(TestOutcome(rule.id, COVERAGE, False, shortfall))
    return report


def coverage_problem(rule: Rule, minimum_tests: int) -> str:
    """Why ``rule`` fails ``--minimum-tests``, in Panther's test tool's words; "" if it passes."""
    if len(rule.tests) < minimum_tests:
        return (f"Insufficient test coverage: {minimum_tests} tests required but only "
                f"{len(rule.tests)} found")
    if minimum_tests > 1 and len({t.expected for t in rule.tests}) < 2:
        return "Insufficient test coverage: expected at least one positive and one negative test"
    return ""


def event_for(pack: Pack, rule: Rule, data: dict[str, Any]) -> Any:
    """The event a test's Log (or Resource) becomes for ``rule``."""
    own = getattr(rule, "test_event", None)
    return own(data) if callable(own) else pack.event(data)


def run_test(pack: Pack, rule: Rule, test: RuleTest) -> TestOutcome:
    outcome = _verdict(pack, rule, test, printed := io.StringIO())
    return replace(outcome, output=printed.getvalue()) if printed.getvalue() else outcome


def _verdict(pack: Pack, rule: Rule, test: RuleTest, printed: io.StringIO) -> TestOutcome:
    # What a rule prints belongs to its test, as in Panther's test tool, not amid the report.
    with _mocked(rule, test.mocks), redirect_stdout(printed), redirect_stderr(printed):
        result = rule.evaluate(event_for(pack, rule, test.log))
    matcher = "policy" if rule.function("policy") else "rule"
    if result.rule_error:
        return TestOutcome(rule.id, test.name, False, f"{matcher}() raised {result.rule_error}")
    output = detection_output(rule, bool(result.matched))
    if output != test.expected:
        return TestOutcome(
            rule.id, test.name, False, f"expected {test.expected}, got {output}"
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
    replacements = {name: mock_object(value) for name, value in mocks}
    with mock.patch.multiple(rule.module, create=True, **replacements):
        yield


CONTAINER_METHODS = ("__contains__", "__iter__", "__len__", "__getitem__", "__bool__")


def mock_object(value: Any) -> mock.MagicMock:
    """What a mock's ``objectName`` becomes, function or constant: Panther's test tool makes
    every one a ``MagicMock`` returning ``returnValue`` (rules test ``isinstance(X, MagicMock)``
    and parse ``X()`` as JSON). For a list or mapping value, flowwarden's rules may also use
    the mock as that container (``ip in INTERNAL_NETWORKS``), so those operations act on it."""
    made = mock.MagicMock(return_value=value)
    if isinstance(value, list | dict | set | tuple):
        for name in CONTAINER_METHODS:
            if name == "__bool__" or hasattr(value, name):
                setattr(made, name, _delegate(value, name))
    return made


def _delegate(value: Any, name: str) -> Any:
    # A magic method set on a MagicMock is called with the mock as its first argument.
    if name == "__bool__":
        return lambda _mock: bool(value)
    method = getattr(value, name)
    return lambda _mock, *args: method(*args)
