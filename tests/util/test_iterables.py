"""``ahead``: the items in order, errors where they happen, and a consumer that stops early
stops the thread that makes them."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from flowwarden.util.iterables import ahead, chunks


def test_items_come_in_order_however_slow_the_consumer() -> None:
    made = []

    def pieces() -> Iterator[int]:
        for number in range(50):
            made.append(number)
            yield number

    seen = []
    for piece in ahead(pieces(), depth=3):
        seen.append(piece)
        assert len(made) <= len(seen) + 4  # at most depth ahead, and the one being made
    assert seen == list(range(50))


def test_an_error_is_raised_in_the_place_of_its_piece() -> None:
    def pieces() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad batch")

    seen = []
    with pytest.raises(ValueError, match="bad batch"):
        for piece in ahead(pieces()):
            seen.append(piece)
    assert seen == [1, 2]


def test_stopping_early_stops_the_maker_and_closes_its_items() -> None:
    closed = threading.Event()

    def pieces() -> Iterator[int]:
        try:
            number = 0
            while True:
                yield number
                number += 1
        finally:
            closed.set()

    before = threading.active_count()
    stream = ahead(pieces(), depth=2)
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()  # type: ignore[attr-defined]  # a generator
    assert closed.is_set()
    assert threading.active_count() == before


def test_chunks_keep_every_item() -> None:
    assert list(chunks(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
