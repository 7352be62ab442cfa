"""Per-row IP probe codes, computed once per distinct address with the running ``ipaddress``.

Flow logs repeat addresses heavily, so a column is dictionary-encoded (Parquet dictionaries
come for free) and only its distinct values are classified; ``take`` maps the codes back.

Distinct values that are canonical dotted-quad IPv4 strings are classified vectorized through a
range table *derived from* the ``ipaddress`` module at first use: its boundaries are every IPv4
network the module consults (its constants, plus network literals in its own source), and each
interval's code is what ``Probe.classify`` (the module itself) says for the interval's first,
middle and last address; an interval where they disagree is left to Python. Plain IPv6
addresses get the same treatment for check probes, interval by interval as values fall in them
(``Ipv6Table``): the boundaries are every IPv6 network the module consults, plus, inside
``::ffff:0:0/96`` (whose addresses classify as the IPv4 address they embed), every IPv4
boundary; an interpreter whose IPv6 checks look at anything else (6to4, Teredo) keeps Python for
IPv6. Every other value (CIDR strings, zones, garbage, IPv6 under CIDR probes) goes through
``Probe.classify`` once and is cached across batches.

>>> import pyarrow as pa
>>> from flowwarden.logic.render.probe import TRUTHY, Probe
>>> codes = IpClassifier().codes(pa.array(["10.0.0.1", "8.8.8.8", None]), Probe("check", "network", True))
>>> [bool(c & Probe.bit("is_global")) for c in codes.to_pylist()]
[False, True, False]
"""

from __future__ import annotations

import bisect
import functools
import inspect
import ipaddress
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.logic.ir import IP_ATTRS
from flowwarden.logic.render.probe import TRUTHY, Probe
from flowwarden.logs.common import dictionary_positions

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Exactly the strings ipaddress accepts as a plain IPv4 address: four canonical decimal octets
# (no leading zeros, ASCII digits only, nothing before or after; RE2's `$` is end of text).
IPV4_PATTERN = rf"^(?:{_OCTET}\.){{3}}{_OCTET}$"
# What may be a plain IPv6 address (``ipaddress.IPv6Address`` decides): no zone, no prefix.
IPV6_CANDIDATE = r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*"  # matched in full
IPV4_MAPPED = 0xFFFF << 32  # ::ffff:0:0/96
# Properties of embedded addresses that, when an IPv6 check consults them, make the check
# depend on more than network membership (only ``ipv4_mapped`` is handled, by its boundaries).
EMBEDDINGS = ("sixtofour", "teredo", "ipv4_compat")
IPV6_SHAPE = re.compile(IPV6_CANDIDATE)
STRING_LITERAL = re.compile(r"""(['"])([^'"\\\n]*)\1""")  # simple one-line quoted strings
UNKNOWN = -1
CODE_TYPE = pa.int16()
MAX_CACHE = 2_000_000
MAX_DICTIONARIES = 32


@functools.lru_cache(maxsize=1)
def module_ipv4_networks() -> tuple[ipaddress.IPv4Network, ...]:
    """Every IPv4 network the running ``ipaddress`` module consults for classification."""
    found: list[ipaddress.IPv4Network] = []

    def collect(value: Any) -> None:
        if isinstance(value, ipaddress.IPv4Network):
            found.append(value)
        elif isinstance(value, ipaddress.IPv4Address):
            found.append(ipaddress.IPv4Network(value))
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                collect(item)

    # a private class of the running module: its ranges are what is_private/is_global test
    for value in vars(getattr(ipaddress, "_IPv4Constants")).values():  # noqa: B009
        collect(value)
    for text in module_string_literals():
        try:
            collect(ipaddress.IPv4Network(text))
        except ValueError:
            continue
    return tuple(found)


@functools.lru_cache(maxsize=1)
def module_string_literals() -> tuple[str, ...]:
    """The quoted strings of the running ``ipaddress`` module's source, the network literals
    among them. A regular expression, not ``ast`` (a tenth of a second less per process): a
    quoted piece of a comment may come along, and a network that is not consulted only adds a
    boundary, which never changes a code (each interval is still classified by the module)."""
    return tuple(m.group(2) for m in STRING_LITERAL.finditer(inspect.getsource(ipaddress)))


@functools.lru_cache(maxsize=1)
def module_ipv6_boundaries() -> tuple[int, ...] | None:
    """Where the running module's IPv6 checks can change value: the bounds of every IPv6 network
    it consults and of every IPv4 network mapped into ``::ffff:0:0/96``; None when a check
    consults an embedded address other than ``ipv4_mapped`` (IPv6 then stays with Python)."""
    for attr in IP_ATTRS:
        for cls in (ipaddress.IPv6Address, ipaddress.IPv6Network):
            getter = getattr(getattr(cls, attr, None), "fget", None)
            source = inspect.getsource(getter) if getter is not None else ""
            if any(name in source for name in EMBEDDINGS):
                return None
    found: list[ipaddress.IPv6Network] = []
    for value in vars(getattr(ipaddress, "_IPv6Constants")).values():  # noqa: B009
        found.extend(_ipv6_networks(value))
    for text in module_string_literals():
        try:
            found.append(ipaddress.IPv6Network(text))
        except ValueError:
            continue
    # ``is_unspecified`` and ``is_loopback`` compare the integer with 0 and 1: single addresses
    bounds = {0, 1, 2, IPV4_MAPPED, IPV4_MAPPED + 2**32}
    for net in found:
        bounds.update((int(net.network_address), int(net.broadcast_address) + 1))
    for net4 in module_ipv4_networks():
        bounds.update((IPV4_MAPPED + int(net4.network_address),
                       IPV4_MAPPED + int(net4.broadcast_address) + 1))
    return tuple(sorted(b for b in bounds if b < 2**128))


def _ipv6_networks(value: Any) -> list[ipaddress.IPv6Network]:
    if isinstance(value, ipaddress.IPv6Network):
        return [value]
    if isinstance(value, ipaddress.IPv6Address):
        return [ipaddress.IPv6Network(value)]
    if isinstance(value, list | tuple | set | frozenset):
        return [net for item in value for net in _ipv6_networks(item)]
    return []


class Ipv6Table:
    """Codes of plain IPv6 addresses under one check probe: one code per interval between
    ``module_ipv6_boundaries``, what ``Probe.classify`` gives its first, middle and last address
    (UNKNOWN where they disagree), computed when a value first falls in the interval."""

    def __init__(self, probe: Probe, starts: tuple[int, ...]) -> None:
        self.probe = probe
        self.starts = starts
        self.codes: dict[int, int] = {}

    def code(self, number: int) -> int:
        index = bisect.bisect_right(self.starts, number) - 1
        code = self.codes.get(index)
        if code is None:
            start = self.starts[index]
            end = self.starts[index + 1] if index + 1 < len(self.starts) else 2**128
            samples = {start, (start + end - 1) // 2, end - 1}
            found = {self.probe.classify(str(ipaddress.IPv6Address(a))) for a in samples}
            code = self.codes[index] = found.pop() if len(found) == 1 else UNKNOWN
        return code


@functools.lru_cache(maxsize=256)
def ipv6_table(probe: Probe) -> Ipv6Table | None:
    """The IPv6 table of a check probe, or None (CIDR probes, or the module's checks consult
    more than network membership)."""
    starts = module_ipv6_boundaries()
    if probe.kind != "check" or starts is None:
        return None
    return Ipv6Table(probe, starts)


def parse_ipv6(value: str) -> int | None:
    """A plain IPv6 address (no zone: ``IPV6_CANDIDATE`` strings) as an integer, or None."""
    try:
        return int(ipaddress.IPv6Address(value))
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)
def ipv4_table(probe: Probe) -> tuple[np.ndarray, np.ndarray]:
    """(interval starts, codes) for canonical IPv4 strings under ``probe`` (fallbacks unused)."""
    networks = module_ipv4_networks() if probe.kind == "check" else tuple(_probe_ipv4_networks(probe))
    bounds = {0}
    for net in networks:
        bounds.add(int(net.network_address))
        bounds.add(int(net.broadcast_address) + 1)
    starts = sorted(b for b in bounds if b < 2**32)
    ends = [*starts[1:], 2**32]
    codes = []
    for start, end in zip(starts, ends, strict=True):
        samples = {start, (start + end - 1) // 2, end - 1}
        found = {probe.classify(str(ipaddress.IPv4Address(a))) for a in samples}
        codes.append(found.pop() if len(found) == 1 else UNKNOWN)
    return np.asarray(starts, dtype=np.int64), np.asarray(codes, dtype=np.int16)


def _probe_ipv4_networks(probe: Probe) -> list[ipaddress.IPv4Network]:
    found = []
    for text in probe.networks:
        try:
            net = ipaddress.ip_network(text, strict=probe.strict)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            found.append(net)
    return found


def parse_ipv4(values: pa.Array) -> np.ndarray:
    """Canonical dotted-quad strings (already validated) as integers."""
    octets = pc.cast(pc.split_pattern(values, ".").flatten(), pa.int64())
    quad = octets.to_numpy().reshape(-1, 4)
    return (quad[:, 0] << 24) | (quad[:, 1] << 16) | (quad[:, 2] << 8) | quad[:, 3]


@functools.lru_cache(maxsize=256)
def null_code(probe: Probe) -> int:
    """The code of a null row (``probe.classify(None)``, which may parse a fallback)."""
    return probe.classify(None)


class IpClassifier:
    """Computes probe codes for string columns, caching verdicts across batches.

    Non-IPv4 values are cached by value. Whole dictionaries are cached by identity: batches
    read from one Parquet row group share their dictionary, which is then classified once.
    """

    def __init__(self, max_cache: int = MAX_CACHE) -> None:
        self.max_cache = max_cache
        self._cache: dict[Probe, dict[Any, int]] = {}
        # (buffer addresses, offset, length, probe) -> (dictionary kept alive, its codes)
        self._dictionaries: dict[tuple[Any, ...], tuple[pa.Array, np.ndarray]] = {}

    def codes(self, array: pa.Array | pa.ChunkedArray, probe: Probe) -> pa.Array:
        """One int16 code per row of ``array`` (a string, dictionary-of-string or null array).

        Codes carry ``TRUTHY`` for non-empty strings; a null row gets ``classify(None)``.
        """
        return self.codes_many(array, [probe])[0]

    def codes_many(self, array: pa.Array | pa.ChunkedArray, probes: list[Probe]) -> list[pa.Array]:
        """Codes for several probes of one column: encoded once, classified once per base probe.

        A probe with fallbacks (``x or "0.0.0.0/32"``) reuses its base probe's codes, replacing
        those of falsy values (null, "") by the fallback's constant code.
        """
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_null(array.type):
            return [pa.array(np.full(len(array), p.classify(None), dtype=np.int16)) for p in probes]
        if pa.types.is_string_view(array.type):
            array = array.cast(pa.string())
        elif pa.types.is_dictionary(array.type) and pa.types.is_string_view(array.type.value_type):
            array = array.cast(pa.dictionary(array.type.index_type, pa.string()))
        encoded = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
        positions = dictionary_positions(encoded)  # null rows: the slot after the dictionary
        base: dict[Probe, np.ndarray] = {}
        out = []
        for probe in probes:
            plain = probe.with_fallback(())
            if plain not in base:
                base[plain] = self._distinct_codes(encoded, plain, array is not encoded)
            codes = base[plain]
            otherwise = null_code(probe)
            if probe.fallback:
                codes = np.where(codes & TRUTHY, codes, np.int16(otherwise))
            out.append(pa.array(np.append(codes, np.int16(otherwise))[positions], type=CODE_TYPE))
        return out

    def _distinct_codes(self, encoded: pa.DictionaryArray, probe: Probe, fresh: bool) -> np.ndarray:
        if not fresh and len(encoded.dictionary) > len(encoded) // 4:
            # A Parquet page dictionary can hold far more values than this batch uses.
            return self._used_codes(encoded, probe)
        return self._dictionary_codes(encoded.dictionary, probe)

    def _used_codes(self, array: pa.DictionaryArray, probe: Probe) -> np.ndarray:
        """Codes for a dictionary, classifying only the entries the indices use."""
        used = pc.drop_null(pc.unique(array.indices))
        codes = np.zeros(len(array.dictionary), dtype=np.int16)
        codes[used.to_numpy()] = self.classify_distinct(array.dictionary.take(used), probe)
        return codes

    def _dictionary_codes(self, dictionary: pa.Array, probe: Probe) -> np.ndarray:
        key = (tuple(b.address if b is not None else 0 for b in dictionary.buffers()),
               dictionary.offset, len(dictionary), probe)
        hit = self._dictionaries.get(key)
        if hit is not None:
            return hit[1]
        codes = self.classify_distinct(dictionary, probe)
        if len(self._dictionaries) >= MAX_DICTIONARIES:
            self._dictionaries.pop(next(iter(self._dictionaries)))
        self._dictionaries[key] = (dictionary, codes)  # holding it keeps the addresses unique
        return codes

    def classify_distinct(self, values: pa.Array, probe: Probe) -> np.ndarray:
        """Codes for distinct values: IPv4 through the derived table, the rest via the cache."""
        out = np.full(len(values), UNKNOWN, dtype=np.int16)
        if len(values) == 0:
            return out
        if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
            values = values.cast(pa.string())
        is_v4 = pc.fill_null(pc.match_substring_regex(values, IPV4_PATTERN), False)
        v4_mask = is_v4.to_numpy(zero_copy_only=False)
        if v4_mask.any():
            starts, table = ipv4_table(probe)
            ints = parse_ipv4(values.filter(is_v4))
            found = table[np.searchsorted(starts, ints, side="right") - 1]
            out[v4_mask] = np.where(found == UNKNOWN, UNKNOWN, found | TRUTHY)
        rest = np.flatnonzero(out == UNKNOWN)
        if len(rest):
            out[rest] = self._python(values.take(pa.array(rest)).to_pylist(), probe)
        return out

    def _python(self, values: list[Any], probe: Probe) -> list[int]:
        """Codes of the values the IPv4 table left: plain IPv6 addresses through the IPv6
        table where it decides, every other value by ``Probe.classify``, cached by value."""
        cache = self._cache.setdefault(probe, {})
        if len(cache) > self.max_cache:
            cache.clear()
        table = ipv6_table(probe)
        codes = []
        for value in values:
            code = cache.get(value)
            if code is None:
                code = self._ipv6_code(table, value)
                if code == UNKNOWN:
                    code = probe.classify(value) | (TRUTHY if value else 0)
                cache[value] = code
            codes.append(code)
        return codes

    @staticmethod
    def _ipv6_code(table: Ipv6Table | None, value: Any) -> int:
        """``value``'s code from the IPv6 table (TRUTHY set), or UNKNOWN."""
        if table is None or not isinstance(value, str) or not IPV6_SHAPE.fullmatch(value):
            return UNKNOWN
        number = parse_ipv6(value)
        if number is None:
            return UNKNOWN
        code = table.code(number)
        return code if code == UNKNOWN else code | TRUTHY
