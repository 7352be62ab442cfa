"""What some tests need from the machine, and what happens when it is missing.

The browser tests need Chromium, chromedriver and Selenium; the Spark tests need PySpark and
Java. Where one is missing, those tests skip with a one-line reason, so that a person runs the
suite on any machine. Under ``CI=true`` (``.ci/run`` installs everything) a missing requirement
fails them instead: CI proves they ran.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

BROWSER_HINT = "apt-get install chromium chromium-driver; pip install -e '.[dev]'"
SPARK_HINT = "apt-get install openjdk-17-jre-headless; pip install -e '.[spark]'"


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def missing(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it under ``CI=true``."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true, where every test must run)", pytrace=False)
    pytest.skip(reason)


def require_browser() -> tuple[str, str]:
    """The paths of Chromium and chromedriver, with Selenium importable."""
    found = {name: shutil.which(name) for name in ("chromium", "chromedriver")}
    absent = [name for name, path in found.items() if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        absent.append("selenium")
    if absent:
        missing(f"browser test: {' and '.join(absent)} not installed ({BROWSER_HINT})")
    return found["chromium"], found["chromedriver"]


def require_spark(*, java: bool = True) -> None:
    """PySpark (the version the spark engine needs) and, unless ``java=False``, Java, which
    PySpark starts for a session."""
    from flowwarden.engine.spark.session import require_pyspark
    from flowwarden.errors import UsageError

    try:
        require_pyspark()
    except UsageError as error:
        missing(f"Spark test: {error}")
    if not java:
        return
    java_home = os.environ.get("JAVA_HOME")
    binary = Path(java_home) / "bin" / "java" if java_home else shutil.which("java")
    if binary is None or not Path(binary).is_file():
        where = f"$JAVA_HOME/bin/java ({java_home})" if java_home else "java on PATH"
        missing(f"Spark test: no {where} for PySpark to start ({SPARK_HINT})")
