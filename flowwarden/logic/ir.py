"""The condition IR: small, immutable, hashable nodes that every backend renders.

Nodes compare structurally; a node's ``span`` (where it came from) never takes part in
equality or hashing. Edit a node with ``dataclasses.replace``.

>>> node = And((InSet(Udm("destination_port"), frozenset({22})), Truthy(Udm("source_ip"))))
>>> node == And((InSet(Udm("destination_port"), frozenset({22})), Truthy(Udm("source_ip"))))
True
>>> print(node)
and(in(udm.destination_port, {22}), truthy(udm.source_ip))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import Field as DataclassField
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flowwarden.errors import Location

Scalar = int | str | bool | None
# Attributes of ip_network(x) / ip_address(x) that an IpCheck may test (present on v4 and v6).
IP_ATTRS = (
    "is_global", "is_private", "is_loopback", "is_multicast", "is_link_local", "is_reserved",
    "is_unspecified",
)


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node came from: 1-based lines and 0-based columns, as Python's ``ast`` counts."""

    line: int
    col: int
    end_line: int
    end_col: int
    path: str | None = None

    def location(self) -> Location:
        """The span's start as an error location (1-based column)."""
        return Location(self.path or "<rule>", self.line, self.col + 1)


class Node:
    """Base of every IR node; ``BOOLEAN`` says the node always evaluates to a Python bool."""

    __slots__ = ()
    BOOLEAN: ClassVar[bool] = False
    # Every node class is a dataclass; declared so that type checkers know it too.
    __dataclass_fields__: ClassVar[dict[str, DataclassField[Any]]]

    def children(self) -> tuple[Node, ...]:
        """The node's direct child nodes, in evaluation order."""
        kids: list[Node] = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Node):
                kids.append(value)
            elif isinstance(value, tuple):
                kids.extend(v for v in value if isinstance(v, Node))
        return tuple(kids)

    def __str__(self) -> str:
        from flowwarden.logic.render.text import to_text

        return to_text(self)


@dataclass(frozen=True, slots=True)
class Udm(Node):
    """A data-model field by its common name: ``event.udm(name)``."""

    name: str
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Field(Node):
    """A raw field by key path: ``event.get(k)`` / ``event.deep_get(*keys)`` (None if absent).
    Keys are found as the event finds them (exact, else in any case); an ``exact`` field (a
    data-model path) only by its exact names, as Panther's data models look paths up."""

    keys: tuple[str, ...]
    span: Span | None = field(default=None, compare=False, repr=False)
    exact: bool = False


@dataclass(frozen=True, slots=True)
class Const(Node):
    """A literal (int, str, bool or None); ``name`` is the module constant it came from."""

    value: Scalar
    name: str | None = None
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def BOOLEAN(self) -> bool:  # type: ignore[override]  # noqa: N802 - mirrors the ClassVar
        return isinstance(self.value, bool)


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """``left <op> right`` with Python semantics (``<`` on None raises TypeError)."""

    BOOLEAN: ClassVar[bool] = True
    op: str
    left: Node
    right: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class InSet(Node):
    """``operand in values``; ``hashed`` for a set container (an unhashable operand raises)."""

    BOOLEAN: ClassVar[bool] = True
    operand: Node
    values: frozenset[int | str]
    name: str | None = None
    hashed: bool = False
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    """``operand is None``."""

    BOOLEAN: ClassVar[bool] = True
    operand: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Truthy(Node):
    """``bool(operand)``: Python truthiness (0, "" and None are false)."""

    BOOLEAN: ClassVar[bool] = True
    operand: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Coalesce(Node):
    """``operand or default``: the operand when truthy, else the default (a value, not a bool)."""

    operand: Node
    default: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Default(Node):
    """``operand``, or ``default`` where it is None: ``deep_get(..., default=d)``,
    ``event.udm(name, default=d)``. The default is a constant (evaluated first, never raising)."""

    operand: Node
    default: Const
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Get(Node):
    """``event.get(key, default)``: the key's value where the event has the key (None too),
    else the constant ``default``. Backends over a table tell presence from its columns."""

    operand: Field
    default: Const
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Contains(Node):
    """``item in container`` for a container that is a value (a str holding a substring, say);
    ``in`` a None or an int raises TypeError, as does a non-str ``in`` a str."""

    BOOLEAN: ClassVar[bool] = True
    item: Node
    container: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StrTest(Node):
    """``operand.startswith(affixes)`` / ``.endswith``: true when one of the constant strings
    begins (ends) it; an operand other than a str raises AttributeError."""

    BOOLEAN: ClassVar[bool] = True
    method: str
    operand: Node
    affixes: tuple[str, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StrCase(Node):
    """``operand.lower()`` / ``.upper()`` (``method``); an operand other than a str raises."""

    method: str
    operand: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IpCheck(Node):
    """``ip_network(operand, strict=strict).<attr>`` (or ``ip_address``); invalid input raises."""

    BOOLEAN: ClassVar[bool] = True
    operand: Node
    attr: str
    parse: str = "network"
    strict: bool = True
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IpInCidrs(Node):
    """``any(ip_address(operand) in ip_network(n, strict=strict) for n in networks)``, in order."""

    BOOLEAN: ClassVar[bool] = True
    operand: Node
    networks: tuple[str, ...]
    name: str | None = None
    strict: bool = True
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class And(Node):
    """Short-circuit conjunction, left to right."""

    BOOLEAN: ClassVar[bool] = True
    operands: tuple[Node, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Or(Node):
    """Short-circuit disjunction, left to right."""

    BOOLEAN: ClassVar[bool] = True
    operands: tuple[Node, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Not(Node):
    """``not operand``."""

    BOOLEAN: ClassVar[bool] = True
    operand: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Residual(Node):
    """Python the extractor could not express: evaluation reaching it needs the real rule."""

    source: str
    reason: str
    span: Span | None = field(default=None, compare=False, repr=False)


# -- value nodes: what alert functions (title, dedup, alert_context...) are made of ----------------
@dataclass(frozen=True, slots=True)
class Str(Node):
    """``str(operand)``, as ``str()``, an f-string's ``{operand}`` and ``%s`` format it."""

    operand: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Concat(Node):
    """Strings joined in order: each part is a ``Str`` or a str constant (an f-string)."""

    parts: tuple[Node, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Add(Node):
    """``left + right`` with Python semantics: str + str joins; None or mixed types raise."""

    left: Node
    right: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IntText(Node):
    """``"%d" % operand``: an int (or bool) in decimal; None and str raise TypeError."""

    operand: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IfElse(Node):
    """``then if test else other``: ``test`` (a condition) first, then one branch."""

    test: Node
    then: Node
    other: Node
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class DictOf(Node):
    """A dict built from constant str keys; values evaluate in order, a repeated key keeps its
    first position and its last value (as a dict display does)."""

    keys: tuple[str, ...]
    values: tuple[Node, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ListOf(Node):
    """A list display: its items evaluated in order."""

    items: tuple[Node, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Lookup(Node):
    """``MAPPING.get(operand, default)`` on a constant dict of scalars (``name``); the operand
    is hashed (a dict or list raises), the default is evaluated before the look-up."""

    operand: Node
    entries: tuple[tuple[Scalar, Scalar], ...]
    default: Node
    name: str | None = None
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Seq(Node):
    """``value``, after ``effects``: expressions the function evaluated earlier (a local
    variable's value, say) whose results it does not use, kept for the errors they may raise."""

    effects: tuple[Node, ...]
    value: Node
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def BOOLEAN(self) -> bool:  # type: ignore[override]  # noqa: N802 - mirrors the ClassVar
        return bool(self.value.BOOLEAN)


CONDITION_TYPES: tuple[type[Node], ...] = (
    Udm, Field, Const, Compare, InSet, IsNull, Truthy, Coalesce, Default, Get, Contains, StrTest,
    StrCase, IpCheck, IpInCidrs, And, Or, Not, Residual,
)
VALUE_TYPES: tuple[type[Node], ...] = (
    Str, Concat, Add, IntText, IfElse, DictOf, ListOf, Lookup, Seq,
)
NODE_TYPES: tuple[type[Node], ...] = CONDITION_TYPES + VALUE_TYPES
TRUE = Const(True)
FALSE = Const(False)


def is_boolean(node: Node) -> bool:
    """True when the node always evaluates to a bool (so it may be returned by rule())."""
    return bool(node.BOOLEAN)


def walk(node: Node) -> Iterator[Node]:
    """The node and all its descendants, depth first, in evaluation order."""
    yield node
    for child in node.children():
        yield from walk(child)


def may_raise(node: Node) -> bool:
    """True unless evaluating ``node`` provably never raises, on any event.

    Reading fields (with or without defaults), constants, ``str()``, joining, truth tests,
    ``==``, ``is None`` and building dicts and lists never raise; ``+``, ``%d``, ordering
    comparisons, hashing into a set or a mapping, ``in`` a value, str methods, IP parsing,
    data-model names (a method may raise) and residuals may.
    """
    return any(raises_itself(n) for n in walk(node))


def raises_itself(node: Node) -> bool:
    """True when ``node``'s own operation may raise, its operands' values given."""
    if isinstance(node, Compare):
        return node.op not in ("==", "!=")
    if isinstance(node, InSet):
        return node.hashed
    return isinstance(node, Udm | Add | IntText | Lookup | IpCheck | IpInCidrs | Residual
                      | Contains | StrTest | StrCase)


def residuals(node: Node) -> tuple[Residual, ...]:
    """Every Residual inside ``node``."""
    return tuple(n for n in walk(node) if isinstance(n, Residual))
