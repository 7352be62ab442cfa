"""MaxMind DB files (GeoLite2/GeoIP2 City, Country, ASN; IPinfo; DB-IP) as a lookup.

Each distinct address is one ``get`` on the ``maxminddb`` reader (its C extension when
installed, which ``MODE_AUTO`` picks), so cost grows with distinct addresses; the file is
memory-mapped, not loaded (only its first records are read up front, for the fields of a flat
file).

One matched row is the address's record flattened to the fields a rule reads, plus
``network``, the database's network that holds the address:

- MaxMind's nested City and Country records (and DB-IP's, laid out the same) become
  ``country_iso_code``, ``country_name``, ``continent_code``, ... (see ``GEO_FIELDS``), names in
  the ``language`` option (default ``en``);
- flat records (MaxMind ASN, ISP and Anonymous-IP; every IPinfo file) keep the record's own
  keys, as Panther's IPinfo tables show them (``asn``, ``name``, ``route``, ``country``, ``lat``,
  ...); a nested value becomes ``parent_child``. Which keys a flat file holds is read from its
  first records; the ``fields`` option lists them instead when some appear only further in.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from flowwarden.enrich.addresses import Parsed, parse_addresses
from flowwarden.enrich.sources.files import option_text
from flowwarden.enrich.sources.problems import LookupSourceError, Problems
from flowwarden.errors import ConfigError, Location

DEFAULT_NAME = "geoip"
NETWORK = "network"
SAMPLED_RECORDS = 1000
EXTRA_HINT = "pip install 'flowwarden[enrich]'"
Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Field:
    """A row field: where it sits in a record and its Arrow type."""

    name: str
    path: Path
    type: pa.DataType


def _geo_fields(language: str, city: bool) -> tuple[Field, ...]:
    string, name = pa.string(), ("names", language)
    fields = [
        Field("country_iso_code", ("country", "iso_code"), string),
        Field("country_name", ("country", *name), string),
        Field("continent_code", ("continent", "code"), string),
        Field("continent_name", ("continent", *name), string),
        Field("is_in_european_union", ("country", "is_in_european_union"), pa.bool_()),
        Field("registered_country_iso_code", ("registered_country", "iso_code"), string),
        Field("registered_country_name", ("registered_country", *name), string),
    ]
    if city:
        fields += [
            Field("city_name", ("city", *name), string),
            Field("subdivision_iso_code", ("subdivisions", 0, "iso_code"), string),
            Field("subdivision_name", ("subdivisions", 0, *name), string),
            Field("postal_code", ("postal", "code"), string),
            Field("latitude", ("location", "latitude"), pa.float64()),
            Field("longitude", ("location", "longitude"), pa.float64()),
            Field("accuracy_radius", ("location", "accuracy_radius"), pa.int64()),
            Field("time_zone", ("location", "time_zone"), string),
        ]
    return tuple(fields)


GEO_FIELDS = _geo_fields("en", city=True)
GEO_KEYS = ("country", "continent", "city", "registered_country")
# Flat MaxMind layouts whose keys are known, so a sample cannot miss one.
KNOWN_FLAT = {
    "ASN": (("autonomous_system_number", pa.int64()), ("autonomous_system_organization", pa.string())),
}


def load(path: str, options: Mapping[str, Any]) -> MmdbLookup:
    """The ``mmdb`` kind: ``path`` is a ``.mmdb`` file."""
    return MmdbLookup(
        option_text(options, "name", DEFAULT_NAME),
        path,
        option_text(options, "language", "en"),
        _fields_option(options.get("fields")),
    )


def _fields_option(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"lookup source option 'fields' must be a list of names, not {value!r}")
    return tuple(value)


def _maxminddb() -> Any:
    try:
        import maxminddb
    except ImportError:
        raise ConfigError(
            f"reading .mmdb lookup sources needs the maxminddb package: {EXTRA_HINT}"
        ) from None
    return maxminddb


class MmdbLookup:
    """A ``Lookup`` over one MaxMind DB file, asked one ``get`` per distinct address."""

    def __init__(self, name: str, path: str, language: str = "en",
                 fields: Sequence[str] | None = None) -> None:
        self._name = name
        self.path = path
        self.problems = Problems(path)
        self._reader: Any = None
        self._ip_version = 6
        self.database_type = ""
        self.fields: tuple[Field, ...] = ()
        if _is_empty(path):
            self.problems.add("empty file: no networks to match")
        else:
            self._reader = _open(path)
            self.database_type = str(self._reader.metadata().database_type)
            self.fields = self._choose_fields(language, fields)
            self._ip_version = int(self._reader.metadata().ip_version)
        self._converters = [_CONVERTERS[str(field.type)] for field in self.fields]
        self._row_type = pa.struct(
            [(NETWORK, pa.string())]
            + [(field.name, field.type) for field in self.fields if field.name != NETWORK]
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def row_type(self) -> pa.StructType:
        return self._row_type

    @property
    def uses_c_extension(self) -> bool:
        return self._reader is not None and type(self._reader).__module__ == "maxminddb.extension"

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def match(self, keys: pa.Array) -> pa.Array:
        """Per key the prefix length of its network (records dropped at once), then one record
        per distinct network, flattened as it is read: memory holds rows, never records."""
        keys = keys.cast(pa.string())
        parsed = parse_addresses(keys)
        # Keys Python's ipaddress refuses stay unmatched, even where the C reader would accept
        # them (``1.2.3``): every table agrees on what an address is.
        asked = np.flatnonzero(parsed.v4 | (parsed.v6 & (self._ip_version == 6)))
        texts = keys.take(pa.array(asked, pa.int64())).to_pylist()
        lengths = np.full(len(keys), -1, dtype=np.int64)
        lengths[asked] = self._prefix_lengths(texts)
        found = lengths >= 0
        networks, first, inverse = _networks(parsed, lengths, found)
        firsts = keys.take(pa.array(first, pa.int64())).to_pylist()
        return self._rows(firsts, networks).take(pa.array(inverse, mask=~found))

    def _prefix_lengths(self, texts: list[str]) -> list[int]:
        if self._reader is None:
            return [-1] * len(texts)
        get = self._reader.get_with_prefix_len
        try:
            return [length if type(record) is dict else -1 for record, length in map(get, texts)]
        except ValueError:  # one the reader refuses (a scoped IPv6 address): ask one by one
            return [_prefix_length(get, text) for text in texts]

    def _rows(self, texts: list[str], networks: list[str]) -> pa.StructArray:
        columns: list[list[Any]] = [[] for _ in self.fields]
        get = self._reader.get if self._reader is not None else None
        for text in texts:
            record = get(text) if get is not None else None
            for column, field, convert in zip(columns, self.fields, self._converters, strict=True):
                column.append(convert(_dig(record, field.path)))
        children = {NETWORK: pa.array(networks, pa.string())}
        for column, field in zip(columns, self.fields, strict=True):
            children.setdefault(field.name, pa.array(column, field.type))
        return pa.StructArray.from_arrays(
            [children[f.name] for f in self._row_type], fields=list(self._row_type))

    def _choose_fields(self, language: str, listed: Sequence[str] | None) -> tuple[Field, ...]:
        kind = self.database_type
        sample = list(itertools.islice(_records(self._reader), SAMPLED_RECORDS))
        if _is_geo_layout(kind, sample) and listed is None:
            city = any(word in kind for word in ("City", "Enterprise")) or any(
                isinstance(record.get("city"), dict) for record in sample)
            return _geo_fields(language, city=city)
        declared = [] if "ipinfo" in kind.lower() else [
            Field(key, (key,), type_)
            for marker, known in KNOWN_FLAT.items() if marker in kind
            for key, type_ in known
        ]
        return _flat_fields(sample, declared, listed)


def _is_empty(path: str) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError as exc:
        raise LookupSourceError(f"cannot read lookup source: {exc.strerror}", Location(path)) from None


def _open(path: str) -> Any:
    maxminddb = _maxminddb()
    try:
        return maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except (maxminddb.InvalidDatabaseError, ValueError) as exc:
        raise LookupSourceError(f"not a MaxMind DB file: {exc}", Location(path)) from None
    except OSError as exc:
        raise LookupSourceError(f"cannot read lookup source: {exc.strerror}", Location(path)) from None


def _records(reader: Any) -> Any:
    for _network, record in reader:
        if isinstance(record, dict):
            yield record


def _is_geo_layout(kind: str, sample: list[dict[str, Any]]) -> bool:
    """MaxMind's nested layout: what the records show, or the type's name for a file whose
    first records say nothing."""
    if "ipinfo" in kind.lower():
        return False
    if sample:
        return any(isinstance(record.get(key), dict) for record in sample for key in GEO_KEYS)
    return any(word in kind for word in ("City", "Country", "Enterprise"))


def _flat_fields(sample: list[dict[str, Any]], declared: list[Field],
                 listed: Sequence[str] | None) -> tuple[Field, ...]:
    """Fields of flat records: ``listed`` (or the keys the sample holds) typed by the sample."""
    seen: dict[str, set[str]] = {}
    for record in sample:
        for key, value in _flattened(record):
            seen.setdefault(key, set()).add(_kind(value))
    names = list(listed) if listed is not None else list(seen)
    fields = {field.name: field for field in declared}
    for key in names:
        fields.setdefault(key, Field(key, _path(key, sample), _arrow_type(seen.get(key, set()))))
    return tuple(fields.values())


def _flattened(record: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            pairs += _flattened(value, f"{name}_")
        else:
            pairs.append((name, value))
    return pairs


def _path(name: str, sample: list[dict[str, Any]]) -> Path:
    """Where a flattened name sits: the nesting the sample shows, else a top-level key."""
    for record in sample:
        found = _find(record, name)
        if found is not None:
            return found
    return (name,)


def _find(record: Mapping[str, Any], name: str) -> Path | None:
    for key, value in record.items():
        if key == name:
            return (key,)
        if isinstance(value, dict) and name.startswith(f"{key}_"):
            inner = _find(value, name[len(key) + 1:])
            if inner is not None:
                return (key, *inner)
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "string"


def _arrow_type(kinds: set[str]) -> pa.DataType:
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds and kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()


def _dig(record: Any, path: Path) -> Any:
    value = record
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and len(value) > step else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def _as_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, bytes):
        return value.hex()
    return str(value).lower() if isinstance(value, bool) else str(value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None


def _as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _as_string,
    "int64": _as_int,
    "double": _as_float,
    "bool": _as_bool,
}


def _networks(parsed: Parsed, lengths: np.ndarray, found: np.ndarray
              ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The distinct networks the found keys fall in (as text), the position of one key in
    each, and per key the index of its network (0 where none was found)."""
    inverse = np.zeros(len(lengths), dtype=np.int64)
    texts: list[str] = []
    firsts: list[np.ndarray] = []
    v4 = np.flatnonzero(found & parsed.v4)
    if len(v4):
        length = np.clip(lengths[v4], 0, 32).astype(np.uint64)
        start = _cleared(parsed.v4_value[v4], np.uint64(32) - length)
        _, first, groups = np.unique(start << np.uint64(8) | length, return_index=True,
                                     return_inverse=True)
        inverse[v4] = groups.reshape(-1)
        texts += [str(ipaddress.IPv4Network((int(start[one]), int(length[one]))))
                  for one in first.tolist()]
        firsts.append(v4[first])
    v6 = np.flatnonzero(found & parsed.v6)
    if len(v6):
        length = lengths[v6].astype(np.uint64)
        host = np.uint64(128) - length
        hi = _cleared(parsed.v6_hi[v6], np.clip(host, 64, 128) - np.uint64(64))
        lo = _cleared(parsed.v6_lo[v6], np.minimum(host, np.uint64(64)))
        _, first, groups = np.unique(np.stack([hi, lo, length], axis=1), axis=0,
                                     return_index=True, return_inverse=True)
        inverse[v6] = groups.reshape(-1) + len(texts)
        texts += [str(ipaddress.IPv6Network(((int(hi[one]) << 64) | int(lo[one]), int(length[one]))))
                  for one in first.tolist()]
        firsts.append(v6[first])
    first_positions = np.concatenate(firsts) if firsts else np.zeros(0, dtype=np.int64)
    return texts, first_positions, inverse


def _prefix_length(get: Callable[[str], tuple[Any, int]], text: str) -> int:
    try:
        record, length = get(text)
    except ValueError:
        return -1
    return length if type(record) is dict else -1


def _cleared(values: np.ndarray, low_bits: np.ndarray) -> np.ndarray:
    """``values`` (uint64) with their ``low_bits`` lowest bits zero (0 to 64 bits)."""
    low_bits = np.asarray(low_bits, dtype=np.uint64)
    ones = (np.uint64(1) << np.minimum(low_bits, np.uint64(63))) - np.uint64(1)
    keep = np.where(low_bits >= 64, np.uint64(0), ~ones)
    return values & keep
