from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fp_eval():
    """benchmarks/fp_eval.py as a module (benchmarks/ is not a package)."""
    name = "flowwarden_benchmarks_fp_eval"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "fp_eval.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def tuned_pack():
    from flowwarden.rules.loader import load_pack, resolve_pack_paths

    return load_pack(resolve_pack_paths(["tuned"]))


@pytest.fixture(scope="session")
def spec_pack():
    from flowwarden.rules.loader import load_pack, resolve_pack_paths

    return load_pack(resolve_pack_paths(["default"]))
