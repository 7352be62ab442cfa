"""The explain renderer: a rule's condition IR in the catalog pages' "Detection logic" style.

One method per node kind, dispatched by class name (`<kind>_explain`). On top of the per-node
text, `explain_condition` splits a condition into its top-level conjuncts and derives the pages'
tables from them: exclusions (negated conjuncts), indicators (positive field tests) and the
residual Python the extractor could not express. Unlike the catalog pages this is built from,
IP-class conditions are kept: `not is_global(source_ip or "0.0.0.0/32")`.

>>> from flowwarden.logic.ir import And, Coalesce, Const, IpCheck, IsNull, Not, Udm
>>> condition = And((Not(IpCheck(Coalesce(Udm("source_ip"), Const("0.0.0.0/32")), "is_global")),
...                  Not(IsNull(Udm("destination_ip")))))
>>> for c in explain_condition(condition).conditions:
...     print(c.text)
not is_global(source_ip or "0.0.0.0/32")
destination_ip is_not_null
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from flowwarden.logic import ir
from flowwarden.logic.extract import extract_source
from flowwarden.logic.extract import status as status  # the pages show it beside as_written
from flowwarden.logic.render import Renderer
from flowwarden.logic.render.text import to_text
from flowwarden.rules.rule import Rule

OP_NAMES = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
TRUTHY_NOTE = '(truthy: not 0, "")'


def spec_literal(value: object) -> str:
    """A value with its type visible, as Python's repr shows it: strings quoted (`53` the
    number and `"53"` the string test different things), numbers bare, None as null.

    >>> spec_literal(53), spec_literal("53"), spec_literal(0.5), spec_literal(None)
    ('53', '"53"', '0.5', 'null')
    >>> spec_literal(True)
    'true'
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def values_literal(values: Sequence[ir.Scalar]) -> str:
    """Table values, typed like conditions: `53, 5353` or `"1.1.1.1", "8.8.8.8"`."""
    return ", ".join(spec_literal(v) for v in values)


def ordered(values: frozenset[int | str]) -> list[int | str]:
    """Set members in the condition's order: numbers numerically, then strings."""
    return sorted(values, key=lambda v: (isinstance(v, str), v))


class ExplainRenderer(Renderer):
    """Renders one node as readable text close to the catalog pages' condition lines."""

    NAME: ClassVar[str] = "explain"
    SUFFIX: ClassVar[str] = "explain"

    def udm_explain(self, node: ir.Udm) -> str:
        return node.name

    def field_explain(self, node: ir.Field) -> str:
        return ".".join(node.keys)

    def const_explain(self, node: ir.Const) -> str:
        return spec_literal(node.value)

    def compare_explain(self, node: ir.Compare) -> str:
        return f"{self.operand(node.left)} {OP_NAMES[node.op]} {self.operand(node.right)}"

    def inset_explain(self, node: ir.InSet, negated: bool = False) -> str:
        values = ", ".join(spec_literal(v) for v in ordered(node.values))
        return f"{self.operand(node.operand)} {'not in' if negated else 'in'} [{values}]"

    def isnull_explain(self, node: ir.IsNull) -> str:
        return f"{self.operand(node.operand)} is_null"

    def truthy_explain(self, node: ir.Truthy) -> str:
        return f"{self.operand(node.operand)} is_not_null {TRUTHY_NOTE}"

    def coalesce_explain(self, node: ir.Coalesce) -> str:
        return f"{self.render(node.operand)} or {self.render(node.default)}"

    def default_explain(self, node: ir.Default) -> str:
        return f"{self.render(node.operand)} (default {self.render(node.default)})"

    def get_explain(self, node: ir.Get) -> str:
        return f"{self.render(node.operand)} (default {self.render(node.default)} if absent)"

    def contains_explain(self, node: ir.Contains, negated: bool = False) -> str:
        word = "not in" if negated else "in"
        return f"{self.operand(node.item)} {word} {self.operand(node.container)}"

    def strtest_explain(self, node: ir.StrTest) -> str:
        affixes = ", ".join(spec_literal(a) for a in node.affixes)
        listed = affixes if len(node.affixes) == 1 else f"[{affixes}]"
        return f"{self.operand(node.operand)} {node.method} {listed}"

    def strcase_explain(self, node: ir.StrCase) -> str:
        return f"{node.method}({self.render(node.operand)})"

    def ipcheck_explain(self, node: ir.IpCheck) -> str:
        inner = self.render(node.operand)
        if node.parse == "address":
            inner = f"ip_address({inner})"
        elif not node.strict:
            inner = f"ip_network({inner}, strict=false)"
        return f"{node.attr}({inner})"

    def ipincidrs_explain(self, node: ir.IpInCidrs, negated: bool = False) -> str:
        networks = ", ".join(spec_literal(n) for n in node.networks)
        return f"{self.operand(node.operand)} {'not_in_cidr' if negated else 'in_cidr'} [{networks}]"

    def and_explain(self, node: ir.And) -> str:
        return " and ".join(self.grouped(n) for n in node.operands)

    def or_explain(self, node: ir.Or) -> str:
        return " or ".join(self.grouped(n) for n in node.operands)

    def not_explain(self, node: ir.Not) -> str:
        inner = node.operand
        if isinstance(inner, ir.InSet):
            return self.inset_explain(inner, negated=True)
        if isinstance(inner, ir.IsNull):
            return f"{self.operand(inner.operand)} is_not_null"
        if isinstance(inner, ir.Truthy):
            return f'{self.operand(inner.operand)} is_null_or_falsy (null, 0 or "")'
        if isinstance(inner, ir.IpInCidrs):
            return self.ipincidrs_explain(inner, negated=True)
        if isinstance(inner, ir.Contains):
            return self.contains_explain(inner, negated=True)
        if isinstance(inner, ir.IpCheck | ir.Not):
            return f"not {self.render(inner)}"
        return f"not ({self.render(inner)})"

    # Value nodes (alert functions) read as their compact text form.
    def _as_text(self, node: ir.Node) -> str:
        return to_text(node)

    str_explain = concat_explain = add_explain = inttext_explain = _as_text
    ifelse_explain = dictof_explain = listof_explain = lookup_explain = _as_text

    def seq_explain(self, node: ir.Seq) -> str:
        if not ir.is_boolean(node.value):
            return to_text(node)
        # Values computed earlier that may raise: the rule errs on such events, whatever follows.
        first = ", ".join(self.operand(e) for e in node.effects)
        return f"{self.render(node.value)} (after evaluating {first})"

    def residual_explain(self, node: ir.Residual) -> str:
        lines = [line.strip() for line in node.source.strip().splitlines() if line.strip()]
        if len(lines) <= 1:
            return f"python: {' '.join(lines)}"
        return f"python: {lines[0]} ... ({len(lines)} lines, shown under Residual Python)"

    def operand(self, node: ir.Node) -> str:
        """A value inside a comparison: a coalesce or default gets parentheses, Python the
        extractor left alone angle brackets (the comparison around it is still the rule's)."""
        text = self.render(node)
        if isinstance(node, ir.Residual):
            return f"<{text}>"
        return f"({text})" if isinstance(node, ir.Coalesce | ir.Default | ir.Get) else text

    def grouped(self, node: ir.Node) -> str:
        """An operand of and/or: nested and/or get parentheses."""
        text = self.render(node)
        return f"({text})" if isinstance(node, ir.And | ir.Or) else text


@dataclass(frozen=True)
class Condition:
    """One top-level conjunct: its text, role and the comment that explains it in the source."""

    text: str
    role: str  # "exclusion", "indicator" or "condition"
    reason: str | None = None
    line: int | None = None
    constants: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldTest:
    """A row of the exclusions or indicators table: a field, an operator kind and its values."""

    field: str
    kind: str
    values: tuple[ir.Scalar, ...] = ()  # typed: the JSON output keeps 53 and "53" apart
    note: str | None = None

    def key(self) -> tuple[str, str, frozenset[ir.Scalar]]:
        """What the corpus count compares: field, kind and the set of values."""
        return (self.field, self.kind, frozenset(self.values))


@dataclass(frozen=True)
class ResidualCode:
    """Python the extractor left as code, with why and where."""

    source: str
    reason: str
    line: int | None = None


@dataclass(frozen=True)
class LogicExplanation:
    """A condition as the explain page shows it."""

    conditions: tuple[Condition, ...] = ()
    exclusions: tuple[FieldTest, ...] = ()
    indicators: tuple[FieldTest, ...] = ()
    residuals: tuple[ResidualCode, ...] = ()


def as_written(rule: Rule) -> ir.Node:
    """The rule's condition kept close to its source, for people to read.

    The extractor's `simplify` merges `x != 53 and x != 5353` into `x in {53, 5353}`, which is
    right for backends but hides how the rule was written (and what the catalog pages list as
    exclusions); here it simplifies without merging: nested and/or flattened, `true` conjuncts
    dropped, `not not x` and `not (x != y)` folded, and De Morgan applied where every operand
    is negated, so a guard like `if not a or not b: return False` reads as two conditions.
    """
    namespace = vars(rule.module) if rule.module is not None else None
    return extract_source(rule.source, namespace, rule.source_path, merge=False)


def conjuncts(node: ir.Node) -> tuple[ir.Node, ...]:
    """The top-level conjuncts: nested ands flattened, a constant true dropped."""
    if isinstance(node, ir.And):
        return tuple(c for operand in node.operands for c in conjuncts(operand))
    return () if node == ir.TRUE else (node,)


def explain_condition(node: ir.Node,
                      comments: Mapping[int, str] | None = None) -> LogicExplanation:
    """Conditions, exclusions, indicators and residual code of a rule's condition IR.

    `comments` maps source lines to the comment explaining the statement on that line (see
    `flowwarden.pages.comments`); it becomes the reason of the conjunct that starts there.
    """
    renderer = ExplainRenderer()
    comments = comments or {}
    conditions, exclusions, indicators = [], [], []
    for conjunct in conjuncts(node):
        line = _line(conjunct)
        if isinstance(conjunct, ir.Not) and not isinstance(conjunct.operand, ir.IsNull):
            rows = field_tests(conjunct.operand)
            exclusions.extend(rows)
            role = "exclusion" if rows else "condition"
        else:
            rows = field_tests(conjunct)
            indicators.extend(rows)
            role = "indicator" if rows else "condition"
        conditions.append(Condition(renderer.render(conjunct), role,
                                    comments.get(line) if line else None, line,
                                    _constants(conjunct)))
    residuals = tuple(ResidualCode(r.source, r.reason, _line(r)) for r in ir.residuals(node))
    return LogicExplanation(tuple(conditions), tuple(exclusions), tuple(indicators), residuals)


def field_tests(node: ir.Node) -> list[FieldTest]:
    """Table rows for one (un-negated) predicate; an and/or contributes one row per operand."""
    if isinstance(node, ir.And | ir.Or):
        return [row for operand in node.operands for row in field_tests(operand)]
    row = _field_test(node)
    return [row] if row else []


def _field_test(node: ir.Node) -> FieldTest | None:
    renderer = ExplainRenderer()
    if isinstance(node, ir.Not) and isinstance(node.operand, ir.IsNull):
        name = _field_name(node.operand.operand)
        return FieldTest(name, "is_not_null", (), "no value, null check") if name else None
    if isinstance(node, ir.Not) and isinstance(node.operand, ir.InSet):
        inner = _field_test(node.operand)
        return FieldTest(inner.field, "not_in", inner.values) if inner else None
    if isinstance(node, ir.Compare):
        return _compare_test(node)
    name = _field_name(getattr(node, "operand", None))
    if name is None:
        return None
    if isinstance(node, ir.InSet):
        return FieldTest(name, "in", tuple(ordered(node.values)))
    if isinstance(node, ir.IsNull):
        return FieldTest(name, "is_null", (), "null check")
    if isinstance(node, ir.Truthy):
        return FieldTest(name, "is_not_null", (), 'null check; truthiness: 0 and "" fail too')
    if isinstance(node, ir.IpInCidrs):
        return FieldTest(name, "in_cidr", node.networks)
    if isinstance(node, ir.IpCheck):
        default = node.operand.default if isinstance(node.operand, ir.Coalesce) else None
        note = "IP class"
        if isinstance(default, ir.Const):
            note += f"; a missing value counts as {renderer.render(default)}"
        return FieldTest(name, node.attr, (), note)
    return None


def _compare_test(node: ir.Compare) -> FieldTest | None:
    left, right, op = node.left, node.right, node.op
    if isinstance(left, ir.Const) and _field_name(right):
        left, right, op = right, left, MIRRORED[op]
    name = _field_name(left)
    if name is None or not isinstance(right, ir.Const):
        return None
    if right.value is None and op in ("==", "!="):
        kind = "is_null" if op == "==" else "is_not_null"
        return FieldTest(name, kind, (), "null check")
    return FieldTest(name, OP_NAMES[op], (right.value,))


def _field_name(node: ir.Node | None) -> str | None:
    """The field a predicate tests: through a constant default (`x or "0.0.0.0/32"` tests x);
    a fallback field is part of the name (`packet_source_ip or source_ip`)."""
    if isinstance(node, ir.Coalesce):
        first, fallback = _field_name(node.operand), _field_name(node.default)
        if first and fallback:
            return f"{first} or {fallback}"
        return first if isinstance(node.default, ir.Const) else None
    if isinstance(node, ir.Default):
        return _field_name(node.operand)
    if isinstance(node, ir.Get):
        return _field_name(node.operand)
    if isinstance(node, ir.Udm):
        return node.name
    if isinstance(node, ir.Field):
        return ".".join(node.keys)
    return None


def _line(node: ir.Node) -> int | None:
    span = getattr(node, "span", None)
    if span is not None:
        return span.line
    for child in node.children():
        line = _line(child)
        if line is not None:
            return line
    return None


def _constants(node: ir.Node) -> tuple[str, ...]:
    names = [getattr(n, "name", None) for n in ir.walk(node)
             if isinstance(n, ir.InSet | ir.IpInCidrs | ir.Const)]
    return tuple(dict.fromkeys(n for n in names if n))
