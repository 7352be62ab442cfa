"""YAML loading that rejects duplicate keys and reports problems with their line numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flowwarden.errors import FlowwardenError, Location


class _StrictLoader(yaml.SafeLoader):
    """A safe loader whose mappings refuse a key given twice (YAML would keep the last silently)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def load_yaml(path: Path, error: type[FlowwardenError]) -> Any:
    """Parse one YAML file strictly; any problem is raised as `error` located at path:line:col."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read file: {exc.strerror}", Location(str(path))) from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} cannot be decoded",
                    _byte_location(path, exc.object, exc.start)) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
        raise error(f"invalid YAML: {exc.problem or exc.context}", where) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", Location(str(path))) from None


def _byte_location(path: Path, data: bytes, offset: int) -> Location:
    """path:line:col of a byte offset (the column counts bytes: the line is not text)."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return Location(str(path), data.count(b"\n", 0, offset) + 1, offset - line_start + 1)
