"""Small files written in the test, and the rows a lookup gives back for some addresses."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pyarrow as pa

from flowwarden.enrich.lookup import Lookup


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def rows(lookup: Lookup, *keys: str | None) -> list[dict[str, Any] | None]:
    """What ``lookup`` matches for ``keys``, checked against the ``Lookup`` contract."""
    matched = lookup.match(pa.array(list(keys), pa.string()))
    assert len(matched) == len(keys)
    assert matched.type == lookup.row_type
    return matched.to_pylist()


def problem_texts(lookup: Any) -> list[str]:
    return [str(problem) for problem in lookup.problems.shown]
