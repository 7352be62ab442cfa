"""Data models: common field names (`destination_ip`, ...) mapped per log type."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from flowwarden.rules import jsonpath

if TYPE_CHECKING:
    from flowwarden.rules.event import PantherEvent


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """One data-model name, resolved either by a path (JSONPath or plain key) or by a method."""

    name: str
    path: str | None = None
    method: str | None = None

    @property
    def keys(self) -> tuple[Any, ...] | None:
        """The path as a key sequence, or None for methods and wildcard paths."""
        if self.path is None:
            return None
        if self.path.startswith("$"):
            return jsonpath.parse_path(self.path) if jsonpath.is_plain(self.path) else None
        return (self.path,)


@dataclass(frozen=True)
class DataModel:
    """A loaded `AnalysisType: datamodel` file."""

    id: str
    log_types: tuple[str, ...]
    mappings: dict[str, FieldMapping]
    path: str
    enabled: bool = True
    module: ModuleType | None = field(default=None, compare=False)

    def resolve(self, event: PantherEvent, name: str) -> tuple[bool, Any]:
        """(found, value) for `name`: path mappings first, then method mappings."""
        mapping = self.mappings.get(name)
        if mapping is None:
            return False, None
        if mapping.path is not None:  # exact names, unlike the event's own keys (Panther)
            if mapping.path[0] == "$":
                return True, jsonpath.find(event.raw_view(), mapping.path)
            return True, event.udm_value((mapping.path,))
        method = getattr(self.module, mapping.method or "", None)
        if method is None:
            raise AttributeError(f"data model {self.id} has no method {mapping.method!r}")
        return True, method(event)
