"""Value limits of the readers (``flowwarden.logs.limits``)."""

from __future__ import annotations

import pyarrow as pa

from flowwarden.logs.limits import valid_text

BAD = pa.array([b"ok", b"\xff", b"x"]).cast(pa.string(), safe=False)


def _sliced(values: pa.Array) -> pa.Array:
    """``values`` as a slice of a longer array (offset 1, a null before it)."""
    return pa.concat_arrays([pa.array([None], values.type), values]).slice(1, len(values))


def test_invalid_utf8_is_replaced_inside_sliced_lists_and_structs() -> None:
    # Batches handed on in pieces (Spark's per-source runs, coalesced reads) are slices;
    # Arrow cannot rebuild a slice with a null mask, so the repair must not try.
    lists = _sliced(pa.ListArray.from_arrays(pa.array([0, 1, 2, 3], pa.int32()), BAD))
    structs = _sliced(pa.StructArray.from_arrays([BAD], names=["s"]))
    assert valid_text(lists).to_pylist() == [["ok"], ["\ufffd"], ["x"]]
    assert valid_text(structs).to_pylist() == [{"s": "ok"}, {"s": "\ufffd"}, {"s": "x"}]


def test_valid_text_is_returned_as_it_is() -> None:
    for values in (_sliced(pa.array([["a"], None, ["b"]])),
                   _sliced(pa.array([{"s": "a"}, None])), pa.array(["a", None])):
        assert valid_text(values) is values
