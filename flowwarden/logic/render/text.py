"""The text renderer: the IR printed as compact function calls (``str(node)``, debugging).

The user-facing explanation, in the catalog pages' style, is ``flowwarden.logic.explain``.

>>> from flowwarden.logic.ir import InSet, Not, Udm
>>> to_text(Not(InSet(Udm("destination_port"), frozenset({80, 443}), name="APPROVED_PORTS")))
'not_in(udm.destination_port, APPROVED_PORTS={80, 443})'
"""

from __future__ import annotations

import json
from typing import ClassVar

from flowwarden.logic import ir
from flowwarden.logic.render import Renderer

OP_NAMES = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
WIDTH = 88


def literal(value: object) -> str:
    """One scalar as text: strings JSON-quoted, None as null, bools lower case."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _sorted(values: frozenset[int | str]) -> list[int | str]:
    return sorted(values, key=lambda v: (isinstance(v, str), v))


class TextRenderer(Renderer):
    """Renders a node as a one-line function-call expression."""

    NAME: ClassVar[str] = "text"
    SUFFIX: ClassVar[str] = "text"

    def udm_text(self, node: ir.Udm) -> str:
        return f"udm.{node.name}"

    def field_text(self, node: ir.Field) -> str:
        return "event" + "".join(
            f".{k}" if k.isidentifier() else f"[{literal(k)}]" for k in node.keys
        )

    def const_text(self, node: ir.Const) -> str:
        return f"{node.name}={literal(node.value)}" if node.name else literal(node.value)

    def compare_text(self, node: ir.Compare) -> str:
        return f"{OP_NAMES[node.op]}({self.render(node.left)}, {self.render(node.right)})"

    def inset_text(self, node: ir.InSet, fn: str = "in") -> str:
        values = "{" + ", ".join(literal(v) for v in _sorted(node.values)) + "}"
        named = f"{node.name}={values}" if node.name else values
        return f"{fn}({self.render(node.operand)}, {named})"

    def isnull_text(self, node: ir.IsNull) -> str:
        return f"is_null({self.render(node.operand)})"

    def truthy_text(self, node: ir.Truthy) -> str:
        return f"truthy({self.render(node.operand)})"

    def coalesce_text(self, node: ir.Coalesce) -> str:
        return f"coalesce({self.render(node.operand)}, {self.render(node.default)})"

    def default_text(self, node: ir.Default) -> str:
        return f"default({self.render(node.operand)}, {self.render(node.default)})"

    def get_text(self, node: ir.Get) -> str:
        return f"get({self.render(node.operand)}, {self.render(node.default)})"

    def contains_text(self, node: ir.Contains) -> str:
        return f"contains({self.render(node.container)}, {self.render(node.item)})"

    def strtest_text(self, node: ir.StrTest) -> str:
        affixes = ", ".join(literal(a) for a in node.affixes)
        return f"{node.method}({self.render(node.operand)}, [{affixes}])"

    def strcase_text(self, node: ir.StrCase) -> str:
        return f"{node.method}({self.render(node.operand)})"

    def ipcheck_text(self, node: ir.IpCheck) -> str:
        inner = self.render(node.operand)
        if node.parse == "address":
            inner = f"ip_address({inner})"
        elif not node.strict:
            inner = f"ip_network({inner}, strict=false)"
        return f"{node.attr}({inner})"

    def ipincidrs_text(self, node: ir.IpInCidrs) -> str:
        nets = "[" + ", ".join(literal(n) for n in node.networks) + "]"
        named = f"{node.name}={nets}" if node.name else nets
        return f"in_cidr({self.render(node.operand)}, {named})"

    def and_text(self, node: ir.And) -> str:
        return "and(" + ", ".join(self.render(n) for n in node.operands) + ")"

    def or_text(self, node: ir.Or) -> str:
        return "or(" + ", ".join(self.render(n) for n in node.operands) + ")"

    def not_text(self, node: ir.Not) -> str:
        inner = node.operand
        if isinstance(inner, ir.InSet):
            return self.inset_text(inner, "not_in")
        if isinstance(inner, ir.IsNull):
            return f"is_not_null({self.render(inner.operand)})"
        return f"not({self.render(inner)})"

    def str_text(self, node: ir.Str) -> str:
        return f"str({self.render(node.operand)})"

    def concat_text(self, node: ir.Concat) -> str:
        return "concat(" + ", ".join(self.render(n) for n in node.parts) + ")"

    def add_text(self, node: ir.Add) -> str:
        return f"add({self.render(node.left)}, {self.render(node.right)})"

    def inttext_text(self, node: ir.IntText) -> str:
        return f"int_text({self.render(node.operand)})"

    def ifelse_text(self, node: ir.IfElse) -> str:
        return f"if({self.render(node.test)}, {self.render(node.then)}, {self.render(node.other)})"

    def dictof_text(self, node: ir.DictOf) -> str:
        items = (f"{literal(k)}: {self.render(v)}" for k, v in zip(node.keys, node.values, strict=True))
        return "{" + ", ".join(items) + "}"

    def listof_text(self, node: ir.ListOf) -> str:
        return "[" + ", ".join(self.render(n) for n in node.items) + "]"

    def lookup_text(self, node: ir.Lookup) -> str:
        entries = "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in node.entries) + "}"
        named = f"{node.name}={entries}" if node.name else entries
        return f"get({named}, {self.render(node.operand)}, {self.render(node.default)})"

    def seq_text(self, node: ir.Seq) -> str:
        effects = "[" + ", ".join(self.render(n) for n in node.effects) + "]"
        return f"seq({effects}, {self.render(node.value)})"

    def residual_text(self, node: ir.Residual) -> str:
        source = " ".join(node.source.split())
        return f"residual({literal(source)}, reason={literal(node.reason)})"


def to_text(node: ir.Node) -> str:
    """The node on one line."""
    return TextRenderer().render(node)


def pretty(node: ir.Node, indent: str = "") -> str:
    """The node with ``and``/``or`` operands on their own lines when one line is too long.

    >>> from flowwarden.logic.ir import And, Truthy, Udm
    >>> print(pretty(And((Truthy(Udm("source_ip")), Truthy(Udm("destination_ip"))))))
    and(truthy(udm.source_ip), truthy(udm.destination_ip))
    """
    flat = to_text(node)
    if len(indent) + len(flat) <= WIDTH or not isinstance(node, ir.And | ir.Or):
        return indent + flat
    name = "and" if isinstance(node, ir.And) else "or"
    inner = ",\n".join(pretty(child, indent + "  ") for child in node.operands)
    return f"{indent}{name}(\n{inner},\n{indent})"
