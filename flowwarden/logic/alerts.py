"""A rule's alert functions (``title``, ``dedup``, ``alert_context``...) as IR values.

``extract_alert_functions`` gives, per alert function the rule defines, its value node (like
``extract_rule`` gives ``rule()``'s condition), possibly holding residuals, or None with the
reason it was not compiled. ``AlertPlan.resolved`` maps data-model names for one log type,
inlining data-model methods whose bodies are such values. ``alert_columns`` renders a plan over
a batch's inputs: per function, the SQL of its value and the SQL of the rows where Python must
run it instead (``render.sql_values``).

>>> from flowwarden.rules.loader import load_pack, resolve_pack_paths
>>> pack = load_pack(resolve_pack_paths([]))
>>> plan = extract_alert_functions(pack.rule("AWS.VPC.PortScan"))
>>> [(f.name, f.status) for f in plan.functions]
[('title', 'full'), ('dedup', 'full'), ('alert_context', 'full'), ('unique', 'full')]
>>> print(plan.function("unique").value)
str(udm.destination_port)
>>> print(plan.resolved(pack.data_models["AWS.VPCFlow"]).function("unique").value)
str(event.dstPort)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from types import FunctionType

from flowwarden.logic import ir
from flowwarden.logic.extract import status
from flowwarden.logic.extract_values import (
    MAX_DEPTH,
    ValueExtractor,
    extract_function,
    extract_value_source,
    function_source,
    uncovered,
)
from flowwarden.logic.render.query import foreign_rows
from flowwarden.logic.render.sql import BatchInputs, SqlRenderer, decide_gets
from flowwarden.logic.render.sql_values import AlertColumn, function_column
from flowwarden.logic.rewrite import resolve_fields, transform
from flowwarden.rules.datamodel import DataModel
from flowwarden.rules.rule import ALERT_FUNCTIONS, Rule

__all__ = ["AlertColumn", "AlertFunction", "AlertPlan", "alert_columns", "extract_alert_functions",
           "extract_alert_source", "resolve_values"]


@dataclass(frozen=True)
class AlertFunction:
    """One alert function: its value IR, or None (not compiled) with the reason."""

    name: str
    value: ir.Node | None
    reason: str | None = None

    @property
    def status(self) -> str:
        """``full`` (no residual), ``partial``, or ``none`` (a residual, or not compiled)."""
        return "none" if self.value is None else status(self.value)


@dataclass(frozen=True)
class AlertPlan:
    """The alert functions a rule defines, in ``ALERT_FUNCTIONS`` order."""

    rule_id: str
    functions: tuple[AlertFunction, ...]

    def function(self, name: str) -> AlertFunction | None:
        return next((f for f in self.functions if f.name == name), None)

    @property
    def status(self) -> str:
        """``full`` when every function is, ``none`` when none is compiled, else ``partial``."""
        found = {f.status for f in self.functions}
        return "full" if found <= {"full"} else "none" if found == {"none"} else "partial"

    def items(self) -> list[tuple[str, ir.Node | None]]:
        """(function name, value IR or None) pairs, for ``alert_columns`` and ``build_query``."""
        return [(f.name, f.value) for f in self.functions]

    def resolved(self, model: DataModel | None) -> AlertPlan:
        """The plan for one log type: data-model names resolved with ``model`` (``resolve_values``)."""
        return replace(self, functions=tuple(
            f if f.value is None else replace(f, value=resolve_values(f.value, model))
            for f in self.functions))


def extract_alert_functions(rule: Rule) -> AlertPlan:
    """Every alert function the rule's module defines, as IR (from its executed module when it
    has one, so configuration and helper modules flow in; else from its source)."""
    if rule.module is None:
        return extract_alert_source(rule.id, rule.source, path=rule.source_path)
    functions: list[AlertFunction] = []
    tree = _parse(rule.source)
    for name in ALERT_FUNCTIONS:
        found = getattr(rule.module, name, None)
        if found is None:
            continue
        if not isinstance(found, FunctionType):
            functions.append(AlertFunction(name, None, f"{name} is not a plain Python function"))
            continue
        here = found.__globals__ is vars(rule.module) and tree is not None
        located = function_source(found, (rule.source, tree) if here and tree else None)
        if located is None:
            functions.append(AlertFunction(name, None, f"the source of {name}() cannot be found"))
            continue
        source, tree, func, path = located
        value = ValueExtractor(source, tree, func, found.__globals__, path).extract_value()
        functions.append(AlertFunction(name, value))
    return AlertPlan(rule.id, tuple(functions))


def extract_alert_source(rule_id: str, source: str, path: str | None = None) -> AlertPlan:
    """The alert functions defined at module level in ``source`` (no executed module: only
    literal constants and the module's own helpers are known)."""
    tree = _parse(source)
    names = {s.name for s in tree.body if isinstance(s, ast.FunctionDef)} if tree else set()
    return AlertPlan(rule_id, tuple(
        AlertFunction(name, extract_value_source(source, name, None, path))
        for name in ALERT_FUNCTIONS if name in names))


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def resolve_values(node: ir.Node, model: DataModel | None, depth: int = 0) -> ir.Node:
    """``node`` with data-model names resolved for one log type.

    Path mappings become fields (``rewrite.resolve_fields``); a method mapping becomes the
    method's own value IR when it extracts fully to a scalar value (``event.udm`` freezes
    containers, which the IR does not), else it stays a ``Udm`` for Python. Effects that no
    longer may raise are dropped.
    """

    def inline(n: ir.Node) -> ir.Node:
        mapping = model.mappings.get(n.name) if model is not None and isinstance(n, ir.Udm) else None
        if mapping is None or mapping.path is not None or depth >= MAX_DEPTH:
            return n
        method = getattr(model.module, mapping.method or "", None) if model else None
        if not isinstance(method, FunctionType):
            return n
        body = resolve_values(extract_function(method), model, depth + 1)
        if any(isinstance(m, ir.Residual | ir.Udm | ir.DictOf | ir.ListOf) for m in ir.walk(body)):
            return n
        return body

    return _drop_safe_effects(resolve_fields(transform(node, inline), model))


def _drop_safe_effects(node: ir.Node) -> ir.Node:
    def drop(n: ir.Node) -> ir.Node:
        if not isinstance(n, ir.Seq):
            return n
        kept = uncovered([e for e in n.effects if ir.may_raise(e)], n.value)
        return replace(n, effects=kept) if kept else n.value

    return transform(node, drop)


def alert_columns(plan: AlertPlan, inputs: BatchInputs, log_type: str | None = None
                  ) -> list[AlertColumn]:
    """The plan's functions as SQL over ``inputs`` (in their dialect): one ``AlertColumn`` per
    function, ``(name, value SQL, python SQL, shape)``.

    The plan should be ``resolved`` for the batch's log type. Where ``python`` is false on a row,
    ``value`` is what calling the function gives there (see ``AlertColumn`` for the shapes);
    where it is true, the engine must call the function in Python. Columns and IP probes the
    SQL reads are added to ``inputs``. With a ``log_type``, rows whose ``p_log_type`` differs
    ask Python.
    """
    renderer = SqlRenderer(inputs)
    foreign = None if log_type is None else foreign_rows(renderer, log_type)
    schema = inputs.schema
    return [function_column(name, None if node is None else decide_gets(node, schema), renderer,
                            foreign) for name, node in plan.items()]
