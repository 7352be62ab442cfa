from __future__ import annotations

import pytest

from flowwarden.rules import jsonpath


def test_parse_path_forms():
    assert jsonpath.parse_path("$.a.b") == ("a", "b")
    assert jsonpath.parse_path("$.a[2]") == ("a", 2)
    assert jsonpath.parse_path("$['a.b'].c") == ("a.b", "c")
    assert not jsonpath.is_plain("$.a[*].b")
    assert jsonpath.is_plain("$.a.b")


@pytest.mark.parametrize("bad", ["a.b", "$.a..b", "$.a[?(@.x)]"])
def test_unsupported_paths_raise(bad):
    with pytest.raises(ValueError):
        jsonpath.parse_path(bad)


def test_find_single_many_none():
    data = {"a": [{"b": 1}, {"b": 2}], "c": {"d": None}}
    assert jsonpath.find(data, "$.a[0].b") == 1
    assert jsonpath.find(data, "$.a[*].b") == [1, 2]
    assert jsonpath.find(data, "$.c.d") is None
    assert jsonpath.find(data, "$.zz") is None
