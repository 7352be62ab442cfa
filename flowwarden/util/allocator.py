"""The allocator Arrow's buffers come from during a scan.

pyarrow's default pool is mimalloc. A scan gives the memory of each batch back after the batch
(``engine.loop.scan_loop``, so the peak stays one batch's), and mimalloc returns those pages to
the kernel in a way that cost 1.2–1.6 s of system time per 10M records here, a quarter of a
rare-match scan; jemalloc, which pyarrow also ships, returns the same memory for 0.4 s
(``benchmarks/engine.py --parts rare``). A user who names a pool in
``ARROW_DEFAULT_MEMORY_POOL`` keeps it.
"""

from __future__ import annotations

import contextlib
import os

import pyarrow as pa

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
PREFERRED = "jemalloc"


def choose_arrow_pool() -> str:
    """Make jemalloc Arrow's default pool unless ``POOL_VARIABLE`` names one or this pyarrow
    was built without jemalloc (then it keeps its default); returns the pool in use."""
    if not os.environ.get(POOL_VARIABLE):
        with contextlib.suppress(NotImplementedError):
            pa.set_memory_pool(pa.jemalloc_memory_pool())
    return pa.default_memory_pool().backend_name
