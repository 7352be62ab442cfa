"""What the names in a rule's ``rule()`` refer to: constants, ipaddress functions, locals.

Extraction reads constants from the executed module (so config-bound values and per-rule
``rule_constants`` overrides flow in) and falls back to literal module-level assignments when
there is no module.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowwarden.logic.ir import Const, Node

MAX_CONTAINER = 10_000
MISSING: Any = object()  # ``Scope.global_object`` found nothing usable


@dataclass(frozen=True)
class Container:
    """A constant set/list/tuple of str/int, consumable only by ``in``."""

    values: frozenset[int | str]
    name: str | None
    hashed: bool
    items: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Networks:
    """Constant IP networks: one (``ip_network("...")``, a network constant) or an iterable of them.

    Only a single network may stand on the right of ``in``: an address ``in`` a list of networks
    compares by equality and is always False. Iterables are for ``for`` loops.
    """

    networks: tuple[str, ...]
    name: str | None
    strict: bool = True
    iterable: bool = False


@dataclass(frozen=True)
class IpValue:
    """``ip_network(operand)`` / ``ip_address(operand)``: only ``.is_*`` or ``in`` consume it."""

    operand: Node
    parse: str
    strict: bool = True


Marker = Container | Networks | IpValue


def _plain(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def constant_value(name: str, value: Any) -> Node | Marker | None:
    """A module-level value as IR (scalar), a marker (container), or None if unusable.

    >>> constant_value("PORTS", frozenset({22}))
    Container(values=frozenset({22}), name='PORTS', hashed=True, items=(22,))
    """
    if value is None or isinstance(value, int | str | bool):
        return Const(value, name)
    if isinstance(value, set | frozenset | list | tuple) and len(value) <= MAX_CONTAINER:
        items = tuple(value)
        if all(_plain(v) for v in items):
            return Container(frozenset(items), name, isinstance(value, set | frozenset), items)
        if items and all(isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network) for v in items):
            return Networks(tuple(str(v) for v in items), name, iterable=True)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return Networks((str(value),), name)
    return None


class Scope:
    """Name resolution for one ``rule()`` function inside its module."""

    def __init__(self, tree: ast.Module, func: ast.FunctionDef,
                 namespace: Mapping[str, Any] | None) -> None:
        self.namespace = namespace
        self.tree = tree
        self.module_names = _module_assigned(tree)
        self.rebound = _global_rebinds(tree)
        self.locals = _local_names(func)
        self.literals = _literal_assignments(tree)
        self.imports = _imports(tree)
        self.imported = _imported_names(tree) - self.module_names

    def is_local(self, name: str) -> bool:
        return name in self.locals

    def ip_function(self, name: str) -> str | None:
        """"network"/"address" when ``name`` is ipaddress.ip_network/ip_address here."""
        if name in self.locals:
            return None
        value = self._global(name)
        if value is ipaddress.ip_network:
            return "network"
        if value is ipaddress.ip_address:
            return "address"
        return None

    def is_ipaddress_module(self, name: str) -> bool:
        return name not in self.locals and self._global(name) is ipaddress

    def is_deep_get(self, name: str) -> bool:
        """True when ``name`` is Panther's ``panther_base_helpers.deep_get`` (its code as
        published: ``default`` where a step is missing, not a mapping, or None)."""
        found = self.global_object(name)
        return callable(found) and getattr(found, "__module__", None) == "panther_base_helpers" and (
            getattr(found, "__name__", None) == "deep_get") and _same_code(found, DEEP_GET)

    def is_builtin(self, name: str) -> bool:
        """True when ``name`` is not shadowed in the module or the function."""
        return name not in self.locals and name not in self.module_names and name not in (
            self.namespace or {}
        ) and hasattr(builtins, name)

    def constant(self, name: str) -> Node | Marker | None:
        """The module constant ``name`` as IR, or None when it is not a usable constant.

        A name imported from another module (``from helpers import KEYS``) is one only when its
        value cannot change in place (a str, a number, a tuple or frozenset of them): that
        module's code is not read here, and may change a list or set it shares.
        """
        if name in self.locals or name in self.rebound:
            return None
        if name in self.imported and self.namespace is not None and _immutable(
                self.namespace.get(name, MISSING)):
            return constant_value(name, self.namespace[name])
        if name not in self.module_names:
            return None
        if self.namespace is not None:
            if name not in self.namespace:
                return None
            return constant_value(name, self.namespace[name])
        if name not in self.literals:
            return None
        return constant_value(name, self.literals[name])

    def global_object(self, name: str) -> Any:
        """The module-level object ``name`` refers to here (a function, a module, a mapping), or
        ``MISSING`` when it is local, rebound by some function, or unknown.

        Without an executed module only literal assignments are known.
        """
        if name in self.locals or name in self.rebound:
            return MISSING
        if self.namespace is not None:
            return self.namespace.get(name, MISSING)
        return self.literals.get(name, MISSING) if name in self.module_names else MISSING

    def is_mutated(self, name: str) -> bool:
        """True when the module's code may change the object ``name`` refers to in place: an
        item assigned or deleted, or any attribute but ``get`` used."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Subscript):
                changes = isinstance(node.ctx, ast.Store | ast.Del)
            elif isinstance(node, ast.Attribute):
                changes = node.attr != "get"
            else:
                continue
            if changes and isinstance(node.value, ast.Name) and node.value.id == name:
                return True
        return False

    def _global(self, name: str) -> Any:
        if self.namespace is not None:
            return self.namespace.get(name, getattr(builtins, name, None))
        return self.imports.get(name)


# panther_base_helpers.deep_get as panther-analysis publishes it (docstring aside): for a
# scalar default it returns what PantherEvent.deep_get does.
DEEP_GET = """
def deep_get(dictionary: dict, *keys, default=None):
    out = reduce(
        lambda d, key: d.get(key, default) if isinstance(d, Mapping) else default, keys, dictionary
    )
    if out is None:
        return default
    return out
"""


def _same_code(fn: Any, source: str) -> bool:
    """True when ``fn``'s definition is ``source``'s (same AST, docstrings and names of the
    globals it reads aside: ``reduce`` and ``Mapping`` must be the standard ones)."""
    try:
        tree = ast.parse(inspect.getsource(fn).strip() + "\n")
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    func = tree.body[0] if tree.body else None
    if not isinstance(func, ast.FunctionDef):
        return False
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    wanted = ast.parse(source).body[0]
    assert isinstance(wanted, ast.FunctionDef)
    same = ast.dump(ast.Module(body, [])) == ast.dump(ast.Module(wanted.body, [])) and ast.dump(
        func.args) == ast.dump(wanted.args)
    names = getattr(fn, "__globals__", {})
    return same and names.get("reduce") is functools.reduce and names.get("Mapping") is Mapping


def _module_assigned(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for stmt in tree.body:
        for node in ast.walk(stmt) if not isinstance(stmt, ast.FunctionDef | ast.ClassDef) else ():
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def _imported_names(tree: ast.Module) -> set[str]:
    """Names the module binds with ``from ... import``, at its top level."""
    return {alias.asname or alias.name for stmt in tree.body if isinstance(stmt, ast.ImportFrom)
            for alias in stmt.names if alias.name != "*"}


def _immutable(value: Any) -> bool:
    """True for a value no code can change in place: None, a bool, number or str, or a tuple
    or frozenset of such values.

    >>> _immutable(("a", 1)), _immutable(["a"]), _immutable(("a", ["b"]))
    (True, False, False)
    """
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, tuple | frozenset) and all(_immutable(v) for v in value)


def _global_rebinds(tree: ast.Module) -> set[str]:
    """Names some function declares ``global``: they may change at run time."""
    return {n for node in ast.walk(tree) if isinstance(node, ast.Global) for n in node.names}


def _local_names(func: ast.FunctionDef) -> set[str]:
    names = {a.arg for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]}
    names |= {a.arg for a in (func.args.vararg, func.args.kwarg) if a is not None}
    declared_global = {n for node in ast.walk(func) if isinstance(node, ast.Global) for n in node.names}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node is not func:
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names - declared_global


def _literal_assignments(tree: ast.Module) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                values[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except ValueError:
                values.pop(stmt.targets[0].id, None)
    return values


def _imports(tree: ast.Module) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.name == "ipaddress":
                    found[alias.asname or alias.name] = ipaddress
        elif isinstance(stmt, ast.ImportFrom) and stmt.module == "ipaddress":
            for alias in stmt.names:
                found[alias.asname or alias.name] = getattr(ipaddress, alias.name, None)
    return found
