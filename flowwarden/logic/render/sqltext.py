"""The one place SQL text is built from values: literals and identifiers, quoted safely.

>>> sql_literal("it's")
"'it''s'"
>>> sql_literal("a\\x00b")
"('a' || chr(0) || 'b')"
>>> quote_identifier('we"ird')
'"we""ird"'
"""

from __future__ import annotations

import re

from flowwarden.errors import RenderError

# Characters kept inside a quoted literal: printable and encodable as UTF-8.
_PLAIN = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]+")
INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1


def sql_literal(value: int | str | bool | None) -> str:
    """A DuckDB literal for ``value``: strings single-quoted, control characters as ``chr(n)``.

    Backslashes need no escaping (DuckDB's standard strings have no escapes); a quote is
    doubled; control characters and NUL are spliced in with ``chr()`` so the query text stays
    printable. Lone surrogates cannot be encoded and raise RenderError.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= UINT64_MAX:
            raise RenderError(f"integer literal {value} is outside the 64-bit range")
        return str(value) if value <= 2**63 - 1 else f"CAST('{value}' AS UBIGINT)"
    if not isinstance(value, str):
        raise RenderError(f"cannot render a {type(value).__name__} literal")
    parts: list[str] = []
    pos = 0
    while pos < len(value):
        match = _PLAIN.match(value, pos)
        if match:
            parts.append("'" + match.group(0).replace("'", "''") + "'")
            pos = match.end()
            continue
        char = value[pos]
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise RenderError(f"string literal {value!r} holds a lone surrogate")
        else:
            parts.append(f"chr({ord(char)})")
        pos += 1
    if not parts:
        return "''"
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def quote_identifier(name: str) -> str:
    """A double-quoted identifier; embedded double quotes are doubled, NUL is refused."""
    if "\x00" in name or any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise RenderError(f"identifier {name!r} cannot be quoted")
    return '"' + name.replace('"', '""') + '"'
