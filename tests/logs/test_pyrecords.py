"""``to_records`` equals ``RecordBatch.to_pylist()`` for every type a reader produces."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from flowwarden.logs import common
from flowwarden.logs.pyrecords import to_records
from tests.flowgen.generate import generate_flows

TIMES = st.one_of(st.none(), st.datetimes(min_value=datetime(1970, 1, 1),
                                          max_value=datetime(2100, 1, 1)))


def test_generated_flow_records_convert_exactly():
    batch = next(iter(generate_flows(5_000, seed=3)))
    got = to_records(batch)
    assert got == batch.to_pylist()
    assert [list(r) for r in got[:3]] == [list(r) for r in batch.to_pylist()[:3]]  # key order
    assert isinstance(got[0]["start"], datetime) and got[0]["start"].tzinfo is not None


@given(st.lists(st.tuples(TIMES, TIMES, st.one_of(st.none(), st.text(max_size=5)),
                          st.one_of(st.none(), st.lists(TIMES, max_size=3))), max_size=40))
def test_timestamps_of_every_unit_and_zone_with_nulls_and_nesting(rows):
    naive, aware, text, nested = (list(c) for c in zip(*rows, strict=True)) if rows else (
        [], [], [], [])
    batch = pa.RecordBatch.from_arrays([
        pa.array(naive, pa.timestamp("us")),
        pa.array([t and t.replace(tzinfo=UTC) for t in aware], pa.timestamp("s", tz="UTC")),
        pa.array(text, pa.string()),
        pa.array(nested, pa.list_(pa.timestamp("ms"))),
        pa.array(aware, pa.timestamp("ns")),
    ], names=["naive", "aware", "text", "nested", "nanos"])
    assert to_records(batch) == batch.to_pylist()


def test_empty_batches_and_batches_without_columns():
    empty = pa.RecordBatch.from_pydict({"t": pa.array([], pa.timestamp("s"))})
    assert to_records(empty) == []
    no_columns = pa.RecordBatch.from_pydict({"a": [1, 2]}).select([])
    assert to_records(no_columns) == no_columns.to_pylist()


def test_dictionary_positions_doctest():
    import doctest

    assert doctest.testmod(common).failed == 0
