"""The repository stands alone: no code or document points at files outside a clone of it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO, SAMPLES

SCANNED = ("flowwarden", "tests", "benchmarks", "examples")
THIS_FILE = Path(__file__).resolve()
SHARED = "shared"
# A folder outside the checkout: the machine this project grew on, or a folder named SHARED
# beside the checkout, written out or built from path parts (a parent path joined with
# SHARED by `/`, by os.path.join, or after ".." ).
OUTSIDE = [
    re.compile(re.escape("/" + "work/")),
    re.compile(r"\.\.[/\\]" + SHARED),
    re.compile(r"/\s*[\"']" + SHARED + r"[\"']"),
    re.compile(r"[\"']\.\.[\"']\s*,\s*[\"']" + SHARED + r"[\"']"),
    re.compile(r"join\([^)]*[\"']" + SHARED + r"[\"']"),
]


def scanned_files() -> list[Path]:
    files = [path for top in SCANNED for pattern in ("*.py", "*.md")
             for path in (REPO / top).rglob(pattern)]
    return sorted(p for p in files if p.resolve() != THIS_FILE and "__pycache__" not in p.parts)


def test_no_file_points_outside_the_repository():
    files = scanned_files()
    assert len(files) > 100 and REPO / "tests" / "conftest.py" in files
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in files
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if any(pattern.search(line) for pattern in OUTSIDE)]
    assert found == []


def test_the_patterns_catch_the_old_paths():
    quoted = '"' + SHARED + '"'
    old = ["SAMPLES = Path(__file__).resolve().parents[2].parent / " + quoted + ' / "samples"',
           "REPO.parent / '" + SHARED + "' / 'reference'",
           'os.path.join("..", ' + quoted + ', "x")',
           "see .." + "/" + SHARED + "/samples/SOURCES.md",
           "Path('/" + "work/" + SHARED + "/reference/ocsf')"]
    assert all(any(p.search(line) for p in OUTSIDE) for line in old)
    assert not any(p.search("ip addresses shared by two hosts") for p in OUTSIDE)


def test_the_samples_are_in_the_repository():
    assert SAMPLES.is_relative_to(REPO) and (SAMPLES / "SOURCES.md").is_file()
    assert len([p for p in SAMPLES.rglob("*") if p.is_file()]) == 25
