"""Every module's examples run as written (the examples in docstrings are its smallest tests)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import flowwarden

MODULES = sorted(m.name for m in pkgutil.walk_packages(flowwarden.__path__, "flowwarden."))


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_of_every_module(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
