"""Statements a connection runs again and again, each parsed and planned once.

A scan runs the same few queries on every batch (its verdicts, its matches' alert functions,
their samples as JSON), and on the small ones DuckDB spends most of its time parsing and
planning the text: a sample query of a thousand records costs twice its execution in planning.
``PREPARE`` keeps the plan; DuckDB binds it again when the Arrow data registered under the
view's name changes, so each run reads the data registered at that moment. DuckDB runs an
``EXECUTE``'s scan of a registered view on one thread, though: a statement over a large batch
(the condition query over a million rows) runs faster planned afresh.
"""

from __future__ import annotations

import duckdb


class Prepared:
    """``connection``'s statements by their text, prepared on first use.

    >>> import pyarrow as pa
    >>> con = duckdb.connect()
    >>> prepared = Prepared(con)
    >>> results = []
    >>> for numbers in ([1, 2], [5]):
    ...     _ = con.register("v", pa.table({"n": numbers}))
    ...     results.append(prepared.sql("SELECT sum(n) AS s FROM v").fetchall())
    ...     _ = con.unregister("v")
    >>> results
    [[(3,)], [(5,)]]
    >>> len(prepared)
    1
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        self._names: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._names)

    def sql(self, text: str) -> duckdb.DuckDBPyRelation:
        """The relation of the statement ``text`` (a relation for ``to_arrow_table``)."""
        return self.connection.sql(f"EXECUTE {self._name(text)}")

    def execute(self, text: str) -> duckdb.DuckDBPyConnection:
        """The statement ``text`` run (for ``fetchnumpy`` and the other fetches)."""
        return self.connection.execute(f"EXECUTE {self._name(text)}")

    def _name(self, text: str) -> str:
        name = self._names.get(text)
        if name is None:
            name = f"flowwarden_prepared_{len(self._names)}"
            self.connection.execute(f"PREPARE {name} AS {text}")
            self._names[text] = name
        return name
