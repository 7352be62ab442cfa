"""Expression extraction: one ``visit_<AstNode>`` per supported Python expression.

A visitor returns an IR node, a Residual, or a scope marker (a constant container, constant
networks, an ``ip_network(...)`` value) that only an enclosing ``in`` or ``.is_*`` consumes.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from flowwarden.logic import ir
from flowwarden.logic.scope import Container, IpValue, Marker, Networks, Scope, constant_value

Env = dict[str, Any]
MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
AST_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
EVENT_GETTERS = ("udm", "get", "deep_get")
STR_TESTS = ("startswith", "endswith")
STR_CASES = ("lower", "upper")


class ExpressionExtractor:
    """Expression visitors over one function's scope."""

    def __init__(self, source: str, scope: Scope, event: str | None, path: str | None) -> None:
        self.source = source
        self.scope = scope
        self.event = event
        self.path = path

    # -- entry points -----------------------------------------------------------------------
    def raw(self, node: ast.expr, env: Env) -> ir.Node | Marker:
        """The IR node or marker for ``node``; unsupported syntax becomes a Residual."""
        handler = getattr(self, f"visit_{type(node).__name__}", None)
        if handler is None:
            return self.residual(node, f"{type(node).__name__} expressions are not supported")
        return handler(node, env)

    def value(self, node: ast.expr, env: Env) -> ir.Node:
        """An IR node for ``node``; a marker used as a plain value becomes a Residual."""
        found = self.raw(node, env)
        if isinstance(found, ir.Node):
            return found
        return self.residual(node, "an ip_network()/constant container used as a plain value")

    def condition(self, node: ast.expr, env: Env) -> ir.Node:
        """``node`` in a truth-testing position (``if``, ``not``, ``and``/``or`` there)."""
        if isinstance(node, ast.BoolOp):
            parts = tuple(self.condition(v, env) for v in node.values)
            return ir.And(parts, self.span(node)) if isinstance(node.op, ast.And) else ir.Or(
                parts, self.span(node))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ir.Not(self.condition(node.operand, env), self.span(node))
        found = self.value(node, env)
        if ir.is_boolean(found) or isinstance(found, ir.Residual):
            return found
        return ir.Truthy(found, self.span(node))

    def span(self, node: ast.AST) -> ir.Span | None:
        if not hasattr(node, "lineno"):
            return None
        return ir.Span(node.lineno, node.col_offset, node.end_lineno or node.lineno,  # type: ignore[attr-defined]
                       node.end_col_offset or 0, self.path)  # type: ignore[attr-defined]

    def residual(self, node: ast.AST, reason: str) -> ir.Residual:
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        return ir.Residual(text, reason, self.span(node))

    # -- visitors ---------------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant, env: Env) -> ir.Node:  # noqa: N802
        if node.value is None or isinstance(node.value, int | str | bool):
            return ir.Const(node.value, span=self.span(node))
        return self.residual(node, f"{type(node.value).__name__} literal")

    def visit_Name(self, node: ast.Name, env: Env) -> ir.Node | Marker:  # noqa: N802
        if node.id in env:
            return env[node.id]
        if node.id == self.event:
            return self.residual(node, "the event object used directly")
        if self.scope.is_local(node.id):
            return self.residual(node, f"local variable {node.id!r}")
        found = self.scope.constant(node.id)
        if found is None:
            return self.residual(node, f"{node.id!r} is not a str/int constant or container")
        return found

    def _container(self, node: ast.Set | ast.List | ast.Tuple, env: Env) -> ir.Node | Marker:
        items = [self.value(e, env) for e in node.elts]
        literals = [i for i in items if isinstance(i, ir.Const) and i.name is None]
        if len(literals) != len(items):
            return self.residual(node, "container of non-literal items")
        found = constant_value("", [i.value for i in literals])
        if not isinstance(found, Container):
            return self.residual(node, "container of values other than str/int")
        return Container(found.values, None, isinstance(node, ast.Set), found.items)

    visit_Set = visit_List = visit_Tuple = _container  # noqa: N815

    def visit_UnaryOp(self, node: ast.UnaryOp, env: Env) -> ir.Node:  # noqa: N802
        if isinstance(node.op, ast.Not):
            return ir.Not(self.condition(node.operand, env), self.span(node))
        operand = self.value(node.operand, env)
        if isinstance(node.op, ast.USub) and isinstance(operand, ir.Const) and type(operand.value) is int:
            return ir.Const(-operand.value, span=self.span(node))
        return self.residual(node, f"unary {type(node.op).__name__}")

    def visit_BoolOp(self, node: ast.BoolOp, env: Env) -> ir.Node:  # noqa: N802
        parts = [self.value(v, env) for v in node.values]
        # A residual operand is exact here too: evaluation reaching it is Python's to finish.
        if all(ir.is_boolean(p) or isinstance(p, ir.Residual) for p in parts) and not all(
                isinstance(p, ir.Residual) for p in parts):
            kind = ir.And if isinstance(node.op, ast.And) else ir.Or
            return kind(tuple(parts), self.span(node))
        if isinstance(node.op, ast.And):
            return self.residual(node, "`and` over non-bool values returns a value")
        # `a or b or c` is the first truthy operand, else the last: a Coalesce chain.
        result = parts[-1]
        for part in reversed(parts[:-1]):
            result = ir.Coalesce(part, result, self.span(node))
        return result

    def visit_Compare(self, node: ast.Compare, env: Env) -> ir.Node:  # noqa: N802
        if len(node.ops) != 1:
            return self.residual(node, "chained comparison")
        op, right_ast = node.ops[0], node.comparators[0]
        if isinstance(op, ast.In | ast.NotIn):
            found = self._membership(node, self.raw(node.left, env), self.raw(right_ast, env))
            return ir.Not(found, self.span(node)) if isinstance(op, ast.NotIn) else found
        left, right = self.value(node.left, env), self.value(right_ast, env)
        if isinstance(op, ast.Is | ast.IsNot):
            return self._identity(node, left, right, isinstance(op, ast.IsNot))
        symbol = AST_OPS.get(type(op))
        if symbol is None:
            return self.residual(node, f"comparison {type(op).__name__}")
        if any(isinstance(side, ir.Residual) for side in (left, right)):
            # The comparison stays; only the side that did not compile is left to Python.
            return ir.Compare(symbol, left, right, self.span(node))
        if any(ir.is_boolean(side) for side in (left, right)):
            return self.residual(node, "comparison with a bool")
        if isinstance(left, ir.Const) and isinstance(right, ir.Const):
            folded = _fold(symbol, left.value, right.value)
            if folded is not None:
                return ir.Const(folded, span=self.span(node))
        if symbol in ("==", "!=") and _is_none(left) != _is_none(right):
            test = ir.IsNull(right if _is_none(left) else left, self.span(node))
            return test if symbol == "==" else ir.Not(test, self.span(node))
        if isinstance(left, ir.Const) and not isinstance(right, ir.Const):
            left, right, symbol = right, left, MIRROR[symbol]
        return ir.Compare(symbol, left, right, self.span(node))

    def _identity(self, node: ast.Compare, left: ir.Node, right: ir.Node, negate: bool) -> ir.Node:
        if _is_none(left) == _is_none(right):
            return self.residual(node, "`is` other than a None test")
        test = ir.IsNull(right if _is_none(left) else left, self.span(node))
        return ir.Not(test, self.span(node)) if negate else test

    def _membership(self, node: ast.Compare, left: ir.Node | Marker,
                    right: ir.Node | Marker) -> ir.Node:
        if isinstance(left, IpValue) and left.parse == "address":
            nets = _networks(right)
            if nets is not None:
                return ir.IpInCidrs(left.operand, nets.networks, nets.name, nets.strict,
                                    self.span(node))
        if isinstance(right, Container) and isinstance(left, ir.Node):
            if ir.is_boolean(left):
                return self.residual(node, "membership test of a bool")
            return ir.InSet(left, right.values, right.name, right.hashed, self.span(node))
        if isinstance(left, ir.Node) and isinstance(right, ir.Node) and not ir.is_boolean(right):
            # `in` a value (a substring of a str, say); a side that did not compile stays in
            # its place as a residual.
            return ir.Contains(left, right, self.span(node))
        for side in (left, right):
            if isinstance(side, ir.Residual):
                return side
        return self.residual(node, "`in` other than a constant container or ip_network()")

    def visit_Call(self, node: ast.Call, env: Env) -> ir.Node | Marker:  # noqa: N802
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and (
            func.value.id == self.event and func.attr in EVENT_GETTERS
        ):
            return self._event_getter(node, func.attr, env)
        parse = self._ip_parser(func)
        if parse is not None:
            return self._ip_call(node, parse, env)
        if isinstance(func, ast.Name) and func.id == "bool" and self.scope.is_builtin("bool") and (
            len(node.args) == 1 and not node.keywords
        ):
            return self.condition(node.args[0], env)
        if isinstance(func, ast.Attribute) and func.attr in STR_TESTS:
            return self._str_test(node, func, env)
        if isinstance(func, ast.Attribute) and func.attr in STR_CASES and not (
                node.args or node.keywords):
            operand = self.value(func.value, env)
            if isinstance(operand, ir.Const) and isinstance(operand.value, str):
                return ir.Const(getattr(operand.value, func.attr)(), span=self.span(node))
            return ir.StrCase(func.attr, operand, self.span(node))
        if isinstance(func, ast.Name) and self.scope.is_deep_get(func.id) and node.args and (
            isinstance(node.args[0], ast.Name) and node.args[0].id == self.event
        ) and node.args[0].id not in env:
            return self._event_getter(node, "deep_get", env, node.args[1:])
        return self.other_call(node, env)

    def other_call(self, node: ast.Call, env: Env) -> ir.Node:
        """A call of a function none of the forms above knows."""
        return self.residual(node, f"call to {ast.unparse(node.func)}()")

    def _event_getter(self, node: ast.Call, method: str, env: Env,
                      args: list[ast.expr] | None = None) -> ir.Node:
        """``event.udm/get/deep_get(...)`` (or ``deep_get(event, ...)``, ``args`` after the event)
        with constant keys and, where the method takes one, a constant default."""
        args = node.args if args is None else args
        default_arg = None
        if method == "get" and len(args) == 2:
            args, default_arg = args[:1], args[1]
        keywords = {kw.arg: kw.value for kw in node.keywords}
        if method != "get" and list(keywords) == ["default"]:
            default_arg = keywords.pop("default")
        keys = [key for key in (self.constant_key(a, env) for a in args) if key is not None]
        if len(keys) != len(args) and not keywords:
            chosen = self._chosen_key(node, method, env, args, default_arg)
            if chosen is not None:
                return chosen
        if keywords or not keys or len(keys) != len(args) or (method == "get" and len(keys) != 1):
            return self.residual(node, f"event.{method}() with other than constant string keys "
                                       "and a default")
        if method == "udm" and len(keys) == 1:
            found: ir.Node = ir.Udm(keys[0], self.span(node))
        else:
            found = ir.Field(tuple(keys), self.span(node))
        if default_arg is None:
            return found
        default = self.value(default_arg, env)
        if not isinstance(default, ir.Const):
            return self.residual(node, f"event.{method}() with a default other than a constant")
        if default.value is None:
            return found  # None is what they give anyway
        if method == "get":
            assert isinstance(found, ir.Field)
            return ir.Get(found, default, self.span(node))
        return ir.Default(found, default, self.span(node))

    def _chosen_key(self, node: ast.Call, method: str, env: Env, args: list[ast.expr],
                    default_arg: ast.expr | None) -> ir.Node | None:
        """A getter whose key is one of several constants, chosen by a condition (``side =
        "srcAddr" if ... else "dstAddr"``, then ``event.deep_get(..., side)``): one getter per
        choice under the same condition, or None when no key is such a choice. The condition
        ran when the key was computed, so evaluating it again changes nothing."""
        for index, arg in enumerate(args):
            found = None if isinstance(arg, ast.Starred) else self.value(arg, env)
            if isinstance(found, ir.IfElse) and _string_choice(found):
                return self._per_choice(node, method, env, args, index, found, default_arg)
        return None

    def _per_choice(self, node: ast.Call, method: str, env: Env, args: list[ast.expr],
                    index: int, choice: ir.Node, default_arg: ast.expr | None) -> ir.Node:
        if isinstance(choice, ir.IfElse):
            return ir.IfElse(choice.test,
                             self._per_choice(node, method, env, args, index, choice.then,
                                              default_arg),
                             self._per_choice(node, method, env, args, index, choice.other,
                                              default_arg), self.span(node))
        assert isinstance(choice, ir.Const)
        chosen = [*args[:index], ast.copy_location(ast.Constant(choice.value), args[index]),
                  *args[index + 1:]]
        if default_arg is not None and method == "get":
            chosen.append(default_arg)
        call = ast.copy_location(ast.Call(node.func, node.args, node.keywords), node)
        return self._event_getter(call, method, env, chosen)

    def constant_key(self, node: ast.expr, env: Env) -> str | None:
        """The key an event getter's argument names: a string literal, or a name bound to one
        (a loop variable, a local)."""
        key = None if isinstance(node, ast.Starred) else self.value(node, env)
        return key.value if isinstance(key, ir.Const) and isinstance(key.value, str) else None

    def _str_test(self, node: ast.Call, func: ast.Attribute, env: Env) -> ir.Node:
        """``value.startswith(prefix)`` / ``.endswith``: a constant str or tuple of them."""
        if node.keywords or len(node.args) != 1:
            return self.residual(node, f".{func.attr}() with other than one argument")
        found = self.raw(node.args[0], env)
        if isinstance(found, ir.Const) and isinstance(found.value, str):
            affixes: tuple[str, ...] = (found.value,)
        elif isinstance(found, Container) and self._is_tuple(node.args[0]) and all(
                isinstance(v, str) for v in found.items):
            affixes = tuple(found.items)
        else:
            return self.residual(node, f".{func.attr}() of other than constant strings")
        operand = self.value(func.value, env)
        return ir.StrTest(func.attr, operand, affixes, self.span(node))

    def _is_tuple(self, node: ast.expr) -> bool:
        """True when ``node`` is a tuple display or names a module-level tuple (``startswith``
        takes a tuple; a list or set raises TypeError)."""
        if isinstance(node, ast.Name):
            return isinstance(self.scope.global_object(node.id), tuple)
        return isinstance(node, ast.Tuple)

    def _ip_parser(self, func: ast.expr) -> str | None:
        if isinstance(func, ast.Name):
            return self.scope.ip_function(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and (
            self.scope.is_ipaddress_module(func.value.id)
        ):
            return {"ip_network": "network", "ip_address": "address"}.get(func.attr)
        return None

    def _ip_call(self, node: ast.Call, parse: str, env: Env) -> ir.Node | Marker:
        strict = True
        for kw in node.keywords:
            if parse == "network" and kw.arg == "strict" and isinstance(kw.value, ast.Constant) and (
                isinstance(kw.value.value, bool)
            ):
                strict = kw.value.value
            else:
                return self.residual(node, f"ip_{parse}() with unsupported keyword arguments")
        if len(node.args) != 1:
            return self.residual(node, f"ip_{parse}() needs exactly one argument")
        found = self.raw(node.args[0], env)
        if isinstance(found, Networks) and parse == "network":
            return found
        if not isinstance(found, ir.Node):
            return self.residual(node, f"ip_{parse}() of a container")
        if isinstance(found, ir.Residual):
            return found
        return IpValue(found, parse, strict)

    def visit_Attribute(self, node: ast.Attribute, env: Env) -> ir.Node:  # noqa: N802
        base = self.raw(node.value, env)
        if isinstance(base, ir.Residual):
            return base
        if isinstance(base, IpValue) and node.attr in ir.IP_ATTRS:
            return ir.IpCheck(base.operand, node.attr, base.parse, base.strict, self.span(node))
        return self.residual(node, f"attribute .{node.attr}")


def _fold(symbol: str, left: ir.Scalar, right: ir.Scalar) -> bool | None:
    """``left <symbol> right`` of two constants (a loop variable against a literal, say);
    None where Python would raise (ordering None, or an int against a str)."""
    if symbol in ("==", "!="):
        return (left == right) == (symbol == "==")
    if type(left) is not type(right) or left is None:
        return None
    return bool(OPERATORS[symbol](left, right))


def _is_none(node: ir.Node) -> bool:
    return isinstance(node, ir.Const) and node.value is None


def _networks(found: ir.Node | Marker) -> Networks | None:
    """Constant networks on the right of ``in``: ``ip_network("c")`` or a network constant."""
    if isinstance(found, Networks):
        return None if found.iterable else found
    if isinstance(found, IpValue) and found.parse == "network" and isinstance(found.operand, ir.Const) and (
        isinstance(found.operand.value, str)
    ):
        return Networks((found.operand.value,), found.operand.name, found.strict)
    return None


def _string_choice(node: ir.Node) -> bool:
    """True for a conditional whose every outcome is a constant string."""
    if isinstance(node, ir.IfElse):
        return _string_choice(node.then) and _string_choice(node.other)
    return isinstance(node, ir.Const) and isinstance(node.value, str)
