"""No layer imports one above it: every ``flowwarden`` import, at module level or inside a
function, is checked against the layer order of ARCHITECTURE (``README``'s layout)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "flowwarden"
BASE = {"errors", "config", "yamlfile", "util", "__init__"}
# What each part may import besides itself and BASE (the top-level modules and util).
ALLOWED = {
    "util": {"errors"},
    "logs": set(),
    "rules": set(),
    "logic": {"rules"},
    "alerts": {"rules", "logic"},  # SQL text of alert lines comes from logic's renderers
    "enrich": {"logs"},  # lookup tables and p_enrichment: Arrow and addresses, no rules
    "engine": {"logs", "rules", "logic", "alerts", "enrich"},
    "runs": {"engine", "logs", "rules", "logic", "alerts", "enrich"},
    "pages": {"logs", "rules", "logic", "alerts", "enrich"},
    "cli": {"engine", "runs", "logs", "rules", "logic", "alerts", "pages", "enrich"},
    "packs": set(),
}
# Known debt, to be undone (issue 16): YAML detections compile to the IR while rules load, so
# these rules modules import logic; they belong in logic with the loader handing them over.
EXCEPTIONS = {
    "flowwarden/rules/simple": {"logic"},
    "flowwarden/rules/match": {"logic"},
    "flowwarden/rules/pysource": {"logic"},
}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "flowwarden" or name.startswith("flowwarden.")}


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1].removesuffix(".py") if len(pieces) > 1 else "__init__"


def test_no_layer_imports_one_above_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        mine = part(".".join(relative.parts))
        if mine not in ALLOWED:
            continue
        for module in imports(path):
            theirs = part(module)
            if theirs not in {mine, *BASE, *ALLOWED[mine], *EXCEPTIONS.get(str(relative), ())}:
                wrong.append(f"{relative}: {module}")
    assert wrong == []


def test_the_check_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from flowwarden.cli.console import run_scan\n")
    assert imports(module) == {"flowwarden.cli.console"}


def test_alerts_and_logs_share_s3_through_util_only():
    for path in (PACKAGE / "alerts").rglob("*.py"):
        assert not any(part(m) == "logs" for m in imports(path)), path
