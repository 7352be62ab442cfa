"""AWS's published address ranges (``ip-ranges.json``) as a CIDR lookup table.

The file lists each prefix once per service that uses it: ``AMAZON`` holds every prefix, and a
prefix of ``EC2`` or ``S3`` also appears under ``AMAZON``, sometimes as a wider prefix that
contains it. One matched row is therefore the *longest* prefix containing the address, with:

- ``ip_prefix``, ``region``, ``network_border_group``: that prefix's own values;
- ``service``: its most specific service: a service other than ``AMAZON`` when the prefix has
  one (the first by name if it has several), ``AMAZON`` alone otherwise;
- ``services``: every service of every listed prefix that contains the address (the prefix and
  all wider ones), sorted: an address in ``EC2``'s 3.5.140.0/22 inside ``AMAZON``'s 3.0.0.0/9
  reads ``["AMAZON", "EC2"]``.

A rule asks ``"EC2" in services`` rather than comparing ``service``, which names one of several.
Format: https://docs.aws.amazon.com/vpc/latest/userguide/aws-ip-syntax.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from flowwarden.enrich.sources.files import option_text, read_json
from flowwarden.enrich.sources.notation import Network, parse_network
from flowwarden.enrich.sources.problems import LookupSourceError, Problems
from flowwarden.enrich.sources.rowtable import SourceLookup, SourceTable, rows_table
from flowwarden.errors import Location

DEFAULT_NAME = "aws_ip_ranges"
KEY = "ip_prefix"
GENERIC_SERVICE = "AMAZON"
SCHEMA = pa.schema(
    [
        (KEY, pa.string()),
        ("region", pa.string()),
        ("network_border_group", pa.string()),
        ("service", pa.string()),
        ("services", pa.list_(pa.string())),
    ]
)
# (list in the file, the prefix field of its entries)
LISTS = (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix"))


@dataclass
class _Prefix:
    network: Network
    region: str | None
    border_group: str | None
    services: set[str] = field(default_factory=set)


def load(path: str, options: Mapping[str, Any]) -> SourceLookup:
    """The ``aws-ip-ranges`` kind: ``path`` is a copy of ``ip-ranges.json``."""
    return read_table(path, option_text(options, "name", DEFAULT_NAME)).lookup()


def read_table(path: str, name: str) -> SourceTable:
    problems = Problems(path)
    document = read_json(path)
    if document is None:
        return SourceTable(name, SCHEMA.empty_table(), KEY, problems)
    if not isinstance(document, dict):
        raise LookupSourceError("not an AWS ip-ranges file: the top level is not an object",
                                Location(path))
    prefixes: dict[Network, _Prefix] = {}
    for list_name, prefix_field in LISTS:
        entries = document.get(list_name, [])
        if not isinstance(entries, list):
            raise LookupSourceError(f"not an AWS ip-ranges file: {list_name!r} is not a list",
                                    Location(path))
        for index, entry in enumerate(entries):
            _add(prefixes, entry, f"{list_name}[{index}]", prefix_field, problems)
    rows = _rows(prefixes)
    return SourceTable(name, rows_table(rows, SCHEMA), KEY, problems)


def _add(prefixes: dict[Network, _Prefix], entry: Any, where: str, prefix_field: str,
         problems: Problems) -> None:
    if not isinstance(entry, dict):
        problems.add(f"{where}: not an object")
        return
    text = entry.get(prefix_field)
    network = parse_network(text) if isinstance(text, str) else None
    if network is None:
        problems.add(f"{where}: {prefix_field} {text!r} is not a CIDR prefix")
        return
    service = entry.get("service")
    prefix = prefixes.setdefault(
        network, _Prefix(network, _text(entry.get("region")),
                         _text(entry.get("network_border_group")))
    )
    if isinstance(service, str) and service:
        prefix.services.add(service)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _rows(prefixes: dict[Network, _Prefix]) -> list[dict[str, Any]]:
    """One row per prefix, its ``services`` joined with those of every wider prefix.

    Sorted by start address and then widest first, a prefix's containing prefixes are exactly
    the open ones on a stack of nested prefixes when it is reached.
    """
    ordered = sorted(prefixes.values(), key=lambda p: (
        p.network.version, int(p.network.network_address), p.network.prefixlen))
    rows = []
    stack: list[tuple[_Prefix, frozenset[str]]] = []
    for prefix in ordered:
        while stack and not _contains(stack[-1][0].network, prefix.network):
            stack.pop()
        inherited = stack[-1][1] if stack else frozenset()
        services = inherited | prefix.services
        stack.append((prefix, services))
        rows.append({
            KEY: str(prefix.network),
            "region": prefix.region,
            "network_border_group": prefix.border_group,
            "service": _most_specific(prefix.services),
            "services": sorted(services),
        })
    return rows


def _contains(wider: Network, narrower: Network) -> bool:
    return wider.version == narrower.version and narrower.subnet_of(wider)  # type: ignore[arg-type]


def _most_specific(services: set[str]) -> str | None:
    specific = sorted(services - {GENERIC_SERVICE})
    if specific:
        return specific[0]
    return GENERIC_SERVICE if services else None
