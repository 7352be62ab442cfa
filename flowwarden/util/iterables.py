"""Iterables in fixed-size pieces, or made ahead of their consumer; sequences by index."""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar, cast

T = TypeVar("T")

_WAIT = 0.05  # seconds between checks for a consumer that stopped
_AT_EXIT = 5.0  # seconds a maker still running at exit is waited for


def picked(index: int | slice, count: int) -> int | range:
    """What ``index`` picks of a sequence of ``count`` items: a position (negative ones
    counted from the end) or a range of positions.

    >>> picked(-1, 5), picked(slice(1, None), 5), picked(slice(None, None, -2), 5)
    (4, range(1, 5), range(4, -1, -2))
    >>> picked(5, 5)
    Traceback (most recent call last):
    IndexError: index out of range
    """
    if isinstance(index, slice):
        return range(*index.indices(count))
    position = index + count if index < 0 else index
    if not 0 <= position < count:
        raise IndexError("index out of range")
    return position


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` as lists of ``size`` (the last one shorter, none empty).

    >>> list(chunks(range(5), 2))
    [[0, 1], [2, 3], [4]]
    """
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items`` in order, made by a thread of their own up to ``depth`` pieces ahead of the
    consumer: a query (which releases the GIL) makes the next piece while the last one is
    written out. An error in making them is raised here, in the piece's place; a consumer
    that stops early stops the thread after the piece it is making. ``items`` must not be
    touched by anything else until this iterator is done or closed.

    >>> list(ahead(iter(range(5))))
    [0, 1, 2, 3, 4]
    """
    pieces: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(piece: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                pieces.put(piece, timeout=_WAIT)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        source = iter(items)
        try:
            for item in source:
                if not offer((True, item)):
                    return
            offer((False, None))
        except BaseException as exc:  # handed to the consumer, raised there
            offer((False, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def halt(timeout: float | None = _AT_EXIT) -> None:
        stop.set()
        maker.join(timeout=timeout)

    maker = threading.Thread(target=make, name="flowwarden-ahead", daemon=True)
    maker.start()
    # Still running at exit: stopped while the interpreter can still serve the thread (pyarrow's
    # I/O threads reading a Python file need the GIL; exit would wait on them).
    atexit.register(halt)
    try:
        while True:
            more, value = pieces.get()
            if not more:
                if isinstance(value, BaseException):
                    raise value
                return
            yield cast(T, value)
    finally:
        atexit.unregister(halt)
        halt(None)  # whatever ``items`` uses (a connection, a file) is free again after this
