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
