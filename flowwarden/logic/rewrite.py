"""IR -> IR rewrites: branch folding, simplification, data-model field resolution.

Every rewrite preserves Python semantics exactly, including which evaluations may raise and in
what order: an operand that could raise is never dropped or moved before another.

>>> from flowwarden.logic.ir import And, Compare, Const, Not, Udm
>>> port = Udm("destination_port")
>>> print(simplify(Not(And((Compare("!=", port, Const(53)), Compare("!=", port, Const(5353)))))))
in(udm.destination_port, {53, 5353})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

from flowwarden.logic import ir
from flowwarden.rules.datamodel import DataModel

# `not (x == y)` is `x != y` for every value an event holds (no type defines a custom __ne__).
NEGATED_EQ = {"==": "!=", "!=": "=="}


def transform(node: ir.Node, fn: Callable[[ir.Node], ir.Node]) -> ir.Node:
    """Rebuild ``node`` bottom-up, replacing each node by ``fn(node)`` after its children."""
    changes: dict[str, ir.Node | tuple[object, ...]] = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, ir.Node):
            new = transform(value, fn)
            if new is not value:
                changes[f.name] = new
        elif isinstance(value, tuple) and any(isinstance(v, ir.Node) for v in value):
            new_items = tuple(transform(v, fn) if isinstance(v, ir.Node) else v for v in value)
            if any(a is not b for a, b in zip(new_items, value, strict=True)):
                changes[f.name] = new_items
    rebuilt = dataclasses.replace(node, **changes) if changes else node
    return fn(rebuilt)


def branch(test: ir.Node, then: ir.Node, other: ir.Node) -> ir.Node:
    """``then if test else other`` (``test`` evaluated once, first) as and/or/not.

    ``or(and(t, a), and(not(t), b))`` is exact: an error in ``t`` surfaces from the first
    ``and``; when ``t`` is true and ``a`` false, ``not(t)`` stops the second before ``b``.
    """
    if then == ir.TRUE and other == ir.FALSE:
        return test
    if then == ir.FALSE:
        return ir.And((ir.Not(test), other))
    if then == ir.TRUE:
        return ir.Or((test, other))
    if other == ir.FALSE:
        return ir.And((test, then))
    if other == ir.TRUE:
        return ir.Or((ir.Not(test), then))
    return ir.Or((ir.And((test, then)), ir.And((ir.Not(test), other))))


def simplify(node: ir.Node, merge: bool = True) -> ir.Node:
    """Flatten and/or, fold constants, drop double negation, merge comparison chains.

    ``not`` of an and/or whose operands are all negated becomes the dual of the operands (De
    Morgan), so ``not (not a or not b)`` reads ``a and b``. With ``merge`` (for backends),
    ``x != 53 and x != 5353`` becomes ``not in(x, {53, 5353})`` and consecutive CIDR tests of
    one operand become one; without it the tests stay as written, for people to read.

    >>> from flowwarden.logic.ir import And, Compare, Const, Not, Or, Truthy, Udm
    >>> print(simplify(Not(Or((Not(Truthy(Udm("a"))), Not(Truthy(Udm("b"))))))))
    and(truthy(udm.a), truthy(udm.b))
    >>> port = Udm("destination_port")
    >>> chain = And((Compare("!=", port, Const(53)), Compare("!=", port, Const(5353))))
    >>> print(simplify(chain, merge=False))
    and(ne(udm.destination_port, 53), ne(udm.destination_port, 5353))
    >>> print(simplify(chain))
    not_in(udm.destination_port, {53, 5353})
    """
    return transform(node, partial(_simplify_one, merge=merge))


def _simplify_one(node: ir.Node, merge: bool) -> ir.Node:
    if isinstance(node, ir.Not):
        inner = node.operand
        if isinstance(inner, ir.Not):
            return inner.operand
        if isinstance(inner, ir.Const) and isinstance(inner.value, bool):
            return ir.Const(not inner.value)
        if isinstance(inner, ir.Compare) and inner.op in NEGATED_EQ:
            return dataclasses.replace(inner, op=NEGATED_EQ[inner.op])
        if isinstance(inner, ir.And | ir.Or):
            negated = tuple(o.operand for o in inner.operands if isinstance(o, ir.Not))
            if len(negated) == len(inner.operands):
                # De Morgan keeps evaluation order and short-circuits: errors stay where they were.
                dual = ir.Or if isinstance(inner, ir.And) else ir.And
                return _junction(dual(negated, inner.span), merge)
        return node
    if isinstance(node, ir.And | ir.Or):
        return _junction(node, merge)
    return node


def _junction(node: ir.And | ir.Or, merge: bool) -> ir.Node:
    kind = type(node)
    neutral, absorbing = (ir.TRUE, ir.FALSE) if kind is ir.And else (ir.FALSE, ir.TRUE)
    flat: list[ir.Node] = []
    for child in node.operands:
        parts = child.operands if isinstance(child, kind) else (child,)
        for part in parts:
            if part == neutral:
                continue
            flat.append(part)
            if part == absorbing:
                break  # what follows is never evaluated
        if flat and flat[-1] == absorbing:
            break
    merged = _merge_cidrs(_merge_compares(flat, kind), kind) if merge else flat
    if not merged:
        return neutral
    if len(merged) == 1:
        return merged[0]
    return kind(tuple(merged), node.span)


def _merge_compares(parts: list[ir.Node], kind: type[ir.And | ir.Or]) -> list[ir.Node]:
    """``x != a and x != b`` -> ``not in(x, {a, b})``; ``x == a or x == b`` -> ``in(x, {a, b})``."""
    op = "!=" if kind is ir.And else "=="
    out: list[ir.Node] = []
    run: list[tuple[ir.Compare, int | str]] = []

    def flush() -> None:
        if len(run) >= 2:
            found = ir.InSet(run[0][0].left, frozenset(value for _, value in run))
            out.append(ir.Not(found) if kind is ir.And else found)
        else:
            out.extend(compare for compare, _ in run)
        run.clear()

    for part in parts:
        literal = _literal_compare(part, op)
        if literal is None:
            flush()
            out.append(part)
            continue
        if run and literal[0].left != run[0][0].left:
            flush()
        run.append(literal)
    flush()
    return out


def _literal_compare(node: ir.Node, op: str) -> tuple[ir.Compare, int | str] | None:
    """``(node, literal)`` when ``node`` is ``x <op> literal`` with an int or str literal."""
    if not (isinstance(node, ir.Compare) and node.op == op and isinstance(node.right, ir.Const)):
        return None
    value = node.right.value
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return node, value


def _merge_cidrs(parts: list[ir.Node], kind: type[ir.And | ir.Or]) -> list[ir.Node]:
    """Consecutive CIDR tests of one operand (an unrolled loop) become one ``in_cidr``."""
    negated = kind is ir.And
    out: list[ir.Node] = []
    for part in parts:
        test = part.operand if negated and isinstance(part, ir.Not) else part
        prev = out[-1] if out else None
        prev_test = prev.operand if negated and isinstance(prev, ir.Not) else prev
        if isinstance(test, ir.IpInCidrs) and isinstance(prev_test, ir.IpInCidrs) and (
            (negated and isinstance(part, ir.Not) and isinstance(prev, ir.Not)) or not negated
        ) and prev_test.operand == test.operand and prev_test.strict == test.strict:
            name = prev_test.name if prev_test.name == test.name else None
            both = dataclasses.replace(prev_test, networks=prev_test.networks + test.networks, name=name)
            out[-1] = ir.Not(both) if negated else both
        else:
            out.append(part)
    return out


def resolve_fields(node: ir.Node, model: DataModel | None) -> ir.Node:
    """Replace each ``Udm`` by the ``Field`` its data model maps it to, where that is exact.

    Method mappings and paths with indexes or wildcards stay ``Udm`` (only Python can resolve
    them); an unmapped name, or no data model, reads the raw key as ``event.udm`` does.
    """

    def resolve(n: ir.Node) -> ir.Node:
        if not isinstance(n, ir.Udm):
            return n
        mapping = model.mappings.get(n.name) if model is not None else None
        if mapping is None:
            return ir.Field((n.name,), n.span)
        keys = mapping.keys
        if keys is None or not all(isinstance(k, str) for k in keys):
            return n
        return ir.Field(tuple(keys), n.span, exact=True)

    return transform(node, resolve)
