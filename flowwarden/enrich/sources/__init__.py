"""Lookup-table kinds built from files a flow-log user holds.

Each kind is a loader ``(path, options) -> Lookup``; ``options`` is the source's entry in
``flowwarden.yaml`` (``name`` is the table's ``LookupName``, other keys are the kind's own).
Entries a file holds that cannot be used are skipped, never fatal: every lookup these loaders
return has ``problems`` (a ``Problems``: the count, the first few with file and line, and a
one-line ``summary()`` for a report). A file that cannot be read at all, or is not of its kind,
raises ``LookupSourceError``; a bad option raises ``ConfigError``.

| kind            | file                                           | rows keyed by          |
| --------------- | ---------------------------------------------- | ---------------------- |
| ``aws-ip-ranges`` | AWS's ``ip-ranges.json``                       | ``ip_prefix`` (CIDR)   |
| ``mmdb``          | MaxMind GeoLite2/GeoIP2, IPinfo, DB-IP ``.mmdb`` | the file's networks    |
| ``tor-exits``     | Tor bulk exit list, exit list, Onionoo details | ``ip``                 |
| ``ioc-csv``       | CSV with an indicator column                   | the indicator (CIDR)   |
| ``stix``          | STIX 2 bundle of address indicators            | ``indicator`` (CIDR)   |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flowwarden.enrich.lookup import Lookup
from flowwarden.enrich.sources import awsranges, ioccsv, mmdb, stix, tor
from flowwarden.enrich.sources.problems import LookupSourceError, Problem, Problems

Loader = Callable[[str, Mapping[str, Any]], Lookup]

SOURCE_KINDS: dict[str, Loader] = {
    "aws-ip-ranges": awsranges.load,
    "mmdb": mmdb.load,
    "tor-exits": tor.load,
    "ioc-csv": ioccsv.load,
    "stix": stix.load,
}

__all__ = ["SOURCE_KINDS", "Loader", "LookupSourceError", "Problem", "Problems"]
