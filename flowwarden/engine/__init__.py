"""Running a scan: batches in, compiled conditions, Python only where needed, alerts out.

- ``engines``: the ``Engine`` protocol and the registry (``duckdb``, ``python``, ``spark``).
- ``loop``: the one scan loop, with the phase-1 column projection.
- ``scan``: the ``Scanner`` that accumulates matches, errors and alert groups.
- ``local/``: the in-process engines; ``spark/``: the Spark engine.
"""
