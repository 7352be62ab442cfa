"""Extraction: a rule's ``rule(event)`` Python turned into the condition IR, from its AST.

Nothing is executed: the extractor reads the source, resolves module constants (from the
executed module when there is one, so configuration flows in) and turns what it can prove
equivalent into IR. Everything else becomes an explicit ``Residual`` with its span.

>>> src = '''
... PORTS = {22, 3389}
... def rule(event):
...     if event.udm("destination_port") not in PORTS:
...         return False
...     return bool(event.udm("source_ip"))
... '''
>>> print(extract_source(src))
and(in(udm.destination_port, PORTS={22, 3389}), truthy(udm.source_ip))
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flowwarden.errors import ExtractionError, Location
from flowwarden.logic import ir
from flowwarden.logic.extract_expr import Env, ExpressionExtractor
from flowwarden.logic.rewrite import branch, simplify, transform
from flowwarden.logic.scope import Container, Marker, Networks, Scope, constant_value
from flowwarden.rules.rule import Rule

MAX_UNROLL = 256
MAX_STEPS = 5_000
EFFECTS = "<effects>"  # the env key of the evaluated-but-unused values (no Python name has "<")


@dataclass(frozen=True)
class Extraction:
    """One rule's extracted condition and how much of it is residual."""

    rule_id: str
    condition: ir.Node

    @property
    def residuals(self) -> tuple[ir.Residual, ...]:
        return ir.residuals(self.condition)

    @property
    def status(self) -> str:
        """``full`` (no residual), ``partial``, or ``none`` (the condition is one residual)."""
        return status(self.condition)


def status(node: ir.Node) -> str:
    """How much of a condition was extracted: ``full`` (no residual), ``partial``, or ``none``
    (the condition is one residual)."""
    if isinstance(node, ir.Residual):
        return "none"
    return "partial" if ir.residuals(node) else "full"


def extract_rule(rule: Rule, strict: bool = False) -> Extraction:
    """Extract a loaded rule's condition, reading constants from its executed module.

    With ``strict``, the first residual raises ExtractionError at its location instead.

    >>> from flowwarden.rules.loader import load_pack, resolve_pack_paths
    >>> pack = load_pack(resolve_pack_paths([]))
    >>> extract_rule(pack.rule("AWS.VPC.SkipDataLogStatus")).status
    'full'
    """
    namespace = vars(rule.module) if rule.module is not None else None
    extraction = Extraction(rule.id, extract_source(rule.source, namespace, rule.source_path))
    if strict and extraction.residuals:
        first = extraction.residuals[0]
        where = first.span.location() if first.span else Location(rule.source_path)
        raise ExtractionError(f"{rule.id}: cannot express {first.reason}", where)
    return extraction


def extract_source(source: str, namespace: Mapping[str, Any] | None = None,
                   path: str | None = None, function: str = "rule",
                   merge: bool = True) -> ir.Node:
    """The IR of ``function`` in ``source``; a residual when it cannot be found or parsed.

    Without ``merge`` the tests stay as written (see ``rewrite.simplify``), for people to read.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        span = ir.Span(exc.lineno or 1, (exc.offset or 1) - 1, exc.lineno or 1, 0, path)
        return ir.Residual(source, f"syntax error: {exc.msg}", span)
    func = next((s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == function), None)
    if func is None:
        return ir.Residual(source, f"no module-level {function}() function")
    return FunctionExtractor(source, tree, func, namespace, path).extract(merge)


class FunctionExtractor(ExpressionExtractor):
    """Turns one function's statement sequence into a boolean IR node."""

    def __init__(self, source: str, tree: ast.Module, func: ast.FunctionDef,
                 namespace: Mapping[str, Any] | None, path: str | None) -> None:
        params = func.args
        event = params.args[0].arg if len(params.args) == 1 else None
        super().__init__(source, Scope(tree, func, namespace), event, path)
        self.func = func
        self.signature_ok = (
            event is not None and not params.posonlyargs and not params.kwonlyargs
            and params.vararg is None and params.kwarg is None and not params.defaults
            and not func.decorator_list
        )
        self.steps = 0

    def extract(self, merge: bool = True) -> ir.Node:
        if not self.signature_ok:
            return self.residual(self.func, "rule() must take exactly one event argument")
        return simplify(self.sequence(list(self.func.body), {EFFECTS: ()}), merge)

    def sequence(self, stmts: list[ast.stmt], env: Env) -> ir.Node:
        """What executing ``stmts`` returns: each early exit becomes a conjunct/disjunct in order."""
        for index, stmt in enumerate(stmts):
            self.steps += 1
            if self.steps > MAX_STEPS:
                return self.residual_stmts(stmts[index:],
                                           f"{self.func.name}() has too many branches to unfold")
            if isinstance(stmt, ast.Pass) or _is_docstring(stmt):
                continue
            handler = getattr(self, f"visit_{type(stmt).__name__}", None)
            if handler is None:
                return self.residual_stmts(stmts[index:], f"{type(stmt).__name__} statement")
            return handler(stmt, stmts[index + 1:], env)
        return self.fall_through(stmts, env)

    def fall_through(self, stmts: list[ast.stmt], env: Env) -> ir.Node:
        """What the function returns when ``stmts`` end without a return."""
        return ir.Residual("", "rule() can end without a return (it returns None, an error)",
                           self.span(stmts[-1]) if stmts else None)

    def visit_Return(self, stmt: ast.Return, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        if stmt.value is None:
            return self.residual(stmt, "returns None, not a bool")
        node = self.value(stmt.value, env)
        if isinstance(node, ir.Residual) or ir.is_boolean(node):
            return self._finish(node, env)
        return self.residual(stmt.value, "returns a value that is not provably a bool")

    def visit_If(self, stmt: ast.If, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        test = self.condition(stmt.test, env)
        # The test runs first: it raises wherever an earlier value it evaluates again would.
        env = {**env, EFFECTS: uncovered(env.get(EFFECTS, ()), test)}
        then = self.sequence([*stmt.body, *rest], env)
        other = self.sequence([*stmt.orelse, *rest], env)
        return branch(test, then, other)

    def visit_For(self, stmt: ast.For, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        """``for x in CONSTANT: if ...: return ...`` unrolled, one copy of the body per item."""
        here = [stmt, *rest]
        if not isinstance(stmt.target, ast.Name) or stmt.orelse or _has_loop_jumps(stmt.body):
            return self.residual_stmts(here, "for loop with else, break, continue or unpacking")
        if any(isinstance(n, ast.Name) and n.id == stmt.target.id and isinstance(n.ctx, ast.Store)
               for s in stmt.body for n in ast.walk(s)):
            return self.residual_stmts(here, "for loop rebinding its variable")
        items = self.loop_items(stmt.iter, env)
        if items is None:
            return self.residual_stmts(here, "for loop over something other than a constant")
        if _assigns(stmt.body):
            # Values assigned in one iteration reach the next and what follows the loop: the
            # loop becomes its statements, one copy of the body per item.
            unrolled: list[ast.stmt] = []
            for item in items:
                unrolled += [ast.copy_location(_Bind(stmt.target.id, item), stmt), *stmt.body]
            return self.sequence([*unrolled, *rest], env)
        bindings = [{**env, stmt.target.id: item} for item in items]
        return self._unrolled(stmt.body, bindings, rest, env)

    def _unrolled(self, body: list[ast.stmt], bindings: list[Env], rest: list[ast.stmt],
                  env: Env) -> ir.Node:
        if not bindings:
            return self.sequence(rest, env)
        first, *others = bindings
        # The body runs with the first binding; falling through continues with the next item.
        node = self.sequence([*body, _Continue()], first)
        tail = self._unrolled(body, others, rest, env)
        return _substitute_continue(node, tail)

    def visit__Continue(self, stmt: _Continue, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        return _CONTINUE

    def visit__Bind(self, stmt: _Bind, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        return self.sequence(rest, {**env, stmt.name: stmt.value})

    # -- local variables ----------------------------------------------------------------------
    def visit_Assign(self, stmt: ast.Assign, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        if len(stmt.targets) != 1:
            return self.residual_stmts([stmt, *rest], "assignment to several targets")
        return self._assign(stmt, stmt.targets[0], stmt.value, rest, env)

    def visit_AnnAssign(self, stmt: ast.AnnAssign, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        if stmt.value is None:
            return self.sequence(rest, env)  # a bare annotation does nothing
        return self._assign(stmt, stmt.target, stmt.value, rest, env)

    def _assign(self, stmt: ast.stmt, target: ast.expr, expr: ast.expr, rest: list[ast.stmt],
                env: Env) -> ir.Node:
        """``name = expr``: later uses of ``name`` on this path read ``expr``'s IR (values are
        functions of the event, so evaluating one again gives the same value)."""
        if not isinstance(target, ast.Name):
            return self.residual_stmts([stmt, *rest], "assignment to other than a name")
        found = self._bindable(expr, env)
        env = {**env, target.id: found}
        return self.sequence(rest, _evaluated(env, found) if isinstance(found, ir.Node) else env)

    def _bindable(self, node: ast.expr, env: Env) -> ir.Node | Marker:
        """What a local variable may hold: a value, or a constant collection for ``in``/``for``."""
        return self.raw(node, env)

    # -- evaluation order ---------------------------------------------------------------------
    def _finish(self, value: ir.Node, env: Env) -> ir.Node:
        return self._with_effects(list(env.get(EFFECTS, ())), value)

    @staticmethod
    def _with_effects(effects: list[ir.Node], value: ir.Node) -> ir.Node:
        """``value`` after those ``effects`` that may raise where ``value`` itself would not."""
        kept = uncovered(effects, value)
        return ir.Seq(kept, value) if kept else value

    # -- calls: all(), any() and helper functions ---------------------------------------------
    def visit_Call(self, node: ast.Call, env: Env) -> ir.Node | Marker:  # noqa: N802
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("all", "any") and self.scope.is_builtin(
                func.id) and len(node.args) == 1 and not node.keywords:
            return self._all_any(node, node.args[0], func.id == "all", env)
        return super().visit_Call(node, env)

    def other_call(self, node: ast.Call, env: Env) -> ir.Node:
        """A call of a plain Python function of the rule's module or a global helper (not the
        standard library's): what it returns, its parameters bound to the arguments, its tests
        conditions where every branch returns a bool; else a residual."""
        from flowwarden.logic.extract_values import ValueExtractor

        values = ValueExtractor(self.source, self.scope.tree, self.func, self.scope.namespace,
                                self.path)
        values.event = self.event
        helper = values._helper(node.func, env)
        if helper is None:
            return super().other_call(node, env)
        return as_condition(values._inline(node, *helper, env))

    def _all_any(self, node: ast.Call, arg: ast.expr, conjunction: bool, env: Env) -> ir.Node:
        """``all``/``any`` of a tuple or list display, or of a generator over a constant."""
        kind = ir.And if conjunction else ir.Or
        if isinstance(arg, ast.Tuple | ast.List) and not any(
                isinstance(e, ast.Starred) for e in arg.elts):
            tests = [self.condition(e, env) for e in arg.elts]
            # The display evaluates every item before all()/any() tests the first one.
            return self._with_effects(tests, kind(tuple(tests), self.span(node)))
        if not (isinstance(arg, ast.GeneratorExp) and len(arg.generators) == 1):
            return self.residual(node, f"{ast.unparse(node.func)}() of other than a tuple, a "
                                       "list or a generator")
        gen = arg.generators[0]
        if gen.is_async or not isinstance(gen.target, ast.Name):
            return self.residual(node, "generator with unpacking")
        items = self.loop_items(gen.iter, env)
        if items is None:
            return self.residual(node, "generator over something other than a constant")
        parts: list[ir.Node] = []
        for item in items:
            scope = {**env, gen.target.id: item}
            guards = [self.condition(c, scope) for c in gen.ifs]
            test = self.condition(arg.elt, scope)
            # An item its `if` clauses skip neither stops all() nor satisfies any().
            parts.append(ir.Or((*(ir.Not(g) for g in guards), test)) if conjunction
                         else ir.And((*guards, test)))
        return kind(tuple(parts), self.span(node))

    def loop_items(self, node: ast.expr, env: Env) -> list[ir.Node | Networks] | None:
        found = self.raw(node, env)
        if isinstance(found, Container) and len(found.items) <= MAX_UNROLL:
            return [ir.Const(v, found.name) for v in found.items]
        if isinstance(found, Networks) and len(found.networks) <= MAX_UNROLL:
            return [Networks((n,), found.name, found.strict) for n in found.networks]
        return None

    def residual_stmts(self, stmts: list[ast.stmt], reason: str) -> ir.Residual:
        stmts = [s for s in stmts if not isinstance(s, _Continue | _Bind)]  # no source: synthetic
        if not stmts:
            return ir.Residual("", reason, None)
        text = "\n".join(ast.get_source_segment(self.source, s) or ast.unparse(s) for s in stmts)
        first, last = stmts[0], stmts[-1]
        span = ir.Span(first.lineno, first.col_offset, last.end_lineno or last.lineno,
                       last.end_col_offset or 0, self.path)
        return ir.Residual(text, reason, span)


def _is_stdlib(namespace: Mapping[str, Any] | None) -> bool:
    """True when a function with these globals belongs to the standard library."""
    module = str((namespace or {}).get("__name__", ""))
    return module.split(".")[0] in sys.stdlib_module_names


def as_condition(node: ir.Node) -> ir.Node:
    """A value whose every outcome is a bool (a helper's ``if ...: return True``) as
    and/or/not, which backends render as conditions; any other value as it is."""
    if isinstance(node, ir.IfElse):
        then, other = as_condition(node.then), as_condition(node.other)
        if ir.is_boolean(then) and ir.is_boolean(other):
            return branch(node.test, then, other)
    if isinstance(node, ir.Seq):
        value = as_condition(node.value)
        if value is not node.value:
            return ir.Seq(node.effects, value, node.span)
    return node


def uncovered(effects: Iterable[ir.Node], later: ir.Node) -> tuple[ir.Node, ...]:
    """The ``effects`` that may raise where evaluating ``later`` would not.

    An effect is covered when each node in it that may raise by itself is evaluated whenever
    ``later`` is: nodes are functions of the event, so ``later`` raises too (or earlier).
    """
    always = set(_always_evaluated(later))
    return tuple(e for e in effects
                 if not all(n in always for n in ir.walk(e) if ir.raises_itself(n)))


def _evaluated(env: Env, node: ir.Node) -> Env:
    """``env`` noting that ``node`` was evaluated (when it may raise)."""
    if not ir.may_raise(node):
        return env
    return {**env, EFFECTS: (*env.get(EFFECTS, ()), node)}


def _always_evaluated(node: ir.Node) -> Iterator[ir.Node]:
    """``node`` and the nodes evaluated whenever it is (not those in branches taken on some
    events only)."""
    yield node
    if isinstance(node, ir.IfElse):
        children: tuple[ir.Node, ...] = (node.test,)
    elif isinstance(node, ir.Coalesce | ir.Default):
        children = (node.operand,)
    elif isinstance(node, ir.And | ir.Or):
        children = node.operands[:1]
    else:
        children = node.children()
    for child in children:
        yield from _always_evaluated(child)


def _assigns(body: list[ast.stmt]) -> bool:
    """True when ``body`` binds a name (so a copy of it changes what later copies see)."""
    return any(isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
               for s in body for n in ast.walk(s))


class _Bind(ast.stmt):
    """A synthetic statement: bind a loop variable to the next item of an unrolled loop."""

    _fields = ()

    def __init__(self, name: str, value: Any) -> None:
        super().__init__()
        self.name = name
        self.value = value


class _Continue(ast.stmt):
    """A synthetic statement: the end of one unrolled loop iteration."""

    _fields = ()


_CONTINUE = ir.Residual("<next loop item>", "internal: continue with the next loop item")


def _substitute_continue(node: ir.Node, tail: ir.Node) -> ir.Node:
    return transform(node, lambda n: tail if n == _CONTINUE else n)


def _has_loop_jumps(body: list[ast.stmt]) -> bool:
    return any(isinstance(n, ast.Break | ast.Continue) for s in body for n in ast.walk(s))


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(
        stmt.value.value, str
    )


__all__ = ["Extraction", "extract_rule", "extract_source", "constant_value", "status"]
