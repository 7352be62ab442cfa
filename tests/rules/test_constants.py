from __future__ import annotations

import doctest

import pytest

from flowwarden.rules import constants
from flowwarden.rules.constants import like


@pytest.mark.parametrize(("default", "value", "expected"), [
    (frozenset({80, 443}), [22], frozenset({22})),
    ({"a"}, ["b", "c"], {"b", "c"}),
    ([(1, 2)], [[3, 4]], [(3, 4)]),
    ((), ["x", 1], ("x", 1)),
    (1.5, 2, 2.0),
    ("x", "y", "y"),
    ({"k": 1}, {"j": 2}, {"j": 2}),
    (None, [[1]], [[1]]),
])
def test_values_take_the_type_of_the_default(default, value, expected):
    converted = like(default, value)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(("default", "value", "message"), [
    (frozenset({80, 443}), "80", "expected a list of integers .* got a string: '80'"),
    (frozenset({80, 443}), [[80]], "got an item that is a list: \\[80\\]"),
    (frozenset(), [{"a": 1}], "expected a list .* got an item that is a mapping"),
    (frozenset({"1.1.1.1"}), [1], "expected a list of strings"),
    (True, 1, "expected a boolean"),
    (3, True, "expected an integer .* got a boolean"),
    ("x", 5, "expected a string"),
    ({"k": 1}, [1], "expected a mapping"),
])
def test_values_of_another_type_are_refused_with_the_default_shown(default, value, message):
    with pytest.raises(ValueError, match=message):
        like(default, value)


def test_doctests():
    assert doctest.testmod(constants).failed == 0
