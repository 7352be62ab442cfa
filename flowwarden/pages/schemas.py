"""The columns of each log type, as the readers in `flowwarden.logs` declare them.

`SummaryAttributes` and output fields are checked against these: a rule written for Panther's
lower-case `srcaddr` names a column the camelCase AWS.VPCFlow schema does not have. A summary
attribute names an event field; a rule of several log types may name a field only some of them
have (Panther shows it for those events), so an attribute is a problem only when it is a column
of none of the rule's log types. `flowwarden check`, `explain` and the catalog all use
`check_summary_attributes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import pyarrow as pa

from flowwarden.logs import fields as vpcflow
from flowwarden.logs.common import STANDARD_FIELDS
from flowwarden.logs.formats import ocsf
from flowwarden.rules.datamodel import DataModel
from flowwarden.rules.rule import Rule

SCHEMAS: dict[str, pa.Schema] = {vpcflow.LOG_TYPE: vpcflow.schema(), ocsf.LOG_TYPE: ocsf.schema()}
STANDARD_COLUMNS: tuple[str, ...] = tuple(f.name for f in STANDARD_FIELDS)


def columns(log_type: str) -> tuple[str, ...] | None:
    """Every column path of a log type (nested struct fields as `a.b`), None when unknown.

    >>> columns("AWS.VPCFlow")[:4]
    ('version', 'account', 'interfaceId', 'srcAddr')
    >>> "dst_endpoint.ip" in columns("OCSF.NetworkActivity")
    True
    """
    schema = SCHEMAS.get(log_type)
    if schema is None:
        return None
    paths: list[str] = []
    for schema_field in schema:
        paths.extend(_paths(schema_field.name, schema_field.type))
    return tuple(paths)


def _paths(prefix: str, type_: pa.DataType) -> list[str]:
    if pa.types.is_struct(type_):
        found = [prefix]
        for index in range(type_.num_fields):
            child = type_.field(index)
            found.extend(_paths(f"{prefix}.{child.name}", child.type))
        return found
    return [prefix]


@dataclass(frozen=True)
class AttributeCheck:
    """Whether one summary attribute names a column of one log type, and a suggestion if not."""

    attribute: str
    log_type: str
    found: bool | None
    suggestion: str | None = None
    found_in: tuple[str, ...] = ()  # the rule's other log types that have the column
    unknown_in: tuple[str, ...] = ()  # the rule's other log types without a known schema

    @property
    def problem(self) -> bool:
        """A column of none of the rule's log types: the attribute shows nothing, ever."""
        return self.found is False and not self.found_in and not self.unknown_in

    @property
    def message(self) -> str:
        if self.found is None:
            return f"no schema known for {self.log_type}"
        if self.found:
            return "ok"
        if self.found_in:
            return f"ok: {', '.join(self.found_in)} only (not a column of {self.log_type})"
        if self.unknown_in:
            return (f"not a column of {self.log_type}; maybe of {', '.join(self.unknown_in)} "
                    "(no schema known)")
        hint = f"; did you mean {self.suggestion}?" if self.suggestion else ""
        return f"not a column of {self.log_type}{hint}"


def check_attribute(attribute: str, log_type: str,
                    data_models: Mapping[str, DataModel]) -> AttributeCheck:
    """Check `attribute` against `log_type`'s columns (and Panther's `p_` columns), in any case
    of letters, as Panther looks fields up (the spec rules name `srcaddr` for `srcAddr`).

    >>> check_attribute("srcaddr", "AWS.VPCFlow", {}).message
    'ok'
    >>> check_attribute("dst_port", "AWS.VPCFlow", {}).message
    'not a column of AWS.VPCFlow; did you mean dstPort?'
    """
    known = columns(log_type)
    if known is None:
        return AttributeCheck(attribute, log_type, None)
    normalized = attribute.removeprefix("$.").lower()
    if any(normalized == name.lower() for name in (*known, *STANDARD_COLUMNS)):
        return AttributeCheck(attribute, log_type, True)
    return AttributeCheck(attribute, log_type, False, _suggest(normalized, log_type, data_models))


def check_summary_attributes(rule: Rule,
                             data_models: Mapping[str, DataModel]) -> tuple[AttributeCheck, ...]:
    """Each of the rule's summary attributes against each of its log types.

    >>> rule = Rule("R", "r.yml", "r.py", ("AWS.VPCFlow", "OCSF.NetworkActivity"), "Low", True,
    ...             summary_attributes=("srcAddr", "dst_port"))
    >>> [(c.log_type, c.problem) for c in check_summary_attributes(rule, {})]
    [('AWS.VPCFlow', False), ('OCSF.NetworkActivity', False), ('AWS.VPCFlow', True), ('OCSF.NetworkActivity', True)]
    """
    checks: list[AttributeCheck] = []
    for attribute in rule.summary_attributes:
        per_type = [check_attribute(attribute, lt, data_models) for lt in rule.log_types]
        found = tuple(c.log_type for c in per_type if c.found)
        unknown = tuple(c.log_type for c in per_type if c.found is None)
        checks.extend(replace(c, found_in=found, unknown_in=unknown) if c.found is False else c
                      for c in per_type)
    return tuple(checks)


def summary_attribute_problems(rule: Rule, data_models: Mapping[str, DataModel]) -> list[str]:
    """One message per summary attribute that is a column of none of the rule's log types
    (with a suggestion where one is found), as `flowwarden check` reports them.

    >>> rule = Rule("R", "r.yml", "r.py", ("AWS.VPCFlow",), "Low", True,
    ...             summary_attributes=("srcaddr", "dst_port"))
    >>> summary_attribute_problems(rule, {})
    ['R: SummaryAttributes dst_port: not a column of AWS.VPCFlow; did you mean dstPort?']
    """
    checks = check_summary_attributes(rule, data_models)
    problems: list[str] = []
    for attribute in dict.fromkeys(rule.summary_attributes):
        bad = [c.message for c in checks if c.attribute == attribute and c.problem]
        if bad:
            problems.append(f"{rule.id}: SummaryAttributes {attribute}: {'; '.join(bad)}")
    return problems


def _suggest(attribute: str, log_type: str, data_models: Mapping[str, DataModel]) -> str | None:
    """The same column in another case, or, through the data models, this log type's column."""
    lowered = attribute.lower().replace("_", "").replace("-", "")
    for other in SCHEMAS:
        for column in columns(other) or ():
            if column.lower().replace("_", "").replace("-", "") != lowered:
                continue
            if other == log_type:
                return column
            translated = _translate(column, other, log_type, data_models)
            if translated:
                return translated
    return None


def _translate(column: str, from_type: str, to_type: str,
               data_models: Mapping[str, DataModel]) -> str | None:
    source, target = data_models.get(from_type), data_models.get(to_type)
    if source is None or target is None:
        return None
    for name, mapping in source.mappings.items():
        if mapping.path and mapping.path.removeprefix("$.") == column:
            other = target.mappings.get(name)
            if other is not None and other.path:
                return f"{other.path.removeprefix('$.')} (data-model field {name})"
            if other is not None and other.method:
                return f"data-model field {name} (method {other.method}())"
    return None


def data_model_column(name: str, log_type: str, data_models: Mapping[str, DataModel]) -> str | None:
    """Where a data-model name comes from in a log type: a column path or `method()`."""
    model = data_models.get(log_type)
    mapping = model.mappings.get(name) if model else None
    if mapping is None:
        return None
    if mapping.path:
        return mapping.path.removeprefix("$.")
    return f"{mapping.method}()"
