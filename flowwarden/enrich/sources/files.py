"""Reading a source file whole: text (gzip or not) and JSON, with errors that name the file."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from typing import Any

from flowwarden.enrich.sources.problems import LookupSourceError
from flowwarden.errors import ConfigError, Location


def read_text(path: str) -> str:
    """The file's text (UTF-8, a byte-order mark dropped, a ``.gz`` name decompressed); a clear
    error if it cannot be read."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8-sig", errors="replace") as compressed:
                return compressed.read()
        with open(path, encoding="utf-8-sig", errors="replace") as plain:
            return plain.read()
    except (OSError, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise LookupSourceError(f"cannot read lookup source: {reason}", Location(path)) from None


def read_json(path: str) -> Any:
    """The file's JSON value, or None for an empty file; a malformed file is an error at its
    line and column."""
    text = read_text(path)
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LookupSourceError(f"not JSON: {exc.msg}", Location(path, exc.lineno, exc.colno)) from None
    except RecursionError:
        raise LookupSourceError("not JSON: nested too deeply", Location(path)) from None


def option_text(options: Mapping[str, Any], key: str, default: str) -> str:
    """A string option of the source's ``flowwarden.yaml`` entry, or ``default``."""
    value = options.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"lookup source option {key!r} must be a non-empty string, not {value!r}")
    return value


def text_or_none(value: Any) -> str | None:
    """A source's value as text (None stays None).

    >>> text_or_none(7), text_or_none(None)
    ('7', None)
    """
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
