"""``benchmarks/engine.py``'s own machinery: the phases it times still exist in the package, and
its timed child runs (a script's breakage shows only when someone runs it at 10M records)."""

from __future__ import annotations

import importlib

import pytest


def test_every_timed_phase_names_a_function_of_the_scan(engine_benchmark):
    for phase, module_name, qualified, _ in engine_benchmark.SCAN_PHASES:
        owner = importlib.import_module(module_name)
        for name in qualified.split("."):
            owner = getattr(owner, name, None)
            assert owner is not None, f"{phase}: {module_name}.{qualified} is gone"
        assert callable(owner), phase


@pytest.mark.parametrize("rules", ["pack-tuned", "spec"])
def test_the_phases_child_times_a_scan(engine_benchmark, tmp_path, rules):
    from tests.flowgen.generate import generate_flows, write_parquet

    path = tmp_path / "flows.parquet"
    write_parquet(generate_flows(3000, engine_benchmark.SEED), str(path))
    result = engine_benchmark.run_child("phases", path, rules)
    assert result["records"] == 3000
    spent = result["phases"]
    for phase in ("Parquet read (prefetch thread)", "condition query (_run)",
                  "phase 2 (complete rows)", "alert delivery (JSONL)"):
        assert spent[phase][0] > 0, phase
    assert result["alerts"] > 0
