"""Read-only views of event data, so a rule cannot change what the next rule sees."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """Wrap dicts and lists in read-only views; scalars pass through."""
    if type(value) in SCALARS:
        return value
    if isinstance(value, ImmutableDict | ImmutableList):
        return value
    if isinstance(value, Mapping):
        return ImmutableDict(value)
    if isinstance(value, list | tuple):
        return ImmutableList(value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (for JSON output)."""
    if type(value) in SCALARS:
        return value
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, ImmutableList | list | tuple):
        return [thaw(v) for v in value]
    return value


class ImmutableDict(Mapping[str, Any]):
    """A read-only mapping whose nested containers are read-only too."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return freeze(self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key, default)
        return value if type(value) in SCALARS else freeze(value)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ImmutableDict):
            return self._data == other._data
        return isinstance(other, Mapping) and dict(self._data) == dict(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self._data)!r})"

    def to_dict(self) -> dict[str, Any]:
        return thaw(self._data)


class ImmutableList(Sequence[Any]):
    """A read-only list that still compares equal to a list with the same items."""

    __slots__ = ("_items",)

    def __init__(self, items: Sequence[Any]) -> None:
        self._items = items

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return ImmutableList(self._items[index])
        return freeze(self._items[index])

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ImmutableList):
            return list(self._items) == list(other._items)
        return isinstance(other, list | tuple) and list(self._items) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._items)!r})"
