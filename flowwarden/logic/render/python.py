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
