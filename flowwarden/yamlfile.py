"""YAML loading that rejects duplicate keys and reports problems with their line numbers.

Scalars are read as YAML 1.2 reads them, as Panther's test tool does for rule files: only
``true``/``false`` are booleans (``on``, ``off``, ``yes``, ``no`` stay text: a test event's
``"state": off`` must reach the rule as the text Panther gives it), a leading zero is not octal
(``0644`` is 644), ``1:30`` is text, not base 60, and a timestamp stays the text written. The
configuration file is read the same way: one dialect for every file flowwarden reads, no
"Norway problem" in a list of country codes (``NO``), and a value of the wrong type
(``yes`` where a rule constant is a boolean) is an error naming it rather than a silent change.
"""

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


_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
             "FALSE": False}


def _construct_bool(loader: _StrictLoader, node: yaml.ScalarNode) -> bool | str:
    text = loader.construct_scalar(node)
    return _BOOLEANS.get(text, text)


def _construct_int(loader: _StrictLoader, node: yaml.ScalarNode) -> int | str:
    """What YAML 1.1 resolved as an integer, read as Panther's test tool reads it: YAML 1.2's
    bases, with ``_`` separators still dropped."""
    text = loader.construct_scalar(node)
    if ":" in text:  # YAML 1.1's base 60
        return text
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    bases = {"0x": 16, "0X": 16, "0b": 2, "0B": 2}
    base = bases.get(digits[:2], 10)
    try:
        return sign * int(digits[2:] if base != 10 else digits, base)
    except ValueError:  # YAML 1.1 takes ``0b_`` for a number: no digits, so text
        return text


def _construct_text(loader: _StrictLoader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
_StrictLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)


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
