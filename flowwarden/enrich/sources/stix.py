"""STIX 2 indicators of addresses as a CIDR lookup table.

A bundle (or a list of objects, or one indicator) is read for its ``indicator`` objects whose
STIX pattern compares address values with ``=``: ``[ipv4-addr:value = '198.51.100.7']``,
``[ipv6-addr:value = '2001:db8::/32']``, several comparisons OR-ed inside one observation or
observations OR-ed together. Each address or CIDR is one row keyed by ``indicator`` (longest
prefix wins), holding the indicator's ``id``, ``name``, ``description``, ``confidence``,
``labels``, ``indicator_types``, ``valid_from``, ``valid_until`` and ``pattern``. Every other
pattern (``AND``, other objects or operators, qualifiers, non-STIX pattern types) is counted
and reported with the indicator's id, never silently dropped; revoked indicators are left out.
A network named by two indicators keeps the most confident one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from flowwarden.enrich.sources.files import option_text, read_json, text_or_none
from flowwarden.enrich.sources.indicators import most_confident, parse_confidence
from flowwarden.enrich.sources.notation import network_key
from flowwarden.enrich.sources.problems import LookupSourceError, Problems
from flowwarden.enrich.sources.rowtable import SourceLookup, SourceTable, rows_table
from flowwarden.errors import Location

DEFAULT_NAME = "stix_indicators"
KEY = "indicator"
TEXT_FIELDS = ("id", "name", "description", "valid_from", "valid_until", "pattern")
LIST_FIELDS = ("labels", "indicator_types")
SCHEMA = pa.schema(
    [(KEY, pa.string()), ("id", pa.string()), ("name", pa.string()),
     ("description", pa.string()), ("confidence", pa.int64()),
     ("labels", pa.list_(pa.string())), ("indicator_types", pa.list_(pa.string())),
     ("valid_from", pa.string()), ("valid_until", pa.string()), ("pattern", pa.string())]
)
ADDRESS_PATHS = {"ipv4-addr:value": 4, "ipv6-addr:value": 6}
SINGLE = re.compile(r"\s*\[\s*(ipv4-addr|ipv6-addr):value\s*=\s*'([0-9A-Fa-f.:/]+)'\s*\]\s*")
TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<op>\[|\]|\(|\)|!=|<=|>=|=|<|>)|(?P<word>[^\s\[\]()'=<>!]+))"
)


class UnsupportedPattern(ValueError):
    """A pattern outside the ``=`` comparisons of addresses this source reads."""


def load(path: str, options: Mapping[str, Any]) -> SourceLookup:
    """The ``stix`` kind: ``path`` is a STIX 2 bundle (JSON)."""
    return read_table(path, option_text(options, "name", DEFAULT_NAME)).lookup()


def read_table(path: str, name: str) -> SourceTable:
    problems = Problems(path)
    document = read_json(path)
    rows: list[dict[str, Any]] = []
    for where, indicator in _indicators(path, document):
        rows += _rows(where, indicator, problems)
    return SourceTable(name, rows_table(most_confident(rows, KEY), SCHEMA), KEY, problems)


def _indicators(path: str, document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if document is None:
        return
    if isinstance(document, dict) and document.get("type") == "bundle":
        objects, prefix = document.get("objects", []), "objects"
    elif isinstance(document, list):
        objects, prefix = document, ""
    elif isinstance(document, dict) and document.get("type") == "indicator":
        objects, prefix = [document], ""
    else:
        raise LookupSourceError("not STIX: expected a bundle, a list of objects or an indicator",
                                Location(path))
    if not isinstance(objects, list):
        raise LookupSourceError("not STIX: the bundle's 'objects' is not a list", Location(path))
    for index, found in enumerate(objects):
        if isinstance(found, dict) and found.get("type") == "indicator" and not found.get("revoked"):
            yield f"{prefix}[{index}]", found


def _rows(where: str, indicator: dict[str, Any], problems: Problems) -> list[dict[str, Any]]:
    label = f"{where} {indicator.get('id', '(no id)')}"
    pattern = indicator.get("pattern")
    pattern_type = indicator.get("pattern_type", "stix")
    if pattern_type != "stix":
        problems.add(f"{label}: pattern type {pattern_type!r} is not read (only 'stix')")
        return []
    if not isinstance(pattern, str):
        problems.add(f"{label}: no pattern")
        return []
    try:
        networks = parse_pattern(pattern)
    except UnsupportedPattern as exc:
        problems.add(f"{label}: unsupported pattern {pattern[:120]!r}: {exc}")
        return []
    confidence, reason = parse_confidence(indicator.get("confidence"))
    if reason:
        problems.add(f"{label}: {reason}")
    about: dict[str, Any] = {field: text_or_none(indicator.get(field)) for field in TEXT_FIELDS}
    about.update({field: _texts(indicator.get(field)) for field in LIST_FIELDS})
    about["confidence"] = confidence
    return [{KEY: network, **about} for network in networks]


def parse_pattern(pattern: str) -> list[str]:
    """The networks an OR of address ``=`` comparisons names, as canonical text.

    >>> parse_pattern("[ipv4-addr:value = '10.0.0.1/8' OR ipv6-addr:value = '2001:DB8::1']")
    ['10.0.0.0/8', '2001:db8::1']
    """
    single = SINGLE.fullmatch(pattern)
    if single is not None:  # most feeds: one comparison, read without the tokenizer
        network = network_key(single.group(2))
        if network is not None and (":" in network) == (single.group(1) == "ipv6-addr"):
            return [network]
    tokens = _tokens(pattern)
    networks: list[str] = []
    position = 0
    while True:
        position = _expect(tokens, position, "[")
        while True:
            network, position = _comparison(tokens, position)
            networks.append(network)
            if _at(tokens, position) == "OR":
                position += 1
                continue
            position = _expect(tokens, position, "]")
            break
        if position == len(tokens):
            return networks
        position = _expect(tokens, position, "OR")


def _tokens(pattern: str) -> list[str]:
    tokens, position = [], 0
    while position < len(pattern):
        if not pattern[position:].strip():
            break
        found = TOKEN.match(pattern, position)
        if found is None:
            raise UnsupportedPattern(f"cannot read it at character {position + 1}")
        tokens.append(found.group(found.lastgroup or "word"))
        position = found.end()
    return tokens


def _at(tokens: list[str], position: int) -> str | None:
    return tokens[position] if position < len(tokens) else None


def _expect(tokens: list[str], position: int, wanted: str) -> int:
    found = _at(tokens, position)
    if found != wanted:
        shown = "the end" if found is None else repr(found)
        raise UnsupportedPattern(f"{wanted!r} expected, {shown} found")
    return position + 1


def _comparison(tokens: list[str], position: int) -> tuple[str, int]:
    path, operator, value = (_at(tokens, position + i) for i in range(3))
    if path not in ADDRESS_PATHS:
        raise UnsupportedPattern(f"object path {path!r} is not ipv4-addr:value or ipv6-addr:value")
    if operator != "=":
        raise UnsupportedPattern(f"operator {operator!r} is not '='")
    if value is None or not value.startswith("'"):
        raise UnsupportedPattern(f"{value!r} is not a quoted string")
    text = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    network = network_key(text)
    if network is None or (":" in network) != (ADDRESS_PATHS[path] == 6):
        raise UnsupportedPattern(f"{text!r} is not an {path.split(':')[0]} value")
    return network, position + 3




def _texts(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [item if isinstance(item, str) else str(item) for item in value]
