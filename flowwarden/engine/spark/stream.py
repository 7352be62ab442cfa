"""A DataFrame's Arrow batches handed over as the driver receives them, not collected first.

``DataFrame.toArrow`` computes every partition in one job and the JVM sends each partition's
batches as soon as it is computed, out of order, then the order they belong in; PySpark keeps
every batch in memory until that order arrives. ``arriving_batches`` reads the same stream and
hands each batch on at once (the caller puts it away), so the driver's Python holds one batch,
however large the result. It reads PySpark's collect stream directly (``collectAsArrowToPython``,
the protocol ``toArrow`` reads since Spark 3.0); a DataFrame without it (Spark Connect) is read
with ``toArrow`` and handed over in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import pyarrow as pa

Keep = Callable[[pa.RecordBatch], None]


def arriving_batches(frame: Any, keep: Keep) -> list[int]:
    """Hand each of ``frame``'s Arrow batches to ``keep`` as it arrives; returns the batches'
    indexes (in the order they were kept) in the frame's own order."""
    try:
        from pyspark.errors.exceptions.captured import unwrap_spark_exception
        from pyspark.serializers import Serializer, UTF8Deserializer, read_int
        from pyspark.traceback_utils import SCCallSiteSync
        from pyspark.util import _load_from_socket

        collect = frame._jdf.collectAsArrowToPython
    except (ImportError, AttributeError):
        return _in_order(frame, keep)

    class Raw(Serializer):
        """Hands over the socket's file itself, for the stream to be read here."""

        def load_stream(self, stream: IO[bytes]) -> IO[bytes]:
            return stream

    with SCCallSiteSync(frame._sc):
        port, secret, server = collect()
    try:
        with _load_from_socket((port, secret), Raw()) as stream:
            for batch in pa.ipc.open_stream(stream):
                keep(batch)
            count = read_int(stream)
            if count == -1:  # the JVM's error, raised in full by ``getResult`` below
                raise RuntimeError(UTF8Deserializer().loads(stream))
            order = [read_int(stream) for _ in range(count)]
    finally:
        with unwrap_spark_exception():
            server.getResult()
    return order


def _in_order(frame: Any, keep: Keep) -> list[int]:
    batches = frame.toArrow().to_batches()
    for batch in batches:
        keep(batch)
    return list(range(len(batches)))
