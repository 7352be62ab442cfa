"""The read-only event a rule sees, with Panther's accessors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flowwarden.rules.datamodel import DataModel
from flowwarden.rules.immutable import ImmutableDict, freeze


class PantherEvent(ImmutableDict):
    """An event with `get`, `deep_get`, `deep_walk` and `udm`, as Panther rules expect.

    >>> PantherEvent({"a": {"b": 1}}).deep_get("a", "b")
    1
    """

    __slots__ = ("data_model",)

    def __init__(self, data: Mapping[str, Any], data_model: DataModel | None = None) -> None:
        super().__init__(data)
        self.data_model = data_model

    def deep_get(self, *keys: str, default: Any = None) -> Any:
        """Follow nested keys; missing keys, non-mappings and None give `default`."""
        value: Any = self
        for key in keys:
            if not isinstance(value, Mapping):
                return default
            value = value.get(key)
            if value is None:
                return default
        return value

    def deep_walk(self, *keys: str, default: Any = None, return_val: str = "all") -> Any:
        """Like deep_get, but walks into lists; returns the distinct values found.

        `return_val` is "all" (one value alone, several as a list), "first" or "last".
        """
        found: list[Any] = []
        for item in _walk(self, keys):
            if item not in found:
                found.append(item)
        if not found:
            return default
        if return_val == "first":
            return found[0]
        if return_val == "last":
            return found[-1]
        return found[0] if len(found) == 1 else freeze(found)

    def udm(self, *key: str, default: Any = None) -> Any:
        """A data-model field by its common name; falls back to the raw key(s)."""
        if len(key) == 1 and self.data_model is not None:
            found, value = self.data_model.resolve(self, key[0])
            if found:
                return default if value is None else freeze(value)
        return self.deep_get(*key, default=default)


def _walk(value: Any, keys: Sequence[str]) -> list[Any]:
    if not keys:
        if isinstance(value, Sequence) and not isinstance(value, str):
            return [v for item in value for v in _walk(item, keys)]
        return [] if value is None else [value]
    if isinstance(value, Mapping):
        return _walk(value.get(keys[0]), keys[1:])
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [v for item in value for v in _walk(item, keys)]
    return []
