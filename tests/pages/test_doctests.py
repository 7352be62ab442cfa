from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import flowwarden.pages

MODULES = [m.name for m in pkgutil.iter_modules(flowwarden.pages.__path__, "flowwarden.pages.")]


def test_every_module_is_listed():
    assert {"flowwarden.pages.catalog", "flowwarden.pages.report", "flowwarden.pages.render",
            "flowwarden.pages.markup"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
