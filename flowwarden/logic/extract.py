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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowwarden.errors import ExtractionError, Location
from flowwarden.logic import ir
from flowwarden.logic.extract_expr import Env, ExpressionExtractor
from flowwarden.logic.rewrite import branch, simplify, transform
from flowwarden.logic.scope import Container, Networks, Scope, constant_value
from flowwarden.rules.rule import Rule

MAX_UNROLL = 256
MAX_STEPS = 5_000


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
        return simplify(self.sequence(list(self.func.body), {}), merge)

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
            return node
        return self.residual(stmt.value, "returns a value that is not provably a bool")

    def visit_If(self, stmt: ast.If, rest: list[ast.stmt], env: Env) -> ir.Node:  # noqa: N802
        test = self.condition(stmt.test, env)
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

    def loop_items(self, node: ast.expr, env: Env) -> list[ir.Node | Networks] | None:
        found = self.raw(node, env)
        if isinstance(found, Container) and len(found.items) <= MAX_UNROLL:
            return [ir.Const(v, found.name) for v in found.items]
        if isinstance(found, Networks) and len(found.networks) <= MAX_UNROLL:
            return [Networks((n,), found.name, found.strict) for n in found.networks]
        return None

    def residual_stmts(self, stmts: list[ast.stmt], reason: str) -> ir.Residual:
        text = "\n".join(ast.get_source_segment(self.source, s) or ast.unparse(s) for s in stmts)
        first, last = stmts[0], stmts[-1]
        span = ir.Span(first.lineno, first.col_offset, last.end_lineno or last.lineno,
                       last.end_col_offset or 0, self.path)
        return ir.Residual(text, reason, span)


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
