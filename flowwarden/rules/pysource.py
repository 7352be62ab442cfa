"""The condition IR written back as Python source: what a YAML detection's ``rule.source``
holds, for people (``explain``, the catalog) and for the extractor, which turns it into the
same IR (``tests/rules/test_simple.py`` checks the round trip).

Residuals become calls of module-level helpers (``names`` maps each to its name), which the
extractor keeps as residuals: those parts run in Python.
"""

from __future__ import annotations

from collections.abc import Mapping

from flowwarden.logic import ir

BOOL_OPS = {ir.And: " and ", ir.Or: " or "}


def to_python(node: ir.Node, names: Mapping[ir.Residual, str]) -> str:
    """A Python expression over ``event`` computing ``node`` (raising where it raises)."""

    def text(n: ir.Node) -> str:
        if isinstance(n, ir.Field):
            return f"event.deep_get({', '.join(repr(k) for k in n.keys)})"
        if isinstance(n, ir.Const):
            return repr(n.value)
        if isinstance(n, ir.Compare):
            return f"({text(n.left)} {n.op} {text(n.right)})"
        if isinstance(n, ir.InSet):
            items = sorted(n.values, key=repr)
            return f"({text(n.operand)} in ({''.join(repr(v) + ', ' for v in items)}))"
        if isinstance(n, ir.IsNull):
            return f"({text(n.operand)} is None)"
        if isinstance(n, ir.Not):
            return f"(not {text(n.operand)})"
        if isinstance(n, ir.And | ir.Or):
            return "(" + BOOL_OPS[type(n)].join(text(o) for o in n.operands) + ")"
        if isinstance(n, ir.StrTest):
            return f"{text(n.operand)}.{n.method}({n.affixes!r})"
        if isinstance(n, ir.Contains):
            return f"({text(n.item)} in {text(n.container)})"
        if isinstance(n, ir.IpCheck):
            return f"ipaddress.ip_address({text(n.operand)}).{n.attr}"
        if isinstance(n, ir.IpInCidrs):
            return (f"any(ipaddress.ip_address({text(n.operand)}) in ipaddress.ip_network(n, "
                    f"strict={n.strict}) for n in {n.networks!r})")
        if isinstance(n, ir.Residual):
            return f"{names[n]}(event)"
        raise ValueError(f"no Python source for {type(n).__name__}")

    return text(node)
