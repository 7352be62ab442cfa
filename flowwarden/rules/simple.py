"""YAML ("simple") detections: a rule whose logic is its ``Detection:`` match expressions.

The expressions (and ``InlineFilters``) compile to the condition IR (``rules.match``); the
rule's ``rule(event)`` evaluates that IR with the Python IR evaluator, and ``rule.source`` is
the IR written as Python (``rules.pysource``), from which the engine extracts the same
condition. ``AlertTitle`` (``{key}`` or ``{a.b}`` placeholders), ``AlertContext`` (``KeyName``/``KeyValue``
pairs) and ``DynamicSeverities`` (the first ``ChangeTo`` whose ``Conditions`` all hold) become
``title()``, ``alert_context()`` and ``severity()`` in that source.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from flowwarden.errors import Location, RuleLoadError
from flowwarden.logic import ir
from flowwarden.logic.render.python import Evaluator, PythonRenderer
from flowwarden.rules.event import PantherEvent
from flowwarden.rules.match import ElementTest, MatchCompiler, element_verdict
from flowwarden.rules.pysource import to_python
from flowwarden.rules.rule import SEVERITIES, Rule

UNSUPPORTED_KEYS = ("GroupBy",)
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_counter = itertools.count()


@dataclass(frozen=True)
class SimpleRule(Rule):
    """A YAML detection; ``condition`` is its compiled IR (``Detection`` and filters)."""

    condition: ir.Node | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class CompiledSimple:
    condition: ir.Node
    module: ModuleType
    source: str


def compile_simple(doc: Mapping[str, Any], path: Path) -> CompiledSimple:
    """The condition, module and Python source of a YAML detection."""
    where = Location(str(path))
    for key in UNSUPPORTED_KEYS:
        if key in doc:
            raise RuleLoadError(f"{key} is not supported in YAML detections yet", where)
    compiler = MatchCompiler(where)
    detection = compiler.compile_all(doc["Detection"])
    filters = compiler.compile_all(doc.get("InlineFilters") or [])
    condition = detection if filters == ir.TRUE else ir.And((filters, detection))
    severities = _severities(doc.get("DynamicSeverities"), compiler)
    helpers = {node: f"_elements_{i}" for i, node in enumerate(compiler.elements)}
    source = _source(doc, path, condition, helpers)
    if severities:
        source += _severity_source(severities, helpers)
    module = ModuleType(f"flowwarden_simple_{next(_counter)}_{path.stem}")
    module.__file__ = str(path)
    evaluate = element_evaluators(compiler.elements)
    module.__dict__.update({name: evaluate[node] for node, name in helpers.items()})
    sys.modules[module.__name__] = module
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - generated above
    compiled = ElementRenderer(evaluate).render(condition)
    module.rule = lambda event: bool(compiled(event))  # type: ignore[attr-defined]
    return CompiledSimple(condition, module, source)


def check_inline_filters(doc: Mapping[str, Any], path: Path) -> None:
    """A Python rule's ``InlineFilters``: only always-true ones, until the engine can apply
    a filter condition ahead of the rule's own."""
    if "InlineFilters" not in doc:
        return
    compiler = MatchCompiler(Location(str(path)))
    if compiler.compile_all(doc.get("InlineFilters") or []) != ir.TRUE:
        raise RuleLoadError("InlineFilters on a Python rule are not supported yet",
                            Location(str(path)))


class ElementRenderer(PythonRenderer):
    """The Python IR evaluator, with list comprehensions (residuals) evaluated in Python."""

    def __init__(self, elements: Mapping[ir.Residual, Evaluator]) -> None:
        self.elements = elements

    def residual_py(self, node: ir.Residual) -> Evaluator:
        return self.elements[node]


def element_evaluators(tests: Mapping[ir.Residual, ElementTest]) -> dict[ir.Residual, Evaluator]:
    # Inner list comprehensions were registered before the ones containing them.
    found: dict[ir.Residual, Evaluator] = {}
    for node, test in tests.items():
        found[node] = _element_evaluator(test, ElementRenderer(found).render(test.test))
    return found


def _element_evaluator(test: ElementTest, each: Callable[[PantherEvent], Any]) -> Evaluator:
    def evaluate(event: PantherEvent) -> bool:
        value = event.deep_get(*test.keys)
        items = value if isinstance(value, Sequence) and not isinstance(value, str) else ()
        return element_verdict(test.condition, [
            bool(each(PantherEvent(item))) if isinstance(item, Mapping) else False
            for item in items])

    return evaluate


def _source(doc: Mapping[str, Any], path: Path, condition: ir.Node,
            helpers: Mapping[ir.Residual, str]) -> str:
    lines = [f'"""YAML detection {path.name}, as flowwarden compiled it."""', "",
             "import ipaddress", "", "",
             "def rule(event):", f"    return {to_python(condition, helpers)}"]
    if doc.get("AlertTitle"):
        lines += ["", "", "def title(event):", f"    return {_title(str(doc['AlertTitle']))}"]
    if doc.get("AlertContext"):
        lines += ["", "", "def alert_context(event):",
                  f"    return {_context(doc['AlertContext'], Location(str(path)))}"]
    return "\n".join(lines) + "\n"


def _severities(items: Any, compiler: MatchCompiler) -> list[tuple[str, ir.Node]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise compiler.error("DynamicSeverities must be a list of ChangeTo/Conditions")
    found = []
    for item in items:
        level = item.get("ChangeTo") if isinstance(item, Mapping) else None
        if not isinstance(level, str) or level.upper() not in {s.upper() for s in SEVERITIES}:
            raise compiler.error(f"DynamicSeverities: ChangeTo must be one of "
                                 f"{', '.join(SEVERITIES)}, got {item!r}")
        found.append((level, compiler.compile_all(item.get("Conditions"))))
    return found


def _severity_source(severities: list[tuple[str, ir.Node]],
                     helpers: Mapping[ir.Residual, str]) -> str:
    lines = ["", "", "def severity(event):"]
    for level, condition in severities:
        lines += [f"    if {to_python(condition, helpers)}:", f"        return {level!r}"]
    return "\n".join([*lines, "    return 'DEFAULT'"]) + "\n"


def _title(template: str) -> str:
    parts: list[str] = []
    position = 0
    for found in PLACEHOLDER.finditer(template):
        if found.start() > position:
            parts.append(repr(template[position:found.start()]))
        keys = ", ".join(repr(k.strip()) for k in found[1].split("."))
        parts.append(f"str(event.deep_get({keys}))")
        position = found.end()
    if position < len(template) or not parts:
        parts.append(repr(template[position:]))
    return " + ".join(parts)


def _context(items: Any, where: Location) -> str:
    if not isinstance(items, list):
        raise RuleLoadError("AlertContext must be a list of KeyName/KeyValue pairs", where)
    compiler = MatchCompiler(where)
    entries = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("KeyName"), str):
            raise RuleLoadError(f"AlertContext entry without a KeyName: {item!r}", where)
        value = to_python(compiler.key(item.get("KeyValue")), {})
        entries.append(f"{item['KeyName']!r}: {value}")
    return "{" + ", ".join(entries) + "}"
