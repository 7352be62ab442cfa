"""The JSONPath subset Panther data models use: `$.a.b`, `$.a[0]`, `$.a[*].b`, `$['a.b']`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

_TOKEN = re.compile(r"\.([A-Za-z_@$][\w@$-]*)|\[(\d+|\*)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]|\.\*")
_WILDCARD = object()


@lru_cache(maxsize=1024)
def parse_path(path: str) -> tuple[Any, ...]:
    """Split a JSONPath into keys (str), indexes (int) and wildcards; ValueError if unsupported.

    >>> parse_path("$.dst_endpoint.ip")
    ('dst_endpoint', 'ip')
    """
    if not path.startswith("$"):
        raise ValueError(f"JSONPath must start with '$': {path!r}")
    steps: list[Any] = []
    pos = 1
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"unsupported JSONPath syntax at {path[pos:]!r} in {path!r}")
        key, index, quoted, dquoted = match.groups()
        if key is not None:
            steps.append(key)
        elif index == "*" or match.group(0) == ".*":
            steps.append(_WILDCARD)
        elif index is not None:
            steps.append(int(index))
        else:
            steps.append(quoted if quoted is not None else dquoted)
        pos = match.end()
    return tuple(steps)


def is_plain(path: str) -> bool:
    """True for paths that name one value (no wildcard), which a column lookup can replace."""
    return _WILDCARD not in parse_path(path)


def find(data: Any, path: str) -> Any:
    """Panther's rule: one match gives its value, several give a list, none gives None."""
    matches = _walk(data, parse_path(path))
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else matches


def find_paths(data: Any, path: str) -> list[str]:
    """Where ``path`` (a JSONPath, or a data model's plain key) matches in ``data``, each as
    Panther's JSONPath library (the version its test tool pins) prints a match's full path: the
    steps joined by ``.``, keys bare, list positions as ``[i]`` (``$.a.l[*].x`` matches
    ``a.l.[0].x``, ...). Keys with a None value match, as they do there.

    >>> find_paths({"a": {"l": [{"x": 1}, {"y": 2}]}}, "$.a.l[*].x")
    ['a.l.[0].x']
    """
    steps = parse_path(path) if path.startswith("$") else (path,)  # as DataModel.resolve
    current: list[tuple[str, Any]] = [("", data)]
    for step in steps:
        nxt: list[tuple[str, Any]] = []
        for where, value in current:
            nxt.extend((f"{where}.{name}" if where else name, child)
                       for name, child in _children(value, step))
        current = nxt
    return [where for where, _ in current]


def _children(value: Any, step: Any) -> list[tuple[str, Any]]:
    """The (printed step, value) pairs ``step`` reaches from ``value``."""
    listed = isinstance(value, Sequence) and not isinstance(value, str)
    if step is _WILDCARD:
        if isinstance(value, Mapping):
            return [(str(k), v) for k, v in value.items()]
        return [(f"[{i}]", v) for i, v in enumerate(value)] if listed else []
    if isinstance(step, int):
        if listed and -len(value) <= step < len(value):
            return [(f"[{step}]", value[step])]
        return []
    return [(step, value[step])] if isinstance(value, Mapping) and step in value else []


def _walk(data: Any, steps: tuple[Any, ...]) -> list[Any]:
    current = [data]
    for step in steps:
        nxt: list[Any] = []
        for value in current:
            if step is _WILDCARD:
                if isinstance(value, Mapping):
                    nxt.extend(value.values())
                elif isinstance(value, Sequence) and not isinstance(value, str):
                    nxt.extend(value)
            elif isinstance(step, int):
                if isinstance(value, Sequence) and not isinstance(value, str) and -len(value) <= step < len(value):
                    nxt.append(value[step])
            elif isinstance(value, Mapping) and step in value:
                nxt.append(value[step])
        current = nxt
    return [v for v in current if v is not None]
