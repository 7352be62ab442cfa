"""Executing rule, data-model and helper Python files as modules.

Loading a rule directory runs its Python, as Panther does: only load rules you trust.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import itertools
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

from flowwarden.errors import Location, RuleLoadError

_counter = itertools.count()


def exec_module(path: Path, name: str | None = None) -> ModuleType:
    """Run a Python file as a fresh module; errors become RuleLoadError at path:line."""
    module_name = name or f"flowwarden_loaded_{next(_counter)}_{path.stem}"
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleLoadError(f"cannot read Python file: {exc.strerror}", Location(str(path))) from None
    module = ModuleType(module_name)
    module.__file__ = str(path)
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise RuleLoadError(
            f"syntax error: {exc.msg}", Location(str(path), exc.lineno, exc.offset)
        ) from None
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - rule files are code the user chose to load
    except Exception as exc:  # noqa: BLE001
        sys.modules.pop(module_name, None)
        raise RuleLoadError(
            f"importing failed: {type(exc).__name__}: {exc}", Location(str(path), _lineno(exc, path))
        ) from None
    return module


def _lineno(exc: BaseException, path: Path) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class HelperFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes global helpers importable by module name, in whatever order they import each other."""

    def __init__(self, helpers: Mapping[str, Path], builtins: Mapping[str, Callable[[], ModuleType]]):
        self.helpers = dict(helpers)
        self.builtins = dict(builtins)

    @property
    def names(self) -> set[str]:
        return set(self.helpers) | set(self.builtins)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname in self.names:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        if spec.name in self.builtins:
            return self.builtins[spec.name]()
        return None

    def exec_module(self, module: ModuleType) -> None:
        if module.__name__ in self.builtins:
            return
        path = self.helpers[module.__name__]
        module.__file__ = str(path)
        code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
        exec(code, module.__dict__)  # noqa: S102

    def install(self) -> None:
        """Become the active helper finder, forgetting helpers a previous pack loaded."""
        for finder in [f for f in sys.meta_path if isinstance(f, HelperFinder)]:
            for name in finder.names:
                sys.modules.pop(name, None)
            sys.meta_path.remove(finder)
        for name in self.names:
            sys.modules.pop(name, None)
        sys.meta_path.insert(0, self)


def config_module(setting: Callable[[str], Any]) -> Callable[[], ModuleType]:
    """A factory for the `flowwarden_config` helper bound to one configuration."""

    def make() -> ModuleType:
        module = ModuleType("flowwarden_config")
        module.setting = setting  # type: ignore[attr-defined]
        module.__doc__ = "Settings from flowwarden.yaml, for Configuration Required rules."
        return module

    return make
