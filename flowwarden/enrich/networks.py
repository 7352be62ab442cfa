"""Longest-prefix matching of addresses against a set of networks, vectorized.

IPv4 networks are grouped by prefix length (``PrefixSets``): a batch of keys is one
``numpy.searchsorted`` per length present, longest first. IPv6 networks (few in practice) are
flattened once into disjoint intervals, each holding the row of the longest prefix that covers
it (CIDR blocks are nested or disjoint, so one sweep with a stack does it), and a batch is one
``lexsort`` merge over two 64-bit halves. Either way cost grows with the keys asked, not with
the table, and building an IPv4 index runs no Python per network.

>>> index = NetworkIndex.build(["10.0.0.0/8", "10.1.0.0/16", "::/0"])
>>> import pyarrow as pa
>>> index.find(pa.array(["10.1.2.3", "10.2.0.0", "11.0.0.0", "2001:db8::1", "x"])).tolist()
[1, 0, -1, 2, -1]
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from flowwarden.enrich.addresses import LOW_64, network_of, parse_addresses, parse_v4_networks

NO_ROW = -1


@dataclass(frozen=True)
class Intervals:
    """Disjoint intervals of one address family: ``starts`` ascending, each interval running to
    the next start, with the row it maps to (``NO_ROW`` in the gaps)."""

    starts: list[int]
    rows: list[int]

    @staticmethod
    def flatten(networks: Iterable[tuple[int, int, int]], top: int) -> Intervals:
        """(first address, last address, row) triples, nested or disjoint, in a family whose
        highest address is ``top``; for the same network given twice, the later row wins."""
        starts: list[int] = []
        rows: list[int] = []

        def mark(at: int, row: int) -> None:
            if at > top:
                return
            if starts and starts[-1] == at:
                rows[-1] = row  # a deeper network begins where another one does
            else:
                starts.append(at)
                rows.append(row)

        stack: list[tuple[int, int, int]] = []  # (first, last, row) of the open networks

        def close_before(at: int | None) -> None:
            while stack and (at is None or stack[-1][1] < at):
                _, last, _ = stack.pop()
                mark(last + 1, stack[-1][2] if stack else NO_ROW)

        ordered = sorted(enumerate(networks), key=lambda item: (item[1][0], -item[1][1], item[0]))
        for _, (first, last, row) in ordered:
            close_before(first)
            if stack and stack[-1][:2] == (first, last):
                stack[-1] = (first, last, row)
            else:
                stack.append((first, last, row))
            mark(first, row)
        close_before(None)
        return Intervals(starts, rows)


@dataclass(frozen=True)
class PrefixSets:
    """IPv4 networks grouped by prefix length, longest first: per length the sorted network
    addresses and their rows. An address's longest match is the first length whose set holds
    the address with its host bits cleared: one ``searchsorted`` per length present (at most 33),
    and building is sorting, with no Python per network."""

    lengths: tuple[int, ...]
    starts: tuple[np.ndarray, ...]  # uint64, ascending and distinct
    rows: tuple[np.ndarray, ...]  # int64

    @staticmethod
    def build(values: np.ndarray, lengths: np.ndarray, rows: np.ndarray) -> PrefixSets:
        """Networks as addresses (host bits may be set), prefix lengths and rows; of the same
        network given twice, the later row wins."""
        found: list[tuple[int, np.ndarray, np.ndarray]] = []
        for length in sorted(set(lengths.tolist()), reverse=True):
            mine = lengths == length
            starts = values[mine] & _netmask(length)
            at = rows[mine]
            order = np.lexsort((at, starts))  # by start, then row: the last of a start wins
            starts, at = starts[order], at[order]
            last = np.r_[starts[1:] != starts[:-1], True]
            found.append((length, starts[last], at[last]))
        return PrefixSets(tuple(f[0] for f in found), tuple(f[1] for f in found),
                          tuple(f[2] for f in found))

    def find(self, values: np.ndarray) -> np.ndarray:
        """Per address (uint64), the row of its longest network, or ``NO_ROW``."""
        found = np.full(len(values), NO_ROW, dtype=np.int64)
        pending = np.arange(len(values))
        for length, starts, rows in zip(self.lengths, self.starts, self.rows, strict=True):
            if not len(pending):
                break
            masked = values[pending] & _netmask(length)
            at = np.minimum(np.searchsorted(starts, masked), len(starts) - 1)
            hit = starts[at] == masked
            found[pending[hit]] = rows[at[hit]]
            pending = pending[~hit]
        return found


def _netmask(length: int) -> np.uint64:
    return np.uint64(((1 << 32) - 1) ^ ((1 << (32 - length)) - 1))


@dataclass(frozen=True)
class NetworkIndex:
    """Where each address falls: the row of the longest network containing it."""

    v4: PrefixSets
    v6_hi: np.ndarray  # uint64 halves of the IPv6 interval starts
    v6_lo: np.ndarray
    v6_rows: np.ndarray
    unparsed: tuple[int, ...]  # positions of keys that are not networks

    @staticmethod
    def build(keys: pa.Array | Iterable[str | None]) -> NetworkIndex:
        """An index over table keys (networks or plain addresses); row i is the i-th key.

        Plain IPv4 networks (most of a feed) are read column-wise; the rest, IPv6 and forms
        such as netmasks, one ``ipaddress`` call each.
        """
        texts = keys.cast(pa.string()) if isinstance(keys, pa.Array) else pa.array(
            list(keys), pa.string())
        plain = parse_v4_networks(texts)
        values, lengths = plain.value.copy(), plain.length.copy()
        is_v4 = plain.v4.copy()
        v6: list[tuple[int, int, int]] = []
        unparsed: list[int] = []
        rest = np.flatnonzero(~plain.v4)
        for row, text in zip(rest.tolist(), texts.take(pa.array(rest, pa.int64())).to_pylist(),
                             strict=True):
            network = network_of(text) if text is not None else None
            if network is None:
                unparsed.append(row)
            elif isinstance(network, ipaddress.IPv4Network):
                is_v4[row] = True
                values[row], lengths[row] = int(network.network_address), network.prefixlen
            else:
                v6.append((int(network.network_address), int(network.broadcast_address), row))
        rows = np.flatnonzero(is_v4)
        six = Intervals.flatten(v6, (1 << 128) - 1)
        return NetworkIndex(
            PrefixSets.build(values[rows], lengths[rows], rows.astype(np.int64)),
            np.array([s >> 64 for s in six.starts], dtype=np.uint64),
            np.array([s & LOW_64 for s in six.starts], dtype=np.uint64),
            np.array(six.rows, dtype=np.int64), tuple(unparsed))

    def find(self, keys: pa.Array) -> np.ndarray:
        """Per key, the row of the longest network containing it, or ``NO_ROW``."""
        parsed = parse_addresses(keys)
        found = np.full(len(keys), NO_ROW, dtype=np.int64)
        if parsed.v4.any() and self.v4.lengths:
            found[parsed.v4] = self.v4.find(parsed.v4_value[parsed.v4])
        if parsed.v6.any() and len(self.v6_hi):
            at = _last_start_at_or_below(self.v6_hi, self.v6_lo, parsed.v6_hi[parsed.v6],
                                         parsed.v6_lo[parsed.v6])
            found[parsed.v6] = np.where(at >= 0, self.v6_rows[np.maximum(at, 0)], NO_ROW)
        return found


def _last_start_at_or_below(hi: np.ndarray, lo: np.ndarray, key_hi: np.ndarray,
                            key_lo: np.ndarray) -> np.ndarray:
    """``searchsorted(starts, keys, side="right") - 1`` over 128-bit values given as halves:
    starts and keys merged in one lexicographic sort (a start sorts before an equal key), then
    the latest start seen before each key."""
    starts = len(hi)
    order = np.lexsort((np.r_[np.zeros(starts, np.int8), np.ones(len(key_hi), np.int8)],
                        np.r_[lo, key_lo], np.r_[hi, key_hi]))
    is_start = order < starts
    latest = np.maximum.accumulate(np.where(is_start, order, -1))
    result = np.empty(len(key_hi), dtype=np.int64)
    result[order[~is_start] - starts] = latest[~is_start]
    return result
