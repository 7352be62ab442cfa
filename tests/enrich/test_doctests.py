from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["addresses", "networks", "table", "tablefile", "selectors", "enricher", "build"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests_of_the_enrich_modules(name: str) -> None:
    module = importlib.import_module(f"flowwarden.enrich.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
