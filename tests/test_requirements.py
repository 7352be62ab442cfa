"""Tests that need Chromium or Spark skip where it is missing, and fail under ``CI=true``."""

from __future__ import annotations

import sys

import pytest

from tests import requirements


@pytest.mark.parametrize(("ci", "outcome"), [("", pytest.skip.Exception),
                                             ("false", pytest.skip.Exception),
                                             ("true", pytest.fail.Exception),
                                             ("True", pytest.fail.Exception)])
def test_missing_skips_but_fails_under_ci(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no widget"):
        requirements.missing("no widget")


def test_spark_needs_java(monkeypatch, tmp_path):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("flowwarden.engine.spark.session.require_pyspark", lambda: None)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match=r"Spark test: no \$JAVA_HOME/bin/java"):
        requirements.require_spark()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setattr(requirements.shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="Spark test: no java on PATH"):
        requirements.require_spark()


def test_spark_needs_pyspark(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark raises ImportError
    with pytest.raises(pytest.skip.Exception, match="Spark test: the spark engine needs PySpark"):
        requirements.require_spark()
