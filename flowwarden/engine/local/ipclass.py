"""Per-row IP probe codes, computed once per distinct address with the running ``ipaddress``.

Flow logs repeat addresses heavily, so a column is dictionary-encoded (Parquet dictionaries
come for free) and only its distinct values are classified; ``take`` maps the codes back.

Distinct values that are canonical dotted-quad IPv4 strings are classified vectorized through a
range table *derived from* the ``ipaddress`` module at first use: its boundaries are every IPv4
network the module consults (its constants, plus network literals in its own source), and each
interval's code is what ``Probe.classify`` (the module itself) says for the interval's first,
middle and last address; an interval where they disagree is left to Python. Every other value
(IPv6, CIDR strings, garbage) goes through ``Probe.classify`` once and is cached across batches.

>>> import pyarrow as pa
>>> from flowwarden.logic.render.probe import TRUTHY, Probe
>>> codes = IpClassifier().codes(pa.array(["10.0.0.1", "8.8.8.8", None]), Probe("check", "network", True))
>>> [bool(c & Probe.bit("is_global")) for c in codes.to_pylist()]
[False, True, False]
"""

from __future__ import annotations

import ast
import functools
import inspect
import ipaddress
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowwarden.logic.render.probe import TRUTHY, Probe
from flowwarden.logs.common import dictionary_positions

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# Exactly the strings ipaddress accepts as a plain IPv4 address: four canonical decimal octets
# (no leading zeros, ASCII digits only, nothing before or after; RE2's `$` is end of text).
IPV4_PATTERN = rf"^(?:{_OCTET}\.){{3}}{_OCTET}$"
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
    for node in ast.walk(ast.parse(inspect.getsource(ipaddress))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                collect(ipaddress.IPv4Network(node.value))
            except ValueError:
                continue
    return tuple(found)


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
        cache = self._cache.setdefault(probe, {})
        if len(cache) > self.max_cache:
            cache.clear()
        codes = []
        for value in values:
            code = cache.get(value)
            if code is None:
                code = probe.classify(value) | (TRUTHY if value else 0)
                cache[value] = code
            codes.append(code)
        return codes
