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


@pytest.fixture(scope="session")
def engine_benchmark():
    """``benchmarks/engine.py`` as a module (a script, not in the package)."""
    import importlib.util
    import sys

    name = "flowwarden_benchmarks_engine"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "engine.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs(what): the test needs 'browser' or 'spark' on this machine; where it "
        "is missing the test is left out with the reason, except under CI=true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.requirements import NEEDS, partition

    for item in items:  # a test using the browser or spark fixture needs what it needs
        for need in NEEDS:
            if need in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.needs(need))
    wanted = {m.args[0] for item in items for m in item.iter_markers("needs")}
    problems = {need: NEEDS[need]() for need in wanted}
    kept, dropped, reasons = partition(items, problems)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    config.stash[LEFT_OUT] = reasons


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    for reason in config.stash.get(LEFT_OUT, []):
        terminalreporter.write_line(reason)


LEFT_OUT = pytest.StashKey[list[str]]()
