"""``rule_constants`` values checked against the constant they replace.

A YAML value of the wrong shape would otherwise reach the rule unchanged and make it raise on
every event (``APPROVED_PORTS: "80"`` makes ``port in APPROVED_PORTS`` a TypeError), so a scan
would report nothing. The rule's own default says what it expects: its type, and for a
collection the type its items share.

>>> like(frozenset({80, 443}), [22, 8080]) == frozenset({22, 8080})
True
>>> like(frozenset({80, 443}), "80")
Traceback (most recent call last):
ValueError: expected a list of integers (the rule's default is frozenset({80, 443})), got a string: '80'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCALARS: tuple[type, ...] = (bool, int, float, str)
NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
         list: "a list", dict: "a mapping", type(None): "null"}
PLURALS = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
MAX_SHOWN = 60


def like(default: Any, value: Any) -> Any:
    """``value`` (parsed YAML) converted to the type of ``default``; ValueError if it cannot be."""
    try:
        return _convert(default, value)
    except _Mismatch as exc:
        shown = repr(default)
        shown = shown if len(shown) <= MAX_SHOWN else shown[:MAX_SHOWN] + "..."
        got = repr(exc.value)
        got = got if len(got) <= MAX_SHOWN else got[:MAX_SHOWN] + "..."
        what = f"an item that is {_name(exc.value)}" if exc.item else _name(exc.value)
        raise ValueError(f"expected {describe(default)} (the rule's default is {shown}), "
                         f"got {what}: {got}") from None


class _Mismatch(Exception):
    def __init__(self, value: Any, item: bool = False) -> None:
        super().__init__()
        self.value = value
        self.item = item


def describe(default: Any) -> str:
    """What a value replacing ``default`` must be, in words.

    >>> describe({"a", "b"}), describe(()), describe(3), describe({"k": 1})
    ('a list of strings', 'a list', 'an integer', 'a mapping')
    """
    kind = _scalar_kind(default)
    if kind is not None:
        return NAMES[kind]
    if isinstance(default, set | frozenset | list | tuple):
        item = _item_template(default)
        kind = _scalar_kind(item) if item is not None else None
        return f"a list of {PLURALS[kind]}" if kind is not None else "a list"
    if isinstance(default, Mapping):
        return "a mapping"
    return f"a value like {type(default).__name__}"


def _convert(default: Any, value: Any) -> Any:
    if default is None:
        return value  # nothing to infer from
    kind = _scalar_kind(default)
    if kind is not None:
        return _scalar(kind, value)
    if isinstance(default, set | frozenset | list | tuple):
        if not isinstance(value, list | tuple | set | frozenset):
            raise _Mismatch(value)
        template = _item_template(default)
        hashable = isinstance(default, set | frozenset)
        items = [_item(template, item, hashable) for item in value]
        return type(default)(items)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch(value)
        template = _item_template(list(default.values()))
        return {k: _item(template, v, False) for k, v in value.items()}
    return value  # a type YAML cannot write (a compiled pattern, a network): the rule decides


def _item(template: Any, item: Any, hashable: bool) -> Any:
    if template is not None:
        try:
            converted = _convert(template, item)
        except _Mismatch:
            raise _Mismatch(item, item=True) from None
    else:
        converted = item
    if hashable and isinstance(converted, list | dict | set):
        raise _Mismatch(item, item=True)  # a set's items are single values, not lists
    return converted


def _scalar(kind: type, value: Any) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise _Mismatch(value)
    return value


def _scalar_kind(value: Any) -> type | None:
    return type(value) if type(value) in SCALARS else None


def _item_template(items: Any) -> Any:
    """One item standing for all of them when they share a type, else None (anything goes)."""
    values = list(items)
    if not values or len({type(v) for v in values}) != 1:
        return None
    return values[0]


def _name(value: Any) -> str:
    for kind, name in NAMES.items():
        if type(value) is kind:
            return name
    if isinstance(value, list | tuple | set | frozenset):
        return "a list"
    return f"a {type(value).__name__}"
