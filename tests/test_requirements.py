"""Tests that need Chromium or Spark are left out where it is missing (with the reason), and
kept, to fail with the reason, under ``CI=true``; a test that runs without them fails."""

from __future__ import annotations

import sys

import pytest

from tests import requirements
from tests.pages.browser import chromium


class FakeMarker:
    def __init__(self, need: str) -> None:
        self.args = (need,)


class FakeItem:
    def __init__(self, name: str, *needs: str) -> None:
        self.name = name
        self.needs = needs

    def iter_markers(self, name: str) -> list[FakeMarker]:
        return [FakeMarker(need) for need in self.needs] if name == "needs" else []


ITEMS = [FakeItem("plain"), FakeItem("page", "browser"), FakeItem("spark", "spark"),
         FakeItem("both", "browser", "spark")]


@pytest.mark.parametrize("ci", ["", "false", "no"])
def test_unmet_needs_are_left_out_with_their_reason(ci):
    problems = {"browser": "browser test: chromium not installed", "spark": None}
    kept, dropped, reasons = requirements.partition(ITEMS, problems, {"CI": ci})
    assert [i.name for i in kept] == ["plain", "spark"]
    assert [i.name for i in dropped] == ["page", "both"]
    assert reasons == ["left out 2 test(s): browser test: chromium not installed"]


@pytest.mark.parametrize("ci", ["true", "True"])
def test_under_ci_every_test_is_kept(ci):
    problems = {"browser": "no chromium", "spark": "no java"}
    kept, dropped, reasons = requirements.partition(ITEMS, problems, {"CI": ci})
    assert kept == ITEMS and dropped == [] and reasons == []


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_test_that_runs_without_its_need_fails_with_the_reason(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="no widget") as failed:
        requirements.missing("no widget")
    assert ("CI=true" in str(failed.value)) == (ci == "true")


def test_spark_needs_java(monkeypatch, tmp_path):
    monkeypatch.setattr("flowwarden.engine.spark.session.require_pyspark", lambda: None)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert "Spark test: no $JAVA_HOME/bin/java" in str(requirements.spark_problem())
    assert requirements.spark_problem(java=False) is None
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setattr(requirements.shutil, "which", lambda name: None)
    assert "Spark test: no java on PATH" in str(requirements.spark_problem())
    with pytest.raises(pytest.fail.Exception, match="no java on PATH"):
        requirements.require_spark()


def test_spark_needs_pyspark(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark raises ImportError
    assert "Spark test: the spark engine needs PySpark" in str(requirements.spark_problem())


def test_a_missing_browser_fails_a_browser_that_is_asked_for(monkeypatch, tmp_path):
    monkeypatch.setattr(requirements.shutil, "which", lambda name: None)
    assert "chromium and chromedriver not installed" in str(requirements.browser_problem())
    expected = pytest.raises(pytest.fail.Exception,
                             match="chromium and chromedriver not installed.*apt-get")
    with expected, chromium(tmp_path / "profile"):
        pass
