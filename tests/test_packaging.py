"""The wheel a cluster installs (see ``flowwarden/engine/spark/session.py``) carries the rule packs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_wheel_carries_the_packs_and_runs_their_tests_when_installed(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("flowwarden-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    names = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    for pack in ("default", "tuned"):
        packed = {n for n in names if n.startswith(f"flowwarden/packs/{pack}/rules/")}
        source = {p.relative_to(REPO).as_posix()
                  for p in (REPO / "flowwarden" / "packs" / pack / "rules").rglob("*.y*ml")}
        assert source and source <= packed
    assert any(n.startswith("flowwarden/pages/assets/") for n in names)
    # The test code (tests/flowgen, the OCSF schema extract, the samples) stays out of the wheel.
    assert not any(n.startswith("tests/") for n in names)
    assert {n.split("/")[0] for n in names if "/" in n} <= {"flowwarden"} | {
        n.split("/")[0] for n in names if ".dist-info/" in n}
    code = ("import flowwarden, sys; from flowwarden.cli.app import main; print(flowwarden.__file__); "
            "sys.argv = ['flowwarden', 'test', '--pack', 'default', '--pack', 'tuned']; main()")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert out.stdout.startswith(str(site)), out.stdout + out.stderr
    assert out.returncode == 0 and " 0 failed" in out.stdout, out.stdout + out.stderr


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_installs_scanning_first_and_the_test_extras_with_the_tests():
    first, second = _readme_commands()  # one line each
    assert "pip install -e . && flowwarden scan examples/data" in first
    assert "[" not in first  # no extras: no PySpark, moto or Selenium to scan the sample
    assert "pip install -e '.[dev,spark]' && python -m pytest" in second
    assert "python -m pip install --quiet -e '.[dev,spark]'" in (REPO / ".ci" / "run").read_text()


EXTRAS_ONLY = ("pyspark", "pandas", "pytest", "hypothesis", "moto", "selenium", "jsonschema")


def test_the_first_command_scans_without_the_extras(tmp_path):
    """The README's scan, in a process where every package of the extras fails to import."""
    out = tmp_path / "alerts.jsonl"
    code = (
        "import sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {EXTRAS_ONLY!r}:\n"
        "            raise ImportError(f'{name} is not installed')\n"
        "sys.meta_path.insert(0, Absent())\n"
        "from flowwarden.cli.app import main\n"
        f"sys.argv = ['flowwarden', 'scan', 'examples/data', '--output', {str(out)!r}]\n"
        "main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "records read 10,000 = parsed 10,000 + rejected 0" in done.stderr
    assert len(out.read_text().splitlines()) > 1000
