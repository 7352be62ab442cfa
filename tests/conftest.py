from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
# The sample flow logs every test reads (copied into the repository; see SOURCES.md there).
SAMPLES = FIXTURES / "samples"


@pytest.fixture(scope="session")
def default_pack():
    from flowwarden.rules.loader import load_pack, resolve_pack_paths

    return load_pack(resolve_pack_paths([]))
