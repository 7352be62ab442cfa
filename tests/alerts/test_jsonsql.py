"""Sample JSON written by DuckDB (``jsonsql.record_json``) equals what Python writes."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowwarden.alerts.formats.jsonl import jsonable
from flowwarden.alerts.formats.jsonsql import iso_micros, record_json
from flowwarden.alerts.grouping import compact
from flowwarden.logic.render.duckdb_sql import json_string
from flowwarden.logs.pyrecords import to_records

NAME_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
SCALARS: list[tuple[pa.DataType, st.SearchStrategy[Any]]] = [
    (pa.string(), st.text()),
    (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    (pa.uint64(), st.integers(0, 2**64 - 1)),
    (pa.bool_(), st.booleans()),
    (pa.float64(), st.floats(allow_nan=True, allow_infinity=True)),
    (pa.float32(), st.floats(width=32)),
    (pa.timestamp("us", tz="UTC"),
     st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                  timezones=st.just(UTC))),
    (pa.timestamp("ms", tz="UTC"),
     st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1),
                  timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=d.microsecond
                                                                  // 1000 * 1000))),
    (pa.timestamp("s"), st.datetimes(min_value=datetime(1900, 1, 1),
                                     max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0))),
    (pa.date32(), st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))),
    (pa.binary(), st.binary()),
]


def _typed(depth: int) -> st.SearchStrategy[tuple[pa.DataType, st.SearchStrategy[Any]]]:
    scalars = st.sampled_from(SCALARS)
    if depth == 0:
        return scalars
    inner = _typed(depth - 1)

    def as_list(typed: tuple[pa.DataType, st.SearchStrategy[Any]]
                ) -> tuple[pa.DataType, st.SearchStrategy[Any]]:
        kind, values = typed
        return pa.list_(kind), st.lists(st.none() | values, max_size=4)

    def as_struct(fields: list[tuple[str, tuple[pa.DataType, st.SearchStrategy[Any]]]]
                  ) -> tuple[pa.DataType, st.SearchStrategy[Any]]:
        kind = pa.struct([(name, typed[0]) for name, typed in fields])
        values = st.fixed_dictionaries({name: st.none() | typed[1] for name, typed in fields})
        return kind, values

    names = st.text(NAME_CHARS, min_size=1, max_size=6)
    structs = st.lists(st.tuples(names, inner), min_size=1, max_size=4,
                       unique_by=lambda f: f[0].lower()).map(as_struct)
    return st.one_of(scalars, inner.map(as_list), structs)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    columns = draw(st.lists(st.tuples(st.text(NAME_CHARS,
                                                    min_size=1, max_size=8), _typed(2)),
                            min_size=1, max_size=5, unique_by=lambda c: c[0].lower()))
    rows = draw(st.integers(1, 4))
    arrays = {}
    for name, (kind, values) in columns:
        data = draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
        arrays[name] = pa.array(data, type=kind)
    return pa.table(arrays)


def python_json(table: pa.Table) -> list[str]:
    return [json.dumps(jsonable(compact(record)), sort_keys=True, ensure_ascii=False)
            for record in to_records(table.combine_chunks().to_batches()[0])]


def sql_json(table: pa.Table) -> list[str | None]:
    query = record_json(table.schema, "t")
    assert query is not None
    con = duckdb.connect()
    con.register("t", table)
    return [row[0] for row in con.execute(query).fetchall()]


def agree(table: pa.Table) -> None:
    """Each row's SQL text is Python's, or NULL (left to Python) exactly where Python's text
    holds a ``\\u00`` escape, whose hex DuckDB writes in upper case."""
    for found, expected in zip(sql_json(table), python_json(table), strict=True):
        assert found == (None if "\\u00" in expected else expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_record_json_equals_python(table: pa.Table) -> None:
    agree(table)


def test_flow_record_and_awkward_values() -> None:
    table = pa.table({
        "srcAddr": ["10.0.0.1", None], "dstPort": [443, None], "note": ['a"\\\x0b\x1f\u2028é', None],
        "p_event_time": pa.array([datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                                  datetime(2024, 1, 2, 3, 4, 5, 600, tzinfo=UTC)],
                                 pa.timestamp("us", tz="UTC")),
        "p_any_ip_addresses": [["10.0.0.1", None], []],
        "ratio": [math.inf, math.nan],
        "nested": pa.array([{"b": None, "a": [{"z": 1, "y": None}]}, None],
                           pa.struct([("b", pa.string()),
                                      ("a", pa.list_(pa.struct([("z", pa.int64()),
                                                                ("y", pa.string())])))])),
    })
    agree(table)
    second = sql_json(table)[1]
    assert second is not None and second.startswith('{"p_any_ip_addresses": [], ')
    assert sql_json(table)[0] is None  # its note holds \x0b: Python writes it


@pytest.mark.parametrize("kind", [pa.decimal128(10, 2), pa.map_(pa.string(), pa.int64()),
                                  pa.timestamp("us", tz="Europe/Paris"), pa.timestamp("ns")])
def test_types_whose_text_could_differ_are_left_to_python(kind: pa.DataType) -> None:
    assert record_json(pa.schema([("x", pa.string()), ("y", kind)]), "t") is None


def test_a_name_sql_cannot_quote_is_left_to_python() -> None:
    assert record_json(pa.schema([("a\x00b", pa.string())]), "t") is None
    assert record_json(pa.schema([("s", pa.struct([("a", pa.int8()), ("A", pa.int8())]))]),
                       "t") is None


def test_column_names_are_quoted_and_keys_escaped() -> None:
    table = pa.table({'we"ird\n': ["x"], "a'b": [1]})
    assert sql_json(table) == python_json(table) == ['{"a\'b": 1, "we\\"ird\\n": "x"}']


ESCAPY = st.text(st.sampled_from(["\\", "u", "0", "B", '"', "é", "\u2028", *map(chr, range(32))]))


@settings(max_examples=500, deadline=None)
@given(st.one_of(ESCAPY, st.text()))
def test_json_string_is_pythons(text: str) -> None:
    """Escapes spelled out in the text (a literal backslash, u, hex) are not re-cased."""
    con = duckdb.connect()
    found = con.execute(f"SELECT {json_string('$1::VARCHAR')}", [text]).fetchone()
    assert found is not None and found[0] == json.dumps(text, ensure_ascii=False)


def test_json_string_of_a_written_escape_and_a_control_character() -> None:
    con = duckdb.connect()
    text = "\\u000B and \x0b"
    found = con.execute(f"SELECT {json_string('$1::VARCHAR')}", [text]).fetchone()
    assert found == ('"\\\\u000B and \\u000b"',)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EDGE_MICROS = [0, 1, -1, 999_999, -999_999, 1_000_000, -1_000_000, 100_000, 1_704_067_200_100_000,
               -62_135_596_800_000_000, 253_402_300_799_999_999, -30_610_224_000_000_000]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(EDGE_MICROS),
                          st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999)),
                min_size=1, max_size=20))
def test_iso_micros_is_pythons_isoformat(values: list[int]) -> None:
    """Every year datetime holds, before 1970 too; a fraction only where there is one, always
    six digits (trailing zeros kept, as Python writes them)."""
    con = duckdb.connect()
    con.register("t", pa.table({"us": pa.array(values, pa.int64())}))
    rendered = con.execute(f"SELECT {iso_micros('us')}, {iso_micros('us', quoted=False)}, "
                           f"{iso_micros('us', aware=False)} FROM t").fetchall()
    for value, (quoted, bare, naive) in zip(values, rendered, strict=True):
        when = EPOCH + timedelta(microseconds=value)
        assert quoted == json.dumps(when.isoformat())
        assert bare == when.isoformat()
        assert naive == json.dumps(when.replace(tzinfo=None).isoformat())
