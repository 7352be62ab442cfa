"""Extraction of functions that return a value (alert functions): their Python as IR values.

``extract`` turns ``rule()`` into one condition; this turns ``title()``, ``dedup()``,
``alert_context()``... into one value node. It understands f-strings, ``+``, ``str()``, ``%`` and
``.format`` with constant formats, conditional expressions and early returns, local variables,
dict and list displays, dict comprehensions and ``for`` loops over constant collections, items
assigned into a dict the function built, ``MAPPING.get`` on constant dicts, and calls of helper
functions whose bodies are such code (in the rule's module or in a global helper module).
Anything else becomes a Residual: that function runs in Python.

Evaluation order is kept where it matters for errors: a value the function computes but does
not return (a local variable, an unused argument) stays as an effect of a ``Seq`` when it may
raise, so rows where Python would raise are never missed.

>>> src = '''
... def title(event):
...     port = event.udm("destination_port")
...     if port is None:
...         return "no port"
...     return f"port {port} from {event.udm('source_ip') or 'nowhere'}"
... '''
>>> print(extract_value_source(src, "title"))
if(is_null(udm.destination_port), "no port", concat("port ", str(udm.destination_port), " from ", str(coalesce(udm.source_ip, "nowhere"))))
"""

from __future__ import annotations

import ast
import os
import re
import string
from collections.abc import Mapping
from functools import lru_cache
from types import FunctionType, ModuleType
from typing import Any

from flowwarden.logic import ir
from flowwarden.logic.extract import (
    EFFECTS,
    MAX_UNROLL,
    FunctionExtractor,
    _Bind,
    _evaluated,
    _is_stdlib,
    uncovered,
)
from flowwarden.logic.extract_expr import Env
from flowwarden.logic.rewrite import simplify
from flowwarden.logic.scope import MAX_CONTAINER, MISSING, Container, Marker

MAX_DEPTH = 8  # helper calls inlined inside one another
PERCENT = re.compile(r"%(.?)")
SCALAR_TYPES = (str, int, bool, type(None))


def extract_value_source(source: str, function: str, namespace: Mapping[str, Any] | None = None,
                         path: str | None = None) -> ir.Node:
    """The value IR of the module-level ``function`` in ``source``; a residual when it cannot
    be found or parsed."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        span = ir.Span(exc.lineno or 1, (exc.offset or 1) - 1, exc.lineno or 1, 0, path)
        return ir.Residual(source, f"syntax error: {exc.msg}", span)
    func = _module_function(tree, function)
    if func is None:
        return ir.Residual(source, f"no module-level {function}() function")
    return ValueExtractor(source, tree, func, namespace, path).extract_value()


def extract_function(fn: FunctionType) -> ir.Node:
    """The value IR of a loaded one-argument function (a data-model method, say), read from
    its file."""
    found = function_source(fn)
    if found is None:
        return ir.Residual(fn.__name__, f"the source of {fn.__name__}() cannot be read")
    source, tree, func, path = found
    return ValueExtractor(source, tree, func, fn.__globals__, path).extract_value()


class ValueExtractor(FunctionExtractor):
    """Turns one function's statements into the value it returns.

    ``bindings`` are parameters already bound (a helper's arguments), ``event`` the parameter
    receiving the event (for a helper; a top-level function takes the event alone).
    """

    def __init__(self, source: str, tree: ast.Module, func: ast.FunctionDef,
                 namespace: Mapping[str, Any] | None, path: str | None,
                 bindings: Env | None = None, event: str | None = None, depth: int = 0) -> None:
        super().__init__(source, tree, func, namespace, path)
        self.tree = tree
        self.depth = depth
        self.bindings = dict(bindings or {})
        if depth:  # a helper: any plain signature, the event wherever the caller passed it
            self.event = event
            self.signature_ok = _plain_signature(func)
        self.updatable = _updatable_dicts(func, self.event)

    def extract_value(self) -> ir.Node:
        if not self.signature_ok:
            return self.residual(self.func, f"{self.func.name}() must take exactly one event "
                                            "argument")
        return simplify(self.sequence(list(self.func.body), {**self.bindings, EFFECTS: ()}))

    # -- statements ---------------------------------------------------------------------------
    def fall_through(self, stmts: list[ast.stmt], env: Env) -> ir.Node:
        return self._finish(ir.Const(None), env)

    def visit_Return(self, stmt: ast.Return, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        value = ir.Const(None) if stmt.value is None else self.value(stmt.value, env)
        return self._finish(value, env)

    def visit_If(self, stmt: ast.If, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        test = self.condition(stmt.test, env)
        if test in (ir.TRUE, ir.FALSE):
            return self.sequence([*(stmt.body if test == ir.TRUE else stmt.orelse), *rest], env)
        # The test runs first: it raises wherever an earlier value it evaluates again would.
        env = {**env, EFFECTS: uncovered(env.get(EFFECTS, ()), test)}
        then = self.sequence([*stmt.body, *rest], env)
        other = self.sequence([*stmt.orelse, *rest], env)
        return ir.IfElse(test, then, other, self.span(stmt))

    def visit_For(self, stmt: ast.For, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        """``for x in CONSTANT:`` unrolled into the statements: each item binds ``x``, then the
        body runs, so local variables carry from one iteration to the next."""
        here = [stmt, *rest]
        if not isinstance(stmt.target, ast.Name) or stmt.orelse or any(
            isinstance(n, ast.Break | ast.Continue) for s in stmt.body for n in ast.walk(s)
        ):
            return self.residual_stmts(here, "for loop with else, break, continue or unpacking")
        items = self.loop_items(stmt.iter, env)
        if items is None:
            return self.residual_stmts(here, "for loop over something other than a constant")
        unrolled: list[ast.stmt] = []
        for item in items:
            unrolled += [ast.copy_location(_Bind(stmt.target.id, item), stmt), *stmt.body]
        return self.sequence([*unrolled, *rest], env)

    def residual_stmts(self, stmts: list[ast.stmt], reason: str) -> ir.Residual:
        return super().residual_stmts([s for s in stmts if not isinstance(s, _Bind)] or stmts,
                                      reason)

    def visit_AugAssign(self, stmt: ast.AugAssign, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        name = stmt.target.id if isinstance(stmt.target, ast.Name) else ""
        current = env.get(name)
        if not isinstance(stmt.op, ast.Add) or not isinstance(current, ir.Node) or isinstance(
                current, ir.DictOf | ir.ListOf):
            return self.residual_stmts([stmt, *rest], "augmented assignment other than str +=")
        value = ir.Add(current, self.value(stmt.value, env), self.span(stmt))
        return self.sequence(rest, _evaluated({**env, name: value}, value))

    def _assign(self, stmt: ast.stmt, target: ast.expr, expr: ast.expr, rest: list[ast.stmt],
                env: Env) -> ir.Node:
        here = [stmt, *rest]
        if isinstance(target, ast.Subscript):
            return self._set_item(stmt, target, expr, rest, env)
        if not isinstance(target, ast.Name):
            return self.residual_stmts(here, "assignment to other than a name or a dict item")
        return super()._assign(stmt, target, expr, rest, env)

    def _set_item(self, stmt: ast.stmt, target: ast.Subscript, expr: ast.expr,
                  rest: list[ast.stmt], env: Env) -> ir.Node:
        """``name[KEY] = value`` on a dict this function built and shares with nobody."""
        here = [stmt, *rest]
        name = target.value.id if isinstance(target.value, ast.Name) else None
        current = env.get(name) if name is not None else None
        if name not in self.updatable or not isinstance(current, ir.DictOf):
            return self.residual_stmts(here, "item assignment other than into a dict built here "
                                             "and not shared")
        value = self.value(expr, env)  # Python evaluates the value, then the key
        key = self.value(target.slice, env)
        if not (isinstance(key, ir.Const) and isinstance(key.value, str)):
            return self.residual_stmts(here, "dict item assignment with a key other than a "
                                             "constant string")
        keys, values = list(current.keys), list(current.values)
        if key.value in keys and not ir.may_raise(values[keys.index(key.value)]):
            values[keys.index(key.value)] = value  # the old value goes unused, harmlessly
        else:
            keys.append(key.value)
            values.append(value)
        updated = ir.DictOf(tuple(keys), tuple(values), current.span)
        return self.sequence(rest, _evaluated({**env, name: updated}, value))

    # -- expressions --------------------------------------------------------------------------
    def value(self, node: ast.expr, env: Env) -> ir.Node:
        if isinstance(node, ast.List):
            return ir.ListOf(tuple(self.value(e, env) for e in node.elts), self.span(node))
        found = self.raw(node, env)
        if isinstance(found, ir.Node):
            return found
        return self.residual(node, "an ip_network()/constant collection used as a plain value")

    def _bindable(self, node: ast.expr, env: Env) -> ir.Node | Marker:
        """What a local variable may hold: a value, or a constant collection for ``in``/``for``."""
        if isinstance(node, ast.List | ast.Tuple):
            found = self.raw(node, env)
            return found if isinstance(found, Container) else self.value(node, env)
        return self.raw(node, env)

    def visit_JoinedStr(self, node: ast.JoinedStr, env: Env) -> ir.Node:  # noqa: N802
        parts: list[ir.Node] = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                parts.append(ir.Const(part.value))
            elif isinstance(part, ast.FormattedValue) and part.format_spec is None and (
                part.conversion in (-1, ord("s"))
            ):
                parts.append(_str(self.value(part.value, env), self.span(part)))
            else:
                return self.residual(part, "f-string field with a format spec or !r/!a")
        return _concat(parts, self.span(node))

    def visit_BinOp(self, node: ast.BinOp, env: Env) -> ir.Node:  # noqa: N802
        if isinstance(node.op, ast.Mod):
            return self._percent(node, env)
        if not isinstance(node.op, ast.Add):
            return self.residual(node, f"operator {type(node.op).__name__}")
        left, right = self.value(node.left, env), self.value(node.right, env)
        if _is_text(left) and _is_text(right):  # str + str: joined, never raising
            return _concat([left, right], self.span(node))
        return ir.Add(left, right, self.span(node))

    def _percent(self, node: ast.BinOp, env: Env) -> ir.Node:
        """``"..." % args`` with a constant format of ``%s``, ``%d``/``%i`` and ``%%`` only."""
        fmt = self.value(node.left, env)
        if not (isinstance(fmt, ir.Const) and isinstance(fmt.value, str)):
            return self.residual(node, "% other than a constant format string")
        if isinstance(node.right, ast.Tuple):
            args = [self.value(e, env) for e in node.right.elts]
        else:
            found = self.raw(node.right, env)
            if not isinstance(found, ir.Node):
                return self.residual(node, "% with a constant collection (a tuple is unpacked)")
            args = [found]
        parts: list[ir.Node] = []
        pending = iter(args)
        pos = 0
        for match in PERCENT.finditer(fmt.value):
            parts.append(ir.Const(fmt.value[pos:match.start()]))
            pos = match.end()
            spec = match.group(1)
            if spec == "%":
                parts.append(ir.Const("%"))
                continue
            arg = next(pending, None)
            if spec not in ("s", "d", "i") or arg is None:
                return self.residual(node, "% format other than %s, %d and %% with one argument "
                                           "each")
            parts.append(_str(arg) if spec == "s" else ir.IntText(arg, self.span(node)))
        if next(pending, None) is not None:
            return self.residual(node, "% with more arguments than the format uses")
        parts.append(ir.Const(fmt.value[pos:]))
        return _concat(parts, self.span(node))

    def visit_IfExp(self, node: ast.IfExp, env: Env) -> ir.Node:  # noqa: N802
        test = self.condition(node.test, env)
        if test in (ir.TRUE, ir.FALSE):
            return self.value(node.body if test == ir.TRUE else node.orelse, env)
        return ir.IfElse(test, self.value(node.body, env), self.value(node.orelse, env),
                         self.span(node))

    def visit_Dict(self, node: ast.Dict, env: Env) -> ir.Node:  # noqa: N802
        keys: list[str] = []
        values: list[ir.Node] = []
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            key = self.value(key_node, env) if key_node is not None else None
            if not (isinstance(key, ir.Const) and isinstance(key.value, str)):
                return self.residual(node, "dict display with a key other than a constant "
                                           "string, or ** unpacking")
            keys.append(key.value)
            values.append(self.value(value_node, env))
        return ir.DictOf(tuple(keys), tuple(values), self.span(node))

    def visit_DictComp(self, node: ast.DictComp, env: Env) -> ir.Node:  # noqa: N802
        scopes = self._comprehension(node, env)
        if isinstance(scopes, ir.Residual):
            return scopes
        keys: list[str] = []
        values: list[ir.Node] = []
        for scope in scopes:
            key = self.value(node.key, scope)
            if not (isinstance(key, ir.Const) and isinstance(key.value, str)):
                return self.residual(node, "dict comprehension with keys other than constant "
                                           "strings")
            keys.append(key.value)
            values.append(self.value(node.value, scope))
        return ir.DictOf(tuple(keys), tuple(values), self.span(node))

    def visit_ListComp(self, node: ast.ListComp, env: Env) -> ir.Node:  # noqa: N802
        scopes = self._comprehension(node, env)
        if isinstance(scopes, ir.Residual):
            return scopes
        return ir.ListOf(tuple(self.value(node.elt, scope) for scope in scopes), self.span(node))

    def _comprehension(self, node: ast.DictComp | ast.ListComp, env: Env) -> list[Env] | ir.Residual:
        """One env per item of a comprehension over a constant collection."""
        if len(node.generators) != 1:
            return self.residual(node, "comprehension with several for clauses")
        gen = node.generators[0]
        if gen.ifs or gen.is_async or not isinstance(gen.target, ast.Name):
            return self.residual(node, "comprehension with if clauses or unpacking")
        items = self.loop_items(gen.iter, env)
        if items is None:
            return self.residual(node, "comprehension over something other than a constant")
        return [{**env, gen.target.id: item} for item in items]

    def other_call(self, node: ast.Call, env: Env) -> ir.Node:
        # visit_Call has inlined what it could: the rest is Python's.
        return self.residual(node, f"call to {ast.unparse(node.func)}()")

    def loop_items(self, node: ast.expr, env: Env) -> list[ir.Node | Any] | None:
        found = self.raw(node, env)
        if isinstance(found, Container) and found.hashed and found.name is None and len(
                found.items) <= MAX_UNROLL:
            # A set display iterates in the order of the set Python builds from it.
            return [ir.Const(v) for v in set(found.items)]
        return super().loop_items(node, env)

    def visit_Call(self, node: ast.Call, env: Env) -> ir.Node | Marker:  # noqa: N802
        func = node.func
        if isinstance(func, ast.Name) and func.id == "str" and self.scope.is_builtin("str"):
            if node.keywords or len(node.args) > 1:
                return self.residual(node, "str() with an encoding")
            return _str(self.value(node.args[0], env), self.span(node)) if node.args else (
                ir.Const(""))
        if isinstance(func, ast.Attribute) and func.attr == "format":
            fmt = self.raw(func.value, env)
            if isinstance(fmt, ir.Const) and isinstance(fmt.value, str):
                return self._format(node, fmt.value, env)
        if isinstance(func, ast.Attribute) and func.attr == "get" and isinstance(
                func.value, ast.Name) and func.value.id not in env:
            mapping = self.scope.global_object(func.value.id)
            if isinstance(mapping, dict):
                return self._lookup(node, func.value.id, mapping, env)
        helper = self._helper(func, env)
        if helper is not None:
            return self._inline(node, *helper, env)
        return super().visit_Call(node, env)

    def _format(self, node: ast.Call, fmt: str, env: Env) -> ir.Node:
        """``"...".format(...)`` with plain ``{}``, ``{0}`` and ``{name}`` fields."""
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                kw.arg is None for kw in node.keywords):
            return self.residual(node, ".format() with * or ** arguments")
        args = [self.value(a, env) for a in node.args]
        kwargs = {kw.arg: self.value(kw.value, env) for kw in node.keywords}
        try:
            fields = list(string.Formatter().parse(fmt))
        except ValueError:
            return self.residual(node, ".format() of an invalid format string")
        parts: list[ir.Node] = []
        numbering: set[str] = set()
        auto = 0
        for literal, name, spec, conversion in fields:
            parts.append(ir.Const(literal))
            if name is None:
                continue
            if spec or conversion not in (None, "s"):
                return self.residual(node, ".format() field with a format spec or !r/!a")
            if name == "":
                numbering.add("auto")
                value = args[auto] if auto < len(args) else None
                auto += 1
            elif name.isdigit():
                numbering.add("manual")
                value = args[int(name)] if int(name) < len(args) else None
            else:
                value = kwargs.get(name) if name.isidentifier() else None
            if value is None or len(numbering) > 1:
                return self.residual(node, ".format() field other than a given argument")
            parts.append(_str(value))
        return self._with_effects([*args, *kwargs.values()], _concat(parts, self.span(node)))

    def _lookup(self, node: ast.Call, name: str, mapping: dict[Any, Any], env: Env) -> ir.Node:
        """``MAPPING.get(key[, default])`` on a module dict of scalars that nothing changes."""
        if self.scope.is_mutated(name) or len(mapping) > MAX_CONTAINER or not all(
            type(k) in SCALAR_TYPES and type(v) in SCALAR_TYPES for k, v in mapping.items()
        ):
            return self.residual(node, f"{name}.get() on other than a constant dict of scalars")
        if node.keywords or not 1 <= len(node.args) <= 2:
            return self.residual(node, f"{name}.get() with other than one or two arguments")
        operand = self.value(node.args[0], env)
        default = self.value(node.args[1], env) if len(node.args) == 2 else ir.Const(None)
        return ir.Lookup(operand, tuple(mapping.items()), default, name, self.span(node))

    # -- helpers ------------------------------------------------------------------------------
    def _helper(self, func: ast.expr, env: Env) -> tuple[str, ast.Module, ast.FunctionDef,
                                                          str | None, Mapping[str, Any] | None] | None:
        """(source, tree, def, path, namespace) of the plain Python function ``func`` names."""
        target: Any = MISSING
        if isinstance(func, ast.Name) and func.id not in env:
            target = self.scope.global_object(func.id)
            if self.scope.namespace is None and target is MISSING and not self.scope.is_local(
                    func.id) and func.id not in self.scope.module_names:
                found = _module_function(self.tree, func.id)
                return None if found is None else (self.source, self.tree, found, self.path, None)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and (
            func.value.id not in env
        ):
            module = self.scope.global_object(func.value.id)
            if isinstance(module, ModuleType):
                target = getattr(module, func.attr, MISSING)
        if not isinstance(target, FunctionType) or _is_stdlib(target.__globals__):
            return None  # the standard library's functions are known forms, or Python's
        here = (self.source, self.tree) if target.__globals__ is self.scope.namespace else None
        found_source = function_source(target, here)
        if found_source is None:
            return None
        source, tree, found_def, path = found_source
        return source, tree, found_def, path, target.__globals__

    def _inline(self, node: ast.Call, source: str, tree: ast.Module, func: ast.FunctionDef,
                path: str | None, namespace: Mapping[str, Any] | None, env: Env) -> ir.Node:
        """The helper's returned value, its parameters bound to the call's arguments."""
        if self.depth >= MAX_DEPTH:
            return self.residual(node, f"helpers nested more than {MAX_DEPTH} deep")
        if node.keywords or len(node.args) != len(func.args.args) or not _plain_signature(func):
            return self.residual(node, f"call to {func.name}() other than with one positional "
                                       "argument per parameter")
        bindings: Env = {}
        event: str | None = None
        for param, arg in zip(func.args.args, node.args, strict=True):
            if isinstance(arg, ast.Name) and arg.id == self.event and arg.id not in env:
                if event is not None:
                    return self.residual(node, f"call to {func.name}() passing the event twice")
                event = param.arg
                continue
            if isinstance(arg, ast.Starred):
                return self.residual(node, f"call to {func.name}() with * arguments")
            found = self._bindable(arg, env)
            if isinstance(found, ir.Residual):
                return found
            bindings[param.arg] = found
        helper = ValueExtractor(source, tree, func, namespace, path, bindings, event,
                                self.depth + 1)
        args = [b for b in bindings.values() if isinstance(b, ir.Node)]
        return self._with_effects(args, helper.extract_value())

def _is_text(node: ir.Node) -> bool:
    """True when ``node`` always evaluates to a str."""
    return isinstance(node, ir.Str | ir.Concat) or (
        isinstance(node, ir.Const) and isinstance(node.value, str))


def _str(node: ir.Node, span: ir.Span | None = None) -> ir.Node:
    """``str(node)``, folded for constants and values that are strings already."""
    if isinstance(node, ir.Const):
        return ir.Const(str(node.value), span=span)
    if isinstance(node, ir.Str | ir.Concat):
        return node
    return ir.Str(node, span)


def _concat(parts: list[ir.Node], span: ir.Span | None) -> ir.Node:
    """Strings joined, adjacent constants merged; one part alone is itself."""
    merged: list[ir.Node] = []
    for part in parts:
        for piece in part.parts if isinstance(part, ir.Concat) else (part,):
            if isinstance(piece, ir.Const) and piece.value == "":
                continue
            last = merged[-1] if merged else None
            if isinstance(piece, ir.Const) and isinstance(last, ir.Const):
                merged[-1] = ir.Const(f"{last.value}{piece.value}")
            else:
                merged.append(piece)
    if not merged:
        return ir.Const("", span=span)
    return merged[0] if len(merged) == 1 else ir.Concat(tuple(merged), span)


def _plain_signature(func: ast.FunctionDef) -> bool:
    params = func.args
    return not (params.posonlyargs or params.kwonlyargs or params.vararg or params.kwarg
                or params.defaults or func.decorator_list)


def _module_function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    """The last module-level ``def name``."""
    found = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == name]
    return found[-1] if found else None


def _updatable_dicts(func: ast.FunctionDef, event: str | None) -> frozenset[str]:
    """Local names whose dict the function may update item by item without anyone noticing.

    Such a name is always bound to a dict made right there (a display, a comprehension, or a
    call with only constants and the event as arguments) and is otherwise only returned: so no
    other name, container or callee ever sees the dict before its last update.
    """
    params = {a.arg for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]}
    parents = {id(child): parent for parent in ast.walk(func) for child in ast.iter_child_nodes(parent)}
    targets: set[str] = set()
    unsafe: set[str] = set(params)
    for node in ast.walk(func):
        if not isinstance(node, ast.Name):
            continue
        parent = parents.get(id(node))
        if isinstance(node.ctx, ast.Store):
            value = parent.value if isinstance(parent, ast.Assign | ast.AnnAssign) else None
            if value is None or not _fresh_dict(value, event):
                unsafe.add(node.id)
        elif isinstance(parent, ast.Subscript) and parent.value is node and isinstance(
                parent.ctx, ast.Store):
            targets.add(node.id)
        elif not (isinstance(parent, ast.Return) and parent.value is node):
            unsafe.add(node.id)
    return frozenset(targets - unsafe)


def _fresh_dict(node: ast.expr, event: str | None) -> bool:
    if isinstance(node, ast.Dict | ast.DictComp):
        return True
    return isinstance(node, ast.Call) and not node.keywords and all(
        isinstance(a, ast.Constant) or (isinstance(a, ast.Name) and a.id == event)
        for a in node.args
    )


@lru_cache(maxsize=64)
def _parsed(path: str, stamp: tuple[int, int]) -> tuple[str, ast.Module] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        return source, ast.parse(source)
    except (OSError, SyntaxError, ValueError):
        return None


def function_source(fn: FunctionType, known: tuple[str, ast.Module] | None = None
                    ) -> tuple[str, ast.Module, ast.FunctionDef, str] | None:
    """(source, tree, def, path) of a module-level function, from its file, or from ``known``
    (its module's source and tree, already parsed); None when it cannot be found as defined."""
    code = fn.__code__
    path = code.co_filename
    if fn.__qualname__ != fn.__name__:
        return None
    if known is not None:
        source, tree = known
    else:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        parsed = _parsed(path, (stat.st_mtime_ns, stat.st_size))
        if parsed is None:
            return None
        source, tree = parsed
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == fn.__name__ and (
            stmt.lineno == code.co_firstlineno
        ):
            return source, tree, stmt, path
    return None
