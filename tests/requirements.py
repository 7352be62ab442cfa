"""What some tests need from the machine, and what happens when it is missing.

The browser tests need Chromium, chromedriver and Selenium; the Spark tests need PySpark and
Java. Such tests carry ``@pytest.mark.needs("browser")`` or ``needs("spark")``. Where a need is
not met, ``partition`` leaves those tests out of the run (deselected, with a one-line reason in
the summary), so that a person runs the suite on any machine; under ``CI=true`` (``.ci/run``
installs everything) they stay in and fail with the reason: CI proves they ran. A test that
calls ``require_*`` without the marker fails where the need is not met.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest

BROWSER_HINT = "apt-get install chromium chromium-driver; pip install -e '.[dev]'"
SPARK_HINT = "apt-get install openjdk-17-jre-headless; pip install -e '.[spark]'"


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("CI", "").strip().lower() == "true"


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    absent = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        absent.append("selenium")
    if absent:
        return f"browser test: {' and '.join(absent)} not installed ({BROWSER_HINT})"
    return None


def spark_problem(*, java: bool = True) -> str | None:
    """Why the Spark tests cannot run here (PySpark too old or absent; no Java), or None."""
    from flowwarden.engine.spark.session import require_pyspark
    from flowwarden.errors import UsageError

    try:
        require_pyspark()
    except UsageError as error:
        return f"Spark test: {error}"
    if not java:
        return None
    java_home = os.environ.get("JAVA_HOME")
    binary = Path(java_home) / "bin" / "java" if java_home else shutil.which("java")
    if binary is None or not Path(binary).is_file():
        where = f"$JAVA_HOME/bin/java ({java_home})" if java_home else "java on PATH"
        return f"Spark test: no {where} for PySpark to start ({SPARK_HINT})"
    return None


NEEDS: dict[str, Callable[[], str | None]] = {"browser": browser_problem, "spark": spark_problem}


def missing(reason: str) -> NoReturn:
    """Fail the test with ``reason``: a test that runs must be able to do its work."""
    suffix = " (CI=true, where every test must run)" if under_ci() else ""
    pytest.fail(reason + suffix, pytrace=False)


def require_browser() -> tuple[str, str]:
    """The paths of Chromium and chromedriver, with Selenium importable."""
    problem = browser_problem()
    if problem:
        missing(problem)
    return str(shutil.which("chromium")), str(shutil.which("chromedriver"))


def require_spark(*, java: bool = True) -> None:
    """PySpark (the version the spark engine needs) and, unless ``java=False``, Java."""
    problem = spark_problem(java=java)
    if problem:
        missing(problem)


def partition(items: Sequence[Any], problems: Mapping[str, str | None],
              environ: Mapping[str, str] = os.environ) -> tuple[list[Any], list[Any], list[str]]:
    """(kept, left out, reasons): the tests whose ``needs`` marker names an unmet need are left
    out, except under ``CI=true``, where every test is kept."""
    if under_ci(environ):
        return list(items), [], []
    kept: list[Any] = []
    dropped: list[Any] = []
    counts: dict[str, int] = {}
    for item in items:
        unmet = [m.args[0] for m in item.iter_markers("needs") if problems.get(m.args[0])]
        if unmet:
            dropped.append(item)
            for need in unmet:
                counts[need] = counts.get(need, 0) + 1
        else:
            kept.append(item)
    reasons = [f"left out {count} test(s): {problems[need]}" for need, count in counts.items()]
    return kept, dropped, reasons
