"""Tor exit-node lists as the ``tor_exit_nodes`` table panther-analysis's Tor helpers read.

Panther's table (schema ``Tor.ExitNode``, primary key ``ip``) is what ``panther_tor_helpers``
reads as ``p_enrichment.tor_exit_nodes.<selector>.ip``; every format below gives rows with that
``ip`` (canonical address text) plus what the file says about the relay:

- the bulk exit list (``torbulkexitlist``): one address per line, ``#`` comments; rows hold
  ``ip`` only;
- the exit list (``exit-addresses``): ``ExitNode``/``Published``/``LastStatus``/``ExitAddress``
  blocks; rows add ``fingerprint``, ``published``, ``last_status`` and ``last_seen`` (the
  time the address was measured);
- Onionoo's ``details`` document (JSON): every ``relays[].exit_addresses`` entry, and the OR
  addresses of relays flagged ``Exit`` (an exit relay exits from its OR address unless it
  says otherwise, and Onionoo lists in ``exit_addresses`` only the others); rows add
  ``fingerprint``, ``nickname``, ``country``, ``country_name``, ``as``, ``as_name``,
  ``first_seen``, ``last_seen``. Option ``or_addresses: false`` keeps ``exit_addresses`` only.

An address listed twice keeps its first row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from flowwarden.enrich.sources.files import option_text, read_text, text_or_none
from flowwarden.enrich.sources.notation import parse_address, parse_plain
from flowwarden.enrich.sources.problems import LookupSourceError, Problems
from flowwarden.enrich.sources.rowtable import SourceLookup, SourceTable, rows_table
from flowwarden.errors import ConfigError, Location

DEFAULT_NAME = "tor_exit_nodes"
KEY = "ip"
BULK_SCHEMA = pa.schema([(KEY, pa.string())])
EXIT_LIST_FIELDS = ("fingerprint", "published", "last_status", "last_seen")
EXIT_LIST_SCHEMA = pa.schema([(KEY, pa.string())] + [(f, pa.string()) for f in EXIT_LIST_FIELDS])
ONIONOO_FIELDS = ("fingerprint", "nickname", "country", "country_name", "as", "as_name",
                  "first_seen", "last_seen")
ONIONOO_SCHEMA = pa.schema([(KEY, pa.string())] + [(f, pa.string()) for f in ONIONOO_FIELDS])
EXIT_FLAG = "Exit"


def load(path: str, options: Mapping[str, Any]) -> SourceLookup:
    """The ``tor-exits`` kind: ``path`` is a bulk exit list, an exit list or Onionoo details."""
    or_addresses = options.get("or_addresses", True)
    if not isinstance(or_addresses, bool):
        raise ConfigError(f"lookup source option 'or_addresses' must be true or false, not {or_addresses!r}")
    return read_table(path, option_text(options, "name", DEFAULT_NAME), or_addresses).lookup()


def read_table(path: str, name: str, or_addresses: bool = True) -> SourceTable:
    text = read_text(path)
    problems = Problems(path)
    start = text.lstrip()
    if start.startswith("{"):
        rows, schema = _onionoo(path, text, problems, or_addresses), ONIONOO_SCHEMA
    elif _first_word(text) == "ExitNode":
        rows, schema = _exit_list(text, problems), EXIT_LIST_SCHEMA
    else:
        rows, schema = _bulk(text, problems), BULK_SCHEMA
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row[KEY], row)
    return SourceTable(name, rows_table(unique.values(), schema), KEY, problems)


def _first_word(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.split()[0]
    return ""


def _bulk(text: str, problems: Problems) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        address = parse_plain(stripped)
        if address is None:
            problems.add(f"not an IP address: {stripped[:80]!r}", number)
            continue
        rows.append({KEY: address})
    return rows


def _exit_list(text: str, problems: Problems) -> list[dict[str, Any]]:
    """TorDNSEL's exit list: each ``ExitAddress`` line belongs to the ``ExitNode`` above it."""
    rows = []
    node: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split(maxsplit=1)
        if not words or words[0].startswith("#"):
            continue
        keyword, rest = words[0], words[1].strip() if len(words) > 1 else ""
        if keyword == "ExitNode":
            node = {"fingerprint": rest or None}
        elif keyword == "Published":
            node["published"] = rest or None
        elif keyword == "LastStatus":
            node["last_status"] = rest or None
        elif keyword == "ExitAddress":
            parts = rest.split(maxsplit=1)
            address = parse_plain(parts[0]) if parts else None
            if address is None or not node:
                reason = "no ExitNode above it" if not node else "not an IP address"
                problems.add(f"ExitAddress {rest[:80]!r}: {reason}", number)
                continue
            rows.append({KEY: address, **node, "last_seen": parts[1] if len(parts) > 1 else None})
        else:
            problems.add(f"unknown line {line.strip()[:80]!r}", number)
    return rows


def _onionoo(path: str, text: str, problems: Problems, or_addresses: bool) -> list[dict[str, Any]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LookupSourceError(f"not JSON: {exc.msg}", Location(path, exc.lineno, exc.colno)) from None
    relays = document.get("relays") if isinstance(document, dict) else None
    if not isinstance(relays, list):
        raise LookupSourceError("not an Onionoo details document: no 'relays' list", Location(path))
    rows = []
    for index, relay in enumerate(relays):
        where = f"relays[{index}]"
        if not isinstance(relay, dict):
            problems.add(f"{where}: not an object")
            continue
        about = {field: text_or_none(relay.get(field)) for field in ONIONOO_FIELDS}
        for listed in _relay_addresses(relay, or_addresses):
            address = parse_address(listed) if isinstance(listed, str) else None
            if address is None:
                problems.add(f"{where}: not an IP address: {str(listed)[:80]!r}")
                continue
            rows.append({KEY: address, **about})
    return rows


def _relay_addresses(relay: dict[str, Any], or_addresses: bool) -> list[Any]:
    found = list(_listed(relay.get("exit_addresses")))
    flags = relay.get("flags")
    if or_addresses and isinstance(flags, list) and EXIT_FLAG in flags:
        found += _listed(relay.get("or_addresses"))
    return found


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
