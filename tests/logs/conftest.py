"""Fixtures for the log reader tests (the S3 server fixture lives in test_sources.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SAMPLES


@pytest.fixture(scope="session")
def samples() -> Path:
    assert SAMPLES.is_dir(), f"samples folder missing: {SAMPLES}"
    return SAMPLES
