"""The allocator Arrow's buffers come from during a scan.

pyarrow's default pool is mimalloc. A scan gives the memory of each batch back after the batch
(``engine.loop.scan_loop``, so the peak stays one batch's), and mimalloc returns those pages to
the kernel in a way that cost 1.5–2.1 s of system time per 10M records here, against 0.3–0.4 s
for jemalloc, which pyarrow also ships: a rare-match scan took a quarter less time with it
(``benchmarks/engine.py --parts rare``). A user who names a pool in
``ARROW_DEFAULT_MEMORY_POOL`` keeps it.
"""

from __future__ import annotations

import contextlib
import os

import pyarrow as pa

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def choose_arrow_pool() -> str:
    """Make jemalloc Arrow's default pool unless ``POOL_VARIABLE`` names one or this pyarrow
    was built without jemalloc (then it keeps its default); returns the pool in use."""
    if not os.environ.get(POOL_VARIABLE):
        with contextlib.suppress(NotImplementedError):
            pa.set_memory_pool(pa.jemalloc_memory_pool())
    return pa.default_memory_pool().backend_name
