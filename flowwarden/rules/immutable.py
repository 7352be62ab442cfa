"""Read-only views of event data, so a rule cannot change what the next rule sees.

They behave as Panther's ``panther_core.immutable`` containers do, since rules written for
Panther rely on it: keys are found whatever their case (the exact key first), ``copy()`` gives
a mutable deep copy, a list compares equal to a list or tuple with the same items, and ``repr``
is Panther's (titles often format these values). Where ``panther_core`` is installed,
``isinstance`` against its classes holds for these too (``adopt``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from abc import ABCMeta
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

SCALARS = frozenset({str, int, float, bool, type(None)})
_MISSING: Any = object()


def freeze(value: Any) -> Any:
    """Wrap dicts and lists in read-only views; scalars pass through."""
    if type(value) in SCALARS:
        return value
    if isinstance(value, ImmutableCaseInsensitiveDict | ImmutableList):
        return value
    if isinstance(value, Mapping):
        return ImmutableCaseInsensitiveDict(value)
    if isinstance(value, list | tuple):
        return ImmutableList(value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, copied all the way down (for JSON output and ``copy()``)."""
    if type(value) in SCALARS:
        return value
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, ImmutableList | list | tuple):
        return [thaw(v) for v in value]
    return value


class ImmutableCaseInsensitiveDict(Mapping[str, Any]):
    """A read-only mapping whose nested containers are read-only too, and whose string keys are
    found whatever their case: the exact key first, else the first key (in order) equal to it
    lowercased, as Panther's event does. Iteration and ``len`` see the keys as they are."""

    __slots__ = ("_data", "_folded")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self._folded: dict[str, Any] | None = None  # lowercased key -> first original key

    def _key(self, key: Any) -> Any:
        """The key of the data that ``key`` names, or ``_MISSING``."""
        if key in self._data:
            return key
        if not isinstance(key, str) or not self._data:
            return _MISSING
        if self._folded is None:
            # Built once, on the first miss: most lookups use the exact key and never pay.
            folded: dict[str, Any] = {}
            for original in self._data:
                if isinstance(original, str):
                    folded.setdefault(original.lower(), original)
            self._folded = folded
        return self._folded.get(key.lower(), _MISSING)

    def __getitem__(self, key: str) -> Any:
        found = self._key(key)
        if found is _MISSING:
            raise KeyError(key)
        return freeze(self._data[found])

    def get(self, key: str, default: Any = None) -> Any:
        try:  # rules call this for every event: the exact key costs one lookup
            value = self._data[key]
        except KeyError:
            found = self._key(key)
            if found is _MISSING:
                return default
            value = self._data[found]
        return value if type(value) in SCALARS else freeze(value)

    def __contains__(self, key: object) -> bool:
        return self._key(key) is not _MISSING

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ImmutableCaseInsensitiveDict):
            return dict(self._data) == dict(other._data)
        return isinstance(other, Mapping) and dict(self._data) == dict(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self._data)!r})"

    def deep_get(self, *keys: str, default: Any = None) -> Any:
        """Panther's ``deep_get``: each key is looked up in the value so far while that is a
        mapping (a missing key gives ``default``, which the next key then reads), anything
        else gives ``default``; a final None is ``default`` too."""
        value: Any = self
        for key in keys:
            value = value.get(key, default) if isinstance(value, Mapping) else default
        return default if value is None else value

    def raw_view(self) -> Mapping[str, Any]:
        """The wrapped data itself, not copied: treat it as read-only."""
        return self._data

    def copy(self) -> dict[str, Any]:
        """A mutable deep copy (Panther's ``copy()``), for code that must change or type-check
        the value."""
        return thaw(self._data)

    to_dict = copy


ImmutableDict = ImmutableCaseInsensitiveDict  # the name this module used before


class ImmutableList(Sequence[Any]):
    """A read-only list that still compares equal to a list or tuple with the same items."""

    __slots__ = ("_items",)

    def __init__(self, items: Sequence[Any]) -> None:
        self._items = items

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            # Panther's list wraps a tuple, so a slice of it is a tuple; its items stay frozen
            # here so that a slice cannot be used to change the event.
            return tuple(freeze(v) for v in self._items[index])
        return freeze(self._items[index])

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return (freeze(v) for v in self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ImmutableList):
            return tuple(self._items) == tuple(other._items)
        return isinstance(other, list | tuple) and tuple(self._items) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({tuple(self._items)!r})"

    def copy(self) -> list[Any]:
        """A mutable deep copy (Panther's ``copy()``)."""
        return thaw(self._items)

    as_list = copy


def adopt(module: str, name: str, ours: type) -> bool:
    """Make ``isinstance(x, <module>.<name>)`` true for instances of ``ours`` when that module
    is importable, as rules that check against ``panther_core``'s classes expect. Importing it
    is attempted only when it is installed; a failing import leaves things as they were."""
    loaded = sys.modules.get(module)
    if loaded is None:
        root = module.partition(".")[0]
        try:
            if root not in sys.modules and importlib.util.find_spec(root) is None:
                return False
            loaded = importlib.import_module(module)
        except Exception:  # noqa: BLE001 - an optional package that cannot load is not ours
            return False
    theirs = getattr(loaded, name, None)
    if not isinstance(theirs, ABCMeta):
        return False
    # panther_core's classes define a ``register`` classmethod of their own, so the ABC's is
    # called through the metaclass.
    ABCMeta.register(theirs, ours)
    return True


def adopt_panther_core() -> None:
    """``adopt`` this module's containers as ``panther_core.immutable``'s."""
    adopt("panther_core.immutable", "ImmutableList", ImmutableList)
    adopt("panther_core.immutable", "ImmutableCaseInsensitiveDict", ImmutableCaseInsensitiveDict)


adopt_panther_core()
