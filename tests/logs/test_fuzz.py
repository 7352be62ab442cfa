"""Seeded fuzzing of every reader through both local engines (``tests/logs/fuzzing.py``): no
exception escapes, ``read == parsed + rejected`` per file, the scan sees exactly the records
parsed and not filtered, and the engines agree. ``benchmarks/fuzz.py`` runs a larger campaign."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.logs.fuzzing import READERS, campaign

INPUTS = 25  # per reader: a few seconds each


@pytest.mark.parametrize("reader", sorted(READERS))
def test_mutated_inputs_never_crash_and_always_reconcile(default_pack, tmp_path: Path,
                                                         reader: str) -> None:
    outcome = campaign(default_pack, reader, INPUTS, seed=15, workdir=tmp_path)
    assert outcome.tried == INPUTS
    assert (outcome.crashes, outcome.violations) == (0, 0), "\n".join(outcome.examples)
