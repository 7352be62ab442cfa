"""A loaded rule and its evaluation with Panther's semantics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from flowwarden.rules.event import PantherEvent
from flowwarden.rules.immutable import thaw

SEVERITIES = ("Info", "Low", "Medium", "High", "Critical")
MAX_TITLE = 1000
MAX_DEDUP = 1000
# The order Panther runs them in is ``Rule.alert_fields``'s, not this one's.
ALERT_FUNCTIONS = (
    "title", "dedup", "severity", "alert_context", "description", "reference", "runbook",
    "destinations", "unique",
)


@dataclass(frozen=True)
class RuleTest:
    """One entry of a rule's `Tests:`."""

    name: str
    expected: bool
    log: dict[str, Any]
    mocks: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Rule:
    """A loaded `AnalysisType: rule`: its YAML metadata and its Python module."""

    id: str
    yaml_path: str
    source_path: str
    log_types: tuple[str, ...]
    severity: str
    enabled: bool
    display_name: str = ""
    description: str = ""
    runbook: str = ""
    reference: str = ""
    tags: tuple[str, ...] = ()
    reports: dict[str, tuple[str, ...]] = field(default_factory=dict)
    summary_attributes: tuple[str, ...] = ()
    dedup_minutes: int = 60
    threshold: int = 1
    tests: tuple[RuleTest, ...] = ()
    replaces: tuple[str, ...] = ()  # rule ids this rule runs instead of (YAML `Replaces:`)
    module: ModuleType | None = field(default=None, compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)

    @property
    def mitre(self) -> tuple[str, ...]:
        return self.reports.get("MITRE ATT&CK", ())

    def function(self, name: str) -> Callable[..., Any] | None:
        fn = getattr(self.module, name, None)
        return fn if callable(fn) else None

    def evaluate(self, event: PantherEvent, keys_only: bool = False) -> RuleResult:
        """Run rule() and, on a match only, the alert-time functions in Panther's order (with
        ``keys_only``, only those that group matches: ``dedup``, ``unique``, and ``title`` when
        the rule has no ``dedup``); exceptions become errors."""
        result = RuleResult(self.id)
        try:
            matched = self.function("rule")(event)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - a rule's failure is its own result
            result.errors["rule"] = describe(exc)
            return result
        if not isinstance(matched, bool):
            result.errors["rule"] = f"rule() returned {type(matched).__name__}, expected bool"
            return result
        result.matched = matched
        if matched and keys_only:
            self.match_keys(event, result)
            result.keys_only = True
        elif matched:
            self.alert_fields(event, result, keys=True)
        return result

    def evaluate_match(self, event: PantherEvent, keys_only: bool = False) -> RuleResult:
        """The result for an event a compiled condition proved to match: alert functions only."""
        result = RuleResult(self.id, matched=True, keys_only=keys_only)
        if keys_only:
            self.match_keys(event, result)
        else:
            self.alert_fields(event, result, keys=True)
        return result

    def match_keys(self, event: PantherEvent, result: RuleResult) -> None:
        """What groups a match into an alert: the dedup string and the ``unique`` value. Run on
        every match."""
        self._dedup(event, result)
        self._unique(event, result)

    def _dedup(self, event: PantherEvent, result: RuleResult) -> None:
        """Panther's dedup string: ``dedup()``'s text where the rule defines it (an empty
        text, None or an error give ``defaultDedupString:<id>``, not the title), else the
        title, else ``defaultDedupString:<id>``."""
        if self.function("dedup") is not None:
            dedup = self._call("dedup", event, result)
            result.dedup = dedup_string(self.id, None if dedup is None else str(dedup), None)
            return
        self._title(event, result)
        result.dedup = dedup_string(self.id, None, result.title)

    def _unique(self, event: PantherEvent, result: RuleResult) -> None:
        unique = self._call("unique", event, result)
        if unique is not None:
            result.unique = str(unique)

    def alert_fields(self, event: PantherEvent, result: RuleResult,
                     keys: bool = False) -> dict[str, str]:
        """The alert's own values: title, description, reference, severity, runbook,
        destinations, context; with ``keys``, the dedup string and ``unique`` too. They run in
        the order Panther runs them (title, description, reference, severity, runbook,
        destinations, dedup, alert_context, unique), which a rule whose functions share state
        can tell. Run once per alert, on its first event (and on every match by ``evaluate``,
        as Panther's test tool does). Returns the errors these functions added."""
        known = set(result.errors)
        self._title(event, result)
        for name in ("description", "reference"):
            self._text(name, event, result)
        result.severity = self._severity(self._call("severity", event, result), result)
        self._text("runbook", event, result)
        destinations = self._call("destinations", event, result)
        if destinations is not None:
            result.destinations = [str(d) for d in destinations]
        if keys:
            self._dedup(event, result)
        result.alert_context = self._context(event, result)
        if keys:
            self._unique(event, result)
        result.keys_only = False
        return {name: error for name, error in result.errors.items() if name not in known}

    def _text(self, name: str, event: PantherEvent, result: RuleResult) -> None:
        value = self._call(name, event, result)
        if value is not None:
            setattr(result, name, str(value))

    def _context(self, event: PantherEvent, result: RuleResult) -> dict[str, Any] | None:
        """``alert_context()`` as a plain dict: Panther takes any mapping (a ``PantherEvent``,
        an immutable dict of the event's) and serializes it."""
        context = self._call("alert_context", event, result)
        if context is None:
            return None
        if not isinstance(context, Mapping):
            result.errors["alert_context"] = (
                f"alert_context() returned {type(context).__name__}, expected a mapping")
            return None
        return thaw(context)

    def alert_values(self, result: RuleResult, values: dict[str, Any]) -> bool:
        """Fill ``result`` as ``alert_fields`` would, from the values of the rule's other alert
        functions computed elsewhere (the compiled ones): per function defined, ``str()`` of
        what it returned or None; ``alert_context`` as JSON values, ``destinations`` as a list
        of str. Returns False, changing nothing, where Python would report an error (an unknown
        severity): the functions must then run in Python."""
        severity = self.severity
        if values.get("severity") is not None:
            level = _level(values["severity"])
            if level is None:
                return False
            severity = level or self.severity
        if result.title is None and "title" in values and "title" not in result.errors:
            title = values["title"]
            result.title = title[:MAX_TITLE] if title is not None else None
        result.severity = severity
        result.alert_context = values.get("alert_context")
        for name in ("description", "reference", "runbook"):
            if values.get(name) is not None:
                setattr(result, name, values[name])
        result.destinations = values.get("destinations")
        result.keys_only = False
        return True

    def _title(self, event: PantherEvent, result: RuleResult) -> None:
        if result.title is None and "title" not in result.errors:
            title = self._call("title", event, result)
            result.title = str(title)[:MAX_TITLE] if title is not None else None

    def _call(self, name: str, event: PantherEvent, result: RuleResult) -> Any:
        """``name(event)``, or None when the rule has no such function or it raised."""
        fn = self.function(name)
        if fn is None:
            return None
        try:
            return fn(event)
        except Exception as exc:  # noqa: BLE001
            result.errors[name] = describe(exc)
            return None

    def _severity(self, dynamic: Any, result: RuleResult) -> str:
        if dynamic is None:
            return self.severity
        level = _level(str(dynamic))
        if level is None:
            result.errors["severity"] = (f"severity() returned {dynamic!r}, expected one of "
                                         f"{SEVERITIES}")
            return self.severity
        return level or self.severity


def _level(text: str) -> str | None:
    """The severity level ``text`` names (any case), "" for DEFAULT, None for neither."""
    if text.upper() == "DEFAULT":
        return ""
    return next((level for level in SEVERITIES if text.upper() == level.upper()), None)


def dedup_string(rule_id: str, dedup: str | None, title: str | None) -> str:
    """What groups a match into an alert: ``dedup``, else ``title``, else
    ``defaultDedupString:<rule id>``. Pass the dedup text of a rule that defines ``dedup()``
    (with no title: Panther never falls back to the title then), or the title of one that does
    not (``str()`` of what the function returned, None for None; the title already cut to
    ``MAX_TITLE``)."""
    if dedup:
        return dedup[:MAX_DEDUP]
    if title:
        return title[:MAX_DEDUP]
    return f"defaultDedupString:{rule_id}"


@dataclass
class RuleResult:
    """What one rule said about one event."""

    rule_id: str
    matched: bool | None = None
    errors: dict[str, str] = field(default_factory=dict)
    title: str | None = None
    dedup: str | None = None
    severity: str | None = None
    alert_context: dict[str, Any] | None = None
    description: str | None = None
    reference: str | None = None
    runbook: str | None = None
    destinations: list[str] | None = None
    unique: str | None = None
    # a match's keys (dedup, unique) only: the alert functions have not run yet
    keys_only: bool = False

    @property
    def rule_error(self) -> str | None:
        return self.errors.get("rule")


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
