"""SQL for value nodes (alert functions): each node as a value and the rows that need Python.

A value renders to an ``Out``: its SQL, the Python type of its non-null rows (``kind``), and
``python``, a non-null boolean SQL expression true on the rows where the SQL cannot give exactly
what Python gives: Python would raise there (``None + "x"``, ``"%d" % "x"``, a residual...), or
the value has a type the SQL does not format exactly (floats, structs, timestamps outside years
1-9999). Elsewhere the SQL value is Python's, character for character.

What a node renders to depends on the target:

- ``RAW``: the value itself, typed (for truth tests, ``+``, look-ups, comparisons);
- ``TEXT``: ``str(value)`` (never NULL: ``None`` is ``'None'``, ``True`` is ``'True'``, a UTC
  datetime ``'2024-05-01 12:00:00+00:00'``, with ``.ffffff`` when its microseconds are not 0);
- ``RESULT``: ``str(value)``, but NULL where the value is None (what an alert function's string
  result becomes);
- ``JSON``: JSON text parsing to ``jsonable(value)`` (``flowwarden.alerts.formats.jsonl``):
  datetimes as ``isoformat()``, dicts and lists built item by item;
- ``STRINGS``: a list's JSON array of ``str(item)`` (what Panther keeps of ``destinations()``),
  ``null`` for None; any other value needs Python.

Conditional values (``IfElse``, ``Coalesce``) pass the target on to their branches, so branches
of different types still give one text.

>>> import pyarrow as pa
>>> from flowwarden.logic.ir import Concat, Const, Field, Str
>>> from flowwarden.logic.render.duckdb_sql import DUCKDB
>>> from flowwarden.logic.render.sql import BatchInputs, SqlRenderer
>>> inputs = BatchInputs(pa.schema([("dstPort", pa.int64())]), DUCKDB)
>>> out = ValueRenderer(SqlRenderer(inputs)).render(
...     Concat((Const("port "), Str(Field(("dstPort",))))), RESULT)
>>> out.sql, out.python
('(\\'port \\' || coalesce(CAST("f0:dstPort" AS VARCHAR), \\'None\\'))', 'false')
"""

from __future__ import annotations

import json
from typing import ClassVar, NamedTuple

from flowwarden.errors import RenderError
from flowwarden.logic import ir
from flowwarden.logic.render import Renderer
from flowwarden.logic.render.sql import (
    BOOL,
    DICT,
    FALSE,
    FLOAT,
    INT,
    LIST,
    NULL,
    STR,
    TIME,
    TRUE,
    NeedsPython,
    SqlRenderer,
    Value,
    all_of,
    any_of,
    value_kind,
)

RAW, TEXT, RESULT, JSON, STRINGS = "raw", "text", "result", "json", "strings"
NONE_TEXT = {TEXT: "'None'", RESULT: "NULL", JSON: "'null'"}
# Years 1-9999, the datetimes Python has: 0001-01-01T00:00:00 .. 9999-12-31T23:59:59.999999
MIN_MICROS, MAX_MICROS = -62135596800 * 10**6, 253402300800 * 10**6 - 1


class Out(NamedTuple):
    """A rendered value: SQL, the kind of its non-null rows, and the rows that need Python."""

    sql: str
    kind: str
    python: str = FALSE
    nullable: bool = True
    const: bool = False


EVERYWHERE = Out("NULL", NULL, TRUE)  # nothing renderable: Python on every row


class ValueRenderer(Renderer):
    """Renders value nodes over the inputs of ``conds``, which renders their conditions."""

    NAME: ClassVar[str] = "sql values"
    SUFFIX: ClassVar[str] = "val"

    def __init__(self, conds: SqlRenderer) -> None:
        self.conds = conds
        self.inputs = conds.inputs
        self.dialect = conds.dialect

    def render(self, node: ir.Node, target: str = RAW) -> Out:
        """``node`` rendered for ``target``; what cannot be rendered asks Python everywhere."""
        handler = getattr(self, f"{type(node).__name__.lower()}_{self.SUFFIX}", None)
        if handler is None:
            span = getattr(node, "span", None)
            raise RenderError(f"{self.NAME} cannot render {type(node).__name__}",
                              span.location() if span else None)
        try:
            found: Out = handler(node, target)
        except (NeedsPython, RenderError):
            return EVERYWHERE
        return found

    # -- leaves ---------------------------------------------------------------------------------
    def udm_val(self, node: ir.Udm, target: str) -> Out:
        raise NeedsPython  # unresolved: a data-model method or an indexed path

    def field_val(self, node: ir.Field, target: str) -> Out:
        value = self.inputs.column(node.keys, value_kind)
        return self.convert(Out(value.sql, value.kind), target)

    def const_val(self, node: ir.Const, target: str) -> Out:
        value = node.value
        if target == RAW:
            if isinstance(value, bool):
                return Out(TRUE if value else FALSE, BOOL, nullable=False, const=True)
            kind = NULL if value is None else INT if isinstance(value, int) else STR
            return Out(self.dialect.literal(value), kind, nullable=value is None, const=True)
        if value is None and target in (RESULT, JSON, STRINGS):
            return Out("NULL" if target == RESULT else "'null'", STR, const=True)
        if target == STRINGS:
            raise NeedsPython  # iterating a str or an int
        text = json.dumps(value) if target == JSON else str(value)
        return Out(self.dialect.literal(text), STR, nullable=False, const=True)

    def residual_val(self, node: ir.Residual, target: str) -> Out:
        raise NeedsPython

    def _condition(self, node: ir.Node, target: str) -> Out:
        value, error = self.test(node)
        return self.convert(Out(value, BOOL, error or FALSE, nullable=False), target)

    compare_val = inset_val = isnull_val = truthy_val = ipcheck_val = _condition
    ipincidrs_val = and_val = or_val = not_val = contains_val = strtest_val = _condition

    def default_val(self, node: ir.Default, target: str) -> Out:
        operand = self.render(node.operand)
        if operand.kind == NULL:
            return self.render(node.default, target)
        default = self.render(node.default)
        if operand.python == TRUE or default.kind != operand.kind:
            raise NeedsPython  # later operations would see two types
        raw = Out(f"coalesce({operand.sql}, {default.sql})", operand.kind, operand.python,
                  nullable=False)
        return self.convert(raw, target)

    def get_val(self, node: ir.Get, target: str) -> Out:
        """The column where the batch has it: every row then has the key (None where null)."""
        if self.inputs.schema.get_all_field_indices(node.operand.keys[0]):
            return self.render(node.operand, target)
        return self.render(node.default, target)

    # -- strings --------------------------------------------------------------------------------
    def str_val(self, node: ir.Str, target: str) -> Out:
        text = self.render(node.operand, TEXT)
        return self.convert(Out(text.sql, STR, text.python, nullable=False), target)

    def concat_val(self, node: ir.Concat, target: str) -> Out:
        parts = [self.render(part) for part in node.parts]
        if any(part.kind != STR for part in parts):
            raise NeedsPython  # "".join of a non-str raises
        python = any_of([p.python for p in parts] + [_is_null(p) for p in parts])
        sql = self.dialect.concat([p.sql for p in parts])
        return self.convert(Out(sql, STR, python, nullable=False), target)

    def add_val(self, node: ir.Add, target: str) -> Out:
        left, right = self.render(node.left), self.render(node.right)
        if left.kind != STR or right.kind != STR:
            raise NeedsPython  # numbers add, None and mixed types raise: Python's to do
        python = any_of([left.python, right.python, _is_null(left), _is_null(right)])
        sql = self.dialect.concat([left.sql, right.sql])
        return self.convert(Out(sql, STR, python, nullable=False), target)

    def inttext_val(self, node: ir.IntText, target: str) -> Out:
        operand = self.render(node.operand)
        if operand.kind == INT:
            sql = f"CAST({operand.sql} AS {self.dialect.string_type})"
        elif operand.kind == BOOL:
            sql = f"(CASE WHEN {operand.sql} THEN '1' ELSE '0' END)"
        else:
            raise NeedsPython  # None and str raise TypeError, floats truncate
        python = any_of([operand.python, _is_null(operand)])
        return self.convert(Out(sql, STR, python, nullable=False), target)

    def strcase_val(self, node: ir.StrCase, target: str) -> Out:
        """``lower()``/``upper()`` of a str: SQL's agrees with Python's on ASCII text only
        (Python maps "ß" to "SS", "İ" to two characters...); None and ints raise."""
        operand = self.render(node.operand)
        if operand.kind != STR:
            raise NeedsPython
        sql = operand.sql
        not_ascii = f"({self.dialect.byte_length(sql)} <> length({sql}))"
        python = any_of([operand.python, _is_null(operand), not_ascii])
        function = "lower" if node.method == "lower" else "upper"
        return self.convert(Out(f"{function}({sql})", STR, python, nullable=False), target)

    # -- choices --------------------------------------------------------------------------------
    def test(self, node: ir.Node) -> tuple[str, str | None]:
        """A condition as (value, error) SQL: truth and None tests of any value kind here (a
        bool or timestamp column, a dict), anything else by the condition renderer."""
        if isinstance(node, ir.Not):
            value, error = self.test(node.operand)
            return self.conds.negate(value), error
        if isinstance(node, ir.Truthy | ir.IsNull):
            try:
                operand = self.render(node.operand)
                if operand.python == TRUE:
                    raise NeedsPython
                if isinstance(node, ir.Truthy):
                    value = self._truth(operand)
                else:
                    value = f"({operand.sql} IS NULL)" if operand.nullable else (
                        TRUE if operand.kind == NULL else FALSE)
            except (NeedsPython, RenderError):
                return FALSE, TRUE
            return value, None if operand.python == FALSE else operand.python
        return self.conds.cond(node)

    def ifelse_val(self, node: ir.IfElse, target: str) -> Out:
        test, error = self.test(node.test)
        if error is None and test in (TRUE, FALSE):
            return self.render(node.then if test == TRUE else node.other, target)
        then, other = self.render(node.then, target), self.render(node.other, target)
        python = any_of([error or FALSE, all_of([test, then.python]),
                         all_of([self.conds.negate(test), other.python])])
        return self._choice(test, then, other, python, target)

    def coalesce_val(self, node: ir.Coalesce, target: str) -> Out:
        operand = self.render(node.operand)
        if operand.python == TRUE:
            raise NeedsPython
        truth = self._truth(operand)
        chosen = self.convert(operand, target)
        default = self.render(node.default, target)
        python = any_of([operand.python, all_of([truth, chosen.python]),
                         all_of([self.conds.negate(truth), default.python])])
        return self._choice(truth, chosen, default, python, target)

    def _choice(self, test: str, then: Out, other: Out, python: str, target: str) -> Out:
        """``CASE WHEN test THEN then ELSE other END``; raw values must have one kind."""
        if test in (TRUE, FALSE):
            return (then if test == TRUE else other)._replace(python=python)
        kind = STR
        if target == RAW:
            kinds = {then.kind, other.kind} - {NULL}
            if len(kinds) > 1:
                raise NeedsPython  # later operations would see two types
            kind = kinds.pop() if kinds else NULL
        sql = f"(CASE WHEN {test} THEN {then.sql} ELSE {other.sql} END)"
        return Out(sql, kind, python, then.nullable or other.nullable or then.kind == NULL
                   or other.kind == NULL)

    def lookup_val(self, node: ir.Lookup, target: str) -> Out:
        """``MAPPING.get(operand, default)``: a CASE over the keys equal to the operand's type."""
        operand, default = self.render(node.operand), self.render(node.default, target)
        kind = operand.kind
        if TRUE in (operand.python, default.python) or kind not in (INT, STR, BOOL, NULL, TIME):
            raise NeedsPython  # a dict or list is unhashable; 1.0 finds the key 1
        whens: list[tuple[str, Out]] = []
        for key, value in node.entries:
            if key is None:
                test = f"({operand.sql} IS NULL)" if operand.nullable else FALSE
            elif kind == STR and type(key) is str:
                test = f"({operand.sql} = {self.dialect.literal(key)})"
            elif kind == INT and type(key) in (int, bool):
                test = f"({operand.sql} = {self.dialect.literal(int(key))})"
            elif kind == BOOL and type(key) in (int, bool) and key in (0, 1):
                test = operand.sql if key else f"(NOT {operand.sql})"
            else:
                continue  # of another type: never equal (None, datetimes match no scalar key)
            if test != FALSE:
                whens.append((test, self.const_val(ir.Const(value), target)))
        python = any_of([operand.python, default.python])
        result = default._replace(python=python)
        for test, found in reversed(whens):
            result = self._choice(test, found, result, python, target)
        return result

    # -- containers -----------------------------------------------------------------------------
    def dictof_val(self, node: ir.DictOf, target: str) -> Out:
        if target not in (RAW, JSON):
            raise NeedsPython  # str() of a dict is its repr
        values = [self.render(v, JSON) for v in node.values]
        last = dict(zip(node.keys, values, strict=True))  # first position, last value
        # keys as jsonable() makes them (str(), later ones winning), then as json.dumps writes
        # them: sorted, ", " and ": " between, not ASCII-escaped (``alerts.formats.jsonl``)
        named = {key if type(key) is str else str(key): value for key, value in last.items()}
        pieces: list[str] = []
        for index, (key, value) in enumerate(sorted(named.items(), key=lambda kv: kv[0])):
            head = ("{" if index == 0 else ", ") + json.dumps(key, ensure_ascii=False) + ": "
            pieces += [self.dialect.literal(head), value.sql]
        pieces.append(self.dialect.literal("}" if pieces else "{}"))
        sql = self.dialect.concat(pieces)
        # a value a later one under the same key replaced is never written: its Python is moot
        return Out(sql, DICT, any_of([v.python for v in named.values()]), nullable=False)

    def listof_val(self, node: ir.ListOf, target: str) -> Out:
        if target not in (RAW, JSON, STRINGS):
            raise NeedsPython  # str() of a list is its repr
        items = [self.render(item, TEXT if target == STRINGS else JSON) for item in node.items]
        texts = [self.dialect.json_string(i.sql) if target == STRINGS else i.sql for i in items]
        pieces: list[str] = []
        for index, text in enumerate(texts):
            pieces += [self.dialect.literal("[" if index == 0 else ", "), text]
        pieces.append(self.dialect.literal("]" if pieces else "[]"))
        sql = self.dialect.concat(pieces)
        return Out(sql, LIST, any_of([i.python for i in items]), nullable=False)

    def seq_val(self, node: ir.Seq, target: str) -> Out:
        effects = [self.render(effect, JSON).python for effect in node.effects]
        value = self.render(node.value, target)
        return value._replace(python=any_of([*effects, value.python]))

    # -- conversions ----------------------------------------------------------------------------
    def convert(self, out: Out, target: str) -> Out:
        """A raw value as ``target`` asks (see the module docstring)."""
        if target == RAW or out.python == TRUE:
            return out
        kind, sql, python = out.kind, out.sql, out.python
        if kind == FLOAT or (target == STRINGS and kind not in (LIST, NULL)):
            # a float's repr (or iterating a scalar) is Python's to do; None is not
            python = any_of([python, f"({sql} IS NOT NULL)" if out.nullable else TRUE])
            kind = NULL
        if kind == NULL:
            text = "'null'" if target == STRINGS else NONE_TEXT[target]
            return Out(text, STR, python, nullable=target == RESULT)
        if kind in (DICT, LIST):
            if target == JSON or (target == STRINGS and kind == LIST):
                return out
            raise NeedsPython  # str() of a container is its repr
        if kind == STR and target == JSON and self.dialect.json_quick is not None:
            text, odd = self.dialect.json_quick(sql)
            python = any_of([python, f"coalesce({odd}, false)"])
        elif kind == STR:
            text = self.dialect.json_string(sql) if target == JSON else sql
        elif kind == INT:
            text = f"CAST({sql} AS {self.dialect.string_type})"
        elif kind == BOOL:
            yes, no = ("'true'", "'false'") if target == JSON else ("'True'", "'False'")
            text = yes if sql == TRUE else no if sql == FALSE else (
                f"(CASE WHEN {sql} THEN {yes} ELSE {no} END)")
        elif kind == TIME:
            text, odd = self._time_text(sql, "T" if target == JSON else " ")
            if target == JSON:
                text = self.dialect.concat(["'\"'", text, "'\"'"])
            python = any_of([python, odd])
        else:
            raise NeedsPython
        if out.nullable and kind in (STR, INT):  # their text is NULL where they are
            text = text if target == RESULT else f"coalesce({text}, {NONE_TEXT[target]})"
        elif out.nullable:
            text = f"(CASE WHEN {sql} IS NULL THEN {NONE_TEXT[target]} ELSE {text} END)"
        return Out(text, STR, python, nullable=out.nullable and target == RESULT)

    def _time_text(self, sql: str, sep: str) -> tuple[str, str]:
        """A UTC timestamp as Python's ``str()`` (``sep`` " ") or ``isoformat()`` (``sep`` "T"),
        and the rows outside the years Python's datetime holds."""
        micros = self.dialect.micros(sql)
        odd = f"({sql} IS NOT NULL AND ({micros} < {MIN_MICROS} OR {micros} > {MAX_MICROS}))"
        return self.dialect.time_text(micros, sep), odd

    def _truth(self, out: Out) -> str:
        """SQL for ``bool(value)`` of a raw value."""
        if out.kind in (INT, STR, NULL):
            return self.conds._truthy(Value(out.sql, out.kind))
        if out.kind == BOOL:
            return out.sql if not out.nullable else f"coalesce({out.sql}, false)"
        if out.kind == TIME:
            return f"({out.sql} IS NOT NULL)" if out.nullable else TRUE
        if out.kind in (DICT, LIST):
            return f"({out.sql} <> {self.dialect.literal('{}' if out.kind == DICT else '[]')})"
        raise NeedsPython


def _is_null(out: Out) -> str:
    return f"({out.sql} IS NULL)" if out.nullable else FALSE


class AlertColumn(NamedTuple):
    """One alert function over a batch: its value and the rows where Python must run it.

    ``shape`` says what ``value`` holds where ``python`` is false: ``text`` is ``str(result)``,
    NULL where the function returned None; ``json`` is JSON text of ``jsonable(result)`` (a
    dict, or ``null``); ``strings`` is a JSON array of ``str(item)`` per item (or ``null``).
    """

    name: str
    value: str
    python: str
    shape: str


SHAPES = {"alert_context": "json", "destinations": "strings"}  # every other function: text
TARGETS = {"text": RESULT, "json": JSON, "strings": STRINGS}
JSON_STARTS = {"json": ("{", "n"), "strings": ("[", "n")}  # a dict/list, or null


def function_column(name: str, node: ir.Node | None, renderer: SqlRenderer,
                    foreign: str | None = None) -> AlertColumn:
    """The column of alert function ``name`` whose IR is ``node`` (None: not compiled)."""
    shape = SHAPES.get(name, "text")
    out = EVERYWHERE if node is None else ValueRenderer(renderer).render(node, TARGETS[shape])
    python = out.python
    if shape == "json" and out.python != TRUE and not _always_dict(node):
        # alert_context() returning other than a dict or None is Python's error to report
        first = f"substring({out.sql}, 1, 1)"
        starts = ", ".join(renderer.dialect.literal(c) for c in JSON_STARTS[shape])
        python = any_of([python, f"coalesce({first} NOT IN ({starts}), true)"])
    if foreign is not None:
        python = any_of([foreign, python])
    return AlertColumn(name, out.sql, python, shape)


def _always_dict(node: ir.Node | None) -> bool:
    """True when every value ``node`` can return is a dict display."""
    if isinstance(node, ir.Seq):
        return _always_dict(node.value)
    if isinstance(node, ir.IfElse):
        return _always_dict(node.then) and _always_dict(node.other)
    return isinstance(node, ir.DictOf)
