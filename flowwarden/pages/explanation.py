"""Everything `flowwarden explain` says about one rule, gathered from the pack.

The detection logic comes from the condition IR (`flowwarden.logic.explain`); output fields are
found by running the rule's own alert functions on its test events, one log type at a time, so
they are the keys `alert_context` really returns rather than a guess.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowwarden.alerts.model import mitre_entries
from flowwarden.errors import FlowwardenError, UsageError
from flowwarden.logic import ir
from flowwarden.logic.explain import (
    FieldTest,
    LogicExplanation,
    as_written,
    explain_condition,
)
from flowwarden.logic.explain import status as extraction_status
from flowwarden.pages.comments import statement_comments
from flowwarden.pages.lookup_reads import (
    TableRead,
    loaded_tables,
    tables_read,
    with_condition_reads,
)
from flowwarden.pages.schemas import (
    AttributeCheck,
    check_summary_attributes,
    data_model_column,
)
from flowwarden.rules.datamodel import DataModel
from flowwarden.rules.event import PantherEvent
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule
from flowwarden.rules.testing import _mocked


@dataclass(frozen=True)
class OutputField:
    """One key of `alert_context` for one log type, and the column it is read from."""

    name: str
    column: str | None
    example: Any = None


@dataclass(frozen=True)
class OutputFields:
    """The output fields of one log type and how they were found."""

    log_type: str
    fields: tuple[OutputField, ...]
    found_by: str  # "matching tests", "non-matching tests", "no tests", "no alert_context"


@dataclass(frozen=True)
class Indicator:
    """An indicator row with its corpus count (other loaded rules testing the same thing)."""

    test: FieldTest
    corpus: int


@dataclass(frozen=True)
class Explanation:
    """One rule, explained."""

    rule: Rule
    mitre: tuple[dict[str, str], ...]
    status: str  # extraction: full, partial, none
    logic: LogicExplanation
    indicators: tuple[Indicator, ...]
    output_fields: tuple[OutputFields, ...]
    summary_checks: tuple[AttributeCheck, ...]
    settings: dict[str, str] = field(default_factory=dict)
    extraction_error: str | None = None
    enabled_note: str | None = None  # why the configuration overrides the YAML's Enabled
    lookup_tables: tuple[TableRead, ...] = ()  # the lookup tables its code and helpers read


def explain_rule(pack: Pack, rule_id: str) -> Explanation:
    """The explanation of one loaded rule; an unknown id is a UsageError naming the known ones."""
    try:
        rule = pack.rule(rule_id)
    except KeyError:
        known = ", ".join(sorted(r.id for r in pack.rules)) or "none"
        raise UsageError(f"no rule with id {rule_id!r} is loaded (loaded: {known})"
                         + pack.replaced_note([rule_id])) from None
    return _explain(pack, rule, {r.id: _logic(r) for r in pack.rules})


def explain_all(pack: Pack) -> dict[str, Explanation]:
    """Explanations of every loaded rule (corpus counts need every rule's logic at once)."""
    logic = {r.id: _logic(r) for r in pack.rules}
    return {rule.id: _explain(pack, rule, logic) for rule in pack.rules}


Logic = tuple[str, LogicExplanation, str | None]


def _explain(pack: Pack, rule: Rule, logic: Mapping[str, Logic]) -> Explanation:
    found, result, error = logic[rule.id]
    others = [{t.key() for t in found[1].indicators} for rid, found in logic.items()
              if rid != rule.id]
    indicators = tuple(Indicator(t, sum(t.key() in keys for keys in others))
                       for t in result.indicators)
    return Explanation(
        rule=rule,
        mitre=tuple(mitre_entries(rule.mitre)),
        status=found,
        logic=result,
        indicators=indicators,
        output_fields=tuple(output_fields(pack, rule, lt) for lt in rule.log_types),
        summary_checks=check_summary_attributes(rule, pack.data_models),
        settings=configured_constants(rule.source),
        extraction_error=error,
        enabled_note=pack.config.enabled_note(rule.id, rule.enabled),
        lookup_tables=_tables(pack, rule, result),
    )


def _tables(pack: Pack, rule: Rule, logic: LogicExplanation) -> tuple[TableRead, ...]:
    """The lookup tables the rule reads: named in its code and helpers, or in its extracted
    condition (a table name from the configuration)."""
    loaded = loaded_tables((spec.name for spec in pack.lookup_tables), pack.config.lookup_tables)
    return with_condition_reads(tables_read(rule.source, loaded),
                                (t.field for t in (*logic.indicators, *logic.exclusions)), loaded)


def lookup_table_rows(exp: Explanation) -> list[list[str]]:
    """The tables a rule reads, one row each: the table (or name pattern), what reads it, and
    the pack's tables it names ("(none loaded)" when none)."""
    return [[t.table, "the rule" if t.via == "rule" else f"helper {t.via}",
             ", ".join(t.loaded) or "(none loaded)"] for t in exp.lookup_tables]


LOOKUP_TABLE_HEADERS = ["Table", "Read by", "Loaded tables"]


def _logic(rule: Rule) -> Logic:
    try:
        condition = as_written(rule)
    except FlowwardenError as exc:
        residual = ir.Residual(rule.source, str(exc))
        return "none", explain_condition(residual), str(exc)
    comments = statement_comments(rule.source)
    return extraction_status(condition), explain_condition(condition, comments), None


def output_table(exp: Explanation) -> tuple[list[str], list[list[str]]]:
    """Output fields as one table: a row per field, a column per log type naming the column it
    is read from ("-" where that log type's context lacks the field; a column only where the
    alert functions read it through the data model), then an example value."""
    headers = ["Field", *(f"{g.log_type} column" for g in exp.output_fields), "Example"]
    names = list(dict.fromkeys(f.name for g in exp.output_fields for f in g.fields))
    by_type = [{f.name: f for f in g.fields} for g in exp.output_fields]
    rows = []
    for name in names:
        found = [fields.get(name) for fields in by_type]
        columns = [(f.column or "(not read through the data model)") if f else "-" for f in found]
        example = next((f.example for f in found if f and f.example is not None), None)
        rows.append([name, *columns, "null" if example is None else str(example)])
    return headers, rows


def output_sources(exp: Explanation) -> str:
    """How each log type's output fields were found, in one line."""
    return "; ".join(f"{g.log_type}: {g.found_by}" for g in exp.output_fields)


def output_fields(pack: Pack, rule: Rule, log_type: str) -> OutputFields:
    """The `alert_context` keys for `log_type`, from the rule's test events of that type.

    Matching tests are used when there are any; otherwise the alert functions run on the
    non-matching test events, as if they had matched.
    """
    if rule.function("alert_context") is None:
        return OutputFields(log_type, (), "no alert_context")
    tests = [t for t in rule.tests if _log_type(t.log, rule) == log_type]
    contexts = _contexts(pack, rule, tests, matched_only=True)
    found_by = "matching tests"
    if not contexts:
        contexts = _contexts(pack, rule, tests, matched_only=False)
        found_by = "non-matching tests" if contexts else "no tests"
    fields: dict[str, OutputField] = {}
    for context, read in contexts:
        for name, value in context.items():
            current = fields.get(name)
            if current is None or (current.example is None and value is not None):
                fields[name] = OutputField(name, _column(name, read, log_type, pack), value)
    return OutputFields(log_type, tuple(fields.values()), found_by)


def _column(name: str, read: frozenset[str], log_type: str, pack: Pack) -> str | None:
    """The data-model mapping behind an output field, only when the alert functions read the
    field through `event.udm(name)`: a key merely named like a data-model field (Okta's
    `event_type`, filled from `event.get("eventType")`) is not attributed to its mapping."""
    return data_model_column(name, log_type, pack.data_models) if name in read else None


def _log_type(log: Mapping[str, Any], rule: Rule) -> str | None:
    value = log.get("p_log_type")
    if value is None and len(rule.log_types) == 1:
        return rule.log_types[0]
    return str(value) if value is not None else None


class UdmRecordingEvent(PantherEvent):
    """An event that remembers which data-model names were read through `udm()`.

    >>> event = UdmRecordingEvent({"a": 1})
    >>> event.udm("source_ip"), sorted(event.udm_names)
    (None, ['source_ip'])
    """

    __slots__ = ("udm_names",)

    def __init__(self, data: Mapping[str, Any], data_model: DataModel | None = None) -> None:
        super().__init__(data, data_model)
        self.udm_names: set[str] = set()

    def udm(self, *key: str, default: Any = None) -> Any:
        if len(key) == 1:
            self.udm_names.add(key[0])
        return super().udm(*key, default=default)


def _contexts(pack: Pack, rule: Rule, tests: Sequence[Any],
              matched_only: bool) -> list[tuple[dict[str, Any], frozenset[str]]]:
    """Each test's alert context with the data-model names read while computing it."""
    contexts = []
    for test in tests:
        with _mocked(rule, test.mocks):
            plain = pack.event(test.log)
            event = UdmRecordingEvent(plain, plain.data_model)
            result = rule.evaluate(event) if matched_only else rule.evaluate_match(event)
        if (result.matched or not matched_only) and result.alert_context is not None:
            contexts.append((result.alert_context, frozenset(event.udm_names)))
    return contexts


def configured_constants(source: str) -> dict[str, str]:
    """Module constants assigned from a flowwarden.yaml setting: `NAME = setting("key")`.

    >>> configured_constants('PORTS = setting("allowed_inbound_ports")')
    {'PORTS': 'allowed_inbound_ports'}
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found = {}
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)):
            continue
        call = stmt.value
        if (isinstance(call.func, ast.Name) and call.func.id == "setting" and call.args
                and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = call.args[0].value
    return found
