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
