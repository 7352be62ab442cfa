"""The reference renderer: the IR compiled to Python closures over a PantherEvent.

Each node kind uses the very Python operation the rule source used (``==``, ``in``, ``or``,
``ipaddress``), so results and exceptions are the rule's own. Reaching a Residual raises
``ResidualReached``: only the real rule can say what happens there.

>>> from flowwarden.logic.ir import Field, IpCheck
>>> from flowwarden.rules.event import PantherEvent
>>> check = compile_condition(IpCheck(Field(("srcAddr",)), "is_global"))
>>> check(PantherEvent({"srcAddr": "8.8.8.8"}))
True
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable
from typing import Any, ClassVar

from flowwarden.errors import RenderError
from flowwarden.logic import ir
from flowwarden.logic.render import Renderer
from flowwarden.rules.event import PantherEvent

Evaluator = Callable[[PantherEvent], Any]
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


class ResidualReached(Exception):
    """Evaluation reached a Residual: the real rule must decide this event."""

    def __init__(self, node: ir.Residual) -> None:
        super().__init__(node.reason)
        self.node = node


def ip_parse(value: Any, parse: str, strict: bool) -> Any:
    """``ip_network(value, strict=strict)`` or ``ip_address(value)``, raising as they do."""
    if parse == "address":
        return ipaddress.ip_address(value)
    return ipaddress.ip_network(value, strict=strict)


def in_cidrs(value: Any, networks: tuple[str, ...], strict: bool) -> bool:
    """``any(ip_address(value) in ip_network(n, strict=strict) for n in networks)``, in order."""
    for network in networks:
        if ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=strict):
            return True
    return False


class PythonRenderer(Renderer):
    """Compiles each node to a closure ``event -> value``."""

    NAME: ClassVar[str] = "python"
    SUFFIX: ClassVar[str] = "py"

    def udm_py(self, node: ir.Udm) -> Evaluator:
        name = node.name
        return lambda event: event.udm(name)

    def field_py(self, node: ir.Field) -> Evaluator:
        keys = node.keys
        if node.exact:  # a data-model path: exact names, as ``DataModel.resolve`` reads it
            return lambda event: event.udm_value(keys)
        return lambda event: event.deep_get(*keys)

    def const_py(self, node: ir.Const) -> Evaluator:
        value = node.value
        return lambda event: value

    def compare_py(self, node: ir.Compare) -> Evaluator:
        op, left, right = OPERATORS[node.op], self.render(node.left), self.render(node.right)
        return lambda event: op(left(event), right(event))

    def inset_py(self, node: ir.InSet) -> Evaluator:
        operand = self.render(node.operand)
        if node.hashed:
            values = frozenset(node.values)
            return lambda event: operand(event) in values
        items = tuple(node.values)
        return lambda event: operand(event) in items

    def isnull_py(self, node: ir.IsNull) -> Evaluator:
        operand = self.render(node.operand)
        return lambda event: operand(event) is None

    def truthy_py(self, node: ir.Truthy) -> Evaluator:
        operand = self.render(node.operand)
        return lambda event: bool(operand(event))

    def coalesce_py(self, node: ir.Coalesce) -> Evaluator:
        operand, default = self.render(node.operand), self.render(node.default)
        return lambda event: operand(event) or default(event)

    def default_py(self, node: ir.Default) -> Evaluator:
        operand, default = self.render(node.operand), node.default.value

        def or_default(event: PantherEvent) -> Any:
            value = operand(event)
            return default if value is None else value

        return or_default

    def get_py(self, node: ir.Get) -> Evaluator:
        (key, *rest), default = node.operand.keys, node.default.value
        if rest:
            raise RenderError("event.get() reads one key", node.span.location() if node.span else None)
        return lambda event: event.get(key, default)

    def contains_py(self, node: ir.Contains) -> Evaluator:
        item, container = self.render(node.item), self.render(node.container)
        return lambda event: item(event) in container(event)

    def strtest_py(self, node: ir.StrTest) -> Evaluator:
        operand, method, affixes = self.render(node.operand), node.method, node.affixes
        return lambda event: getattr(operand(event), method)(affixes)

    def strcase_py(self, node: ir.StrCase) -> Evaluator:
        operand, method = self.render(node.operand), node.method
        return lambda event: getattr(operand(event), method)()

    def ipcheck_py(self, node: ir.IpCheck) -> Evaluator:
        operand, attr, parse, strict = self.render(node.operand), node.attr, node.parse, node.strict
        return lambda event: getattr(ip_parse(operand(event), parse, strict), attr)

    def ipincidrs_py(self, node: ir.IpInCidrs) -> Evaluator:
        operand, networks, strict = self.render(node.operand), node.networks, node.strict
        return lambda event: in_cidrs(operand(event), networks, strict)

    def and_py(self, node: ir.And) -> Evaluator:
        parts = tuple(self.render(n) for n in node.operands)

        def conjunction(event: PantherEvent) -> bool:
            return all(part(event) for part in parts)

        return conjunction

    def or_py(self, node: ir.Or) -> Evaluator:
        parts = tuple(self.render(n) for n in node.operands)

        def disjunction(event: PantherEvent) -> bool:
            return any(part(event) for part in parts)

        return disjunction

    def not_py(self, node: ir.Not) -> Evaluator:
        operand = self.render(node.operand)
        return lambda event: not operand(event)

    # -- values -------------------------------------------------------------------------------
    def str_py(self, node: ir.Str) -> Evaluator:
        operand = self.render(node.operand)
        return lambda event: str(operand(event))

    def concat_py(self, node: ir.Concat) -> Evaluator:
        parts = tuple(self.render(n) for n in node.parts)
        return lambda event: "".join([part(event) for part in parts])

    def add_py(self, node: ir.Add) -> Evaluator:
        left, right = self.render(node.left), self.render(node.right)
        return lambda event: left(event) + right(event)

    def inttext_py(self, node: ir.IntText) -> Evaluator:
        operand = self.render(node.operand)
        return lambda event: "%d" % (operand(event),)  # noqa: UP031 - the rule's own operator

    def ifelse_py(self, node: ir.IfElse) -> Evaluator:
        test, then, other = self.render(node.test), self.render(node.then), self.render(node.other)
        return lambda event: then(event) if test(event) else other(event)

    def dictof_py(self, node: ir.DictOf) -> Evaluator:
        items = tuple(zip(node.keys, (self.render(v) for v in node.values), strict=True))

        def build(event: PantherEvent) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, value in items:
                out[key] = value(event)
            return out

        return build

    def listof_py(self, node: ir.ListOf) -> Evaluator:
        items = tuple(self.render(n) for n in node.items)
        return lambda event: [item(event) for item in items]

    def lookup_py(self, node: ir.Lookup) -> Evaluator:
        operand, default, mapping = self.render(node.operand), self.render(node.default), dict(
            node.entries)

        def look_up(event: PantherEvent) -> Any:
            key = operand(event)
            return mapping.get(key, default(event))

        return look_up

    def seq_py(self, node: ir.Seq) -> Evaluator:
        effects, value = tuple(self.render(n) for n in node.effects), self.render(node.value)

        def in_order(event: PantherEvent) -> Any:
            for effect in effects:
                effect(event)
            return value(event)

        return in_order

    def residual_py(self, node: ir.Residual) -> Evaluator:
        def reached(event: PantherEvent) -> Any:
            raise ResidualReached(node)

        return reached


def compile_condition(node: ir.Node) -> Evaluator:
    """A closure evaluating ``node`` on an event with the rule's own Python semantics."""
    return PythonRenderer().render(node)


def evaluate(node: ir.Node, event: PantherEvent) -> Any:
    """Evaluate ``node`` on one event (exceptions and ``ResidualReached`` propagate)."""
    return compile_condition(node)(event)
