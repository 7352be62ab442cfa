"""The SQL renderer: IR to a SQL expression over one Arrow batch, exact to Python, any dialect.

Rendering is type-aware: each field resolves against the batch's Arrow schema, and an operation
is rendered only for the Python types it can reproduce (int, str, None); anything else makes
the enclosing condition say "ask Python". A condition renders to a pair (value, error): the
error part is true on rows where Python would raise, reach a residual, or see odd types, in
the short-circuit order of the rule. The rule's verdict column is 0 (no match), 1 (match) or
2 (run the Python rule).

IP predicates read a precomputed per-row code column (a ``Probe``): the engine classifies each
distinct address with the running ``ipaddress`` module and maps the codes back to rows.

The expressions are the same for every backend (``CASE``, ``IN``, ``coalesce``,
``IS NOT DISTINCT FROM``, ``&``); how text gets into them is the dialect's (sqlglot's split:
one expression builder, one small generator per dialect). A ``Dialect`` supplies the literal,
the quoted identifier, the input column aliases and set membership; ``duckdb_sql.DUCKDB`` and
``spark.SPARK`` are the two. Values reach SQL only through ``Dialect.literal``.

>>> from flowwarden.logic.ir import Field, InSet
>>> from flowwarden.logic.render.duckdb_sql import DuckDBRenderer
>>> from flowwarden.logic.render.spark import SparkRenderer
>>> node = InSet(Field(("dstPort",)), frozenset({53, "53"}))
>>> schema = pa.schema([("dstPort", pa.int64())])
>>> DuckDBRenderer(schema).verdict(node), SparkRenderer(schema).verdict(node)
('CAST(coalesce("f0:dstPort" IN (53), false) AS TINYINT)', 'CAST(coalesce(`__fw_f0` IN (53), false) AS TINYINT)')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import pyarrow as pa

from flowwarden.errors import RenderError
from flowwarden.logic import ir
from flowwarden.logic.render import Renderer
from flowwarden.logic.render.probe import Probe
from flowwarden.logic.rewrite import transform

INT, STR, NULL, BOOL, OTHER = "int", "str", "null", "bool", "other"
TIME, DICT, LIST, FLOAT = "time", "dict", "list", "float"  # kinds of alert-function values
TRUE, FALSE = "true", "false"
NO_MATCH, MATCH, PYTHON = 0, 1, 2


class NeedsPython(Exception):
    """Internal: this part cannot be rendered exactly; the enclosing condition asks Python."""


class Value(NamedTuple):
    """A rendered value: SQL text, the Python type every non-null row has, and ``error``: the
    rows where Python raises computing it, or where the SQL is not exactly Python's value
    (None: no such row)."""

    sql: str
    kind: str
    const: bool = False
    error: str | None = None


class Cond(NamedTuple):
    """A rendered condition: ``value`` (non-null boolean SQL) and ``error`` (None: never)."""

    value: str
    error: str | None


def in_list(operand: str, items: Sequence[str]) -> str:
    """Non-null SQL: ``operand`` is one of the literals ``items`` (all of its type)."""
    return f"coalesce({operand} IN ({', '.join(items)}), false)"


def concat_operator(parts: Sequence[str]) -> str:
    """Standard SQL string concatenation of non-null parts: ``(a || b || c)``."""
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def unsupported(*args: str) -> str:
    """A hook a dialect does not supply: what needs it asks Python."""
    raise NeedsPython


@dataclass(frozen=True)
class Dialect:
    """How one SQL dialect spells what the renderer builds: the hooks a backend supplies.

    ``literal`` and ``identifier`` are the dialect's one tested quoting function each; ``alias``
    names the query's inputs (``{kind}`` is ``f`` for a field, ``ip`` for probe codes, ``{index}``
    counts them, ``{path}`` is the dotted key path they read); ``member`` renders set
    membership from literals.

    Alert-function values (``sql_values``) also need: ``string_type`` (what integers are cast to
    for their decimal text), ``concat`` (non-null strings joined), ``json_string`` (a non-null
    string as JSON string text), ``micros`` (a UTC timestamp column as epoch microseconds) and
    ``time_text`` (epoch microseconds, known to lie in years 1-9999, as the UTC datetime's
    ``isoformat(sep)``: ``YYYY-MM-DD<sep>HH:MM:SS``, six digits of fraction where there is one,
    ``+00:00``). A dialect without one of these asks Python for such values.
    ``json_quick`` (optional) is ``json_string`` made cheap to plan: the JSON text, and a
    boolean (NULL where the string is) true where that text is not exact and Python must run.
    ``starts_with``/``ends_with`` (a str column and a str literal: a boolean, NULL where the
    column is) serve ``str.startswith``/``endswith``; ``byte_length`` (of a str's UTF-8) tells
    ASCII text, the only text whose ``lower()``/``upper()`` SQL gives as Python does.
    """

    name: str
    literal: Callable[[ir.Scalar], str]
    identifier: Callable[[str], str]
    alias_format: str
    member: Callable[[str, Sequence[str]], str] = in_list
    string_type: str = "VARCHAR"
    concat: Callable[[Sequence[str]], str] = concat_operator
    json_string: Callable[[str], str] = unsupported
    json_quick: Callable[[str], tuple[str, str]] | None = None
    micros: Callable[[str], str] = unsupported
    time_text: Callable[[str, str], str] = unsupported
    starts_with: Callable[[str, str], str] = unsupported
    byte_length: Callable[[str], str] = unsupported
    ends_with: Callable[[str, str], str] = unsupported

    def alias(self, kind: str, index: int, keys: tuple[str, ...]) -> str:
        """The (unquoted) name of the ``index``-th input of ``kind``, reading ``keys``."""
        return self.alias_format.format(kind=kind, index=index, path=".".join(keys))


def arrow_kind(dtype: pa.DataType) -> str:
    """The Python type a column of ``dtype`` yields, as far as the renderer cares (a
    dictionary-encoded column's is its values')."""
    if pa.types.is_dictionary(dtype):
        return arrow_kind(dtype.value_type)
    if pa.types.is_integer(dtype):
        return INT
    if _is_text(dtype):
        return STR
    if pa.types.is_null(dtype):
        return NULL
    return OTHER


# Timestamps Python sees as aware datetimes printing ``+00:00``, in units ``datetime`` holds.
UTC_ZONES = frozenset({"UTC", "Etc/UTC", "+00:00"})
TIME_UNITS = frozenset({"s", "ms", "us"})


def value_kind(dtype: pa.DataType) -> str:
    """``arrow_kind``, plus the kinds alert-function values know: bool, UTC timestamps, and
    floats (formatted by Python, but None where null)."""
    if pa.types.is_dictionary(dtype):
        return value_kind(dtype.value_type)
    if pa.types.is_boolean(dtype):
        return BOOL
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return FLOAT
    if pa.types.is_timestamp(dtype):
        return TIME if dtype.tz in UTC_ZONES and dtype.unit in TIME_UNITS else OTHER
    return arrow_kind(dtype)


def _is_text(dtype: pa.DataType) -> bool:
    return (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
            or pa.types.is_string_view(dtype))


def resolve_path(schema: pa.Schema, keys: tuple[str, ...],
                 kind: Callable[[pa.DataType], str] = arrow_kind) -> tuple[str, list[int]]:
    """(kind, child indexes) of a key path; a missing key or non-struct parent gives NULL.

    That is ``deep_get``: stepping into anything but a mapping yields None.
    """
    fields: Any = schema
    indexes: list[int] = []
    dtype: pa.DataType | None = None
    for key in keys:
        if dtype is not None and not pa.types.is_struct(dtype):
            return NULL, []
        found = field_indices(fields, key)
        if not found:
            return NULL, []
        if len(found) > 1:
            return OTHER, []
        indexes.append(found[0])
        dtype = fields.field(found[0]).type
        fields = dtype
    if dtype is None:
        return NULL, []
    return kind(dtype), indexes


def field_indices(fields: pa.Schema | pa.StructType, key: str) -> list[int]:
    """The positions of the fields ``event.get(key)`` reads: the fields named ``key`` or, with
    none, those named as the first field equal to ``key`` lowercased, as Panther's
    case-insensitive event finds a key (records are dicts in field order). More than one
    position means duplicate names, which the renderer leaves to Python."""
    found = fields.get_all_field_indices(key)
    if found:
        return list(found)
    folded = key.lower()
    name = next((n for n in fields.names if n.lower() == folded), None)
    return [] if name is None else list(fields.get_all_field_indices(name))


def decide_gets(node: ir.Node, schema: pa.Schema) -> ir.Node:
    """``node`` with each ``event.get(key, default)`` decided by the batch: a row has every
    column as a key (None where null), so the field where ``field_indices`` finds its column,
    else the default. Renderers then never look a key up by its exact name alone. Likewise an
    ``exact`` field (a data-model path) is None where the batch has no field of exactly its
    names, else the field (``field_indices`` finds exact names first)."""

    def decide(n: ir.Node) -> ir.Node:
        if isinstance(n, ir.Field) and n.exact:
            return ir.Field(n.keys, n.span) if _has_exact(schema, n.keys) else ir.Const(None)
        if not isinstance(n, ir.Get):
            return n
        return n.operand if field_indices(schema, n.operand.keys[0]) else n.default

    return transform(node, decide)


def _has_exact(schema: pa.Schema, keys: tuple[str, ...]) -> bool:
    """Whether the path ``keys`` names fields of exactly those names (through structs); a
    path into anything else is absent, as ``deep_get`` would find nothing there."""
    fields: Any = schema
    for index, key in enumerate(keys):
        found = fields.get_all_field_indices(key)
        if not found:
            return False
        kind = fields.field(found[0]).type
        if index < len(keys) - 1 and not pa.types.is_struct(kind):
            return False
        fields = kind
    return True


class Input(NamedTuple):
    """A column a query reads: its alias, key path and child indexes (``resolve_path``)."""

    alias: str
    keys: tuple[str, ...]
    indexes: tuple[int, ...]


class ProbeInput(NamedTuple):
    """IP probe codes a query reads: its alias, the key path and indexes of the addresses."""

    alias: str
    keys: tuple[str, ...]
    indexes: tuple[int, ...]
    probe: Probe


class BatchInputs:
    """The columns and IP probe codes one query reads, named by the dialect's aliases."""

    def __init__(self, schema: pa.Schema, dialect: Dialect) -> None:
        self.schema = schema
        self.dialect = dialect
        self.columns: dict[tuple[str, ...], Input] = {}
        self.probes: dict[tuple[tuple[str, ...], Probe], ProbeInput] = {}

    def column(self, keys: tuple[str, ...], kinds: Callable[[pa.DataType], str] = arrow_kind
               ) -> Value:
        """The input reading ``keys``, of a kind ``kinds`` gives (``value_kind`` for values)."""
        kind, indexes = resolve_path(self.schema, keys, kinds)
        if kind == NULL:
            return Value("NULL", NULL)
        if kind == OTHER:
            raise NeedsPython
        if keys not in self.columns:
            alias = self.dialect.alias("f", len(self.columns), keys)
            self.columns[keys] = Input(alias, keys, tuple(indexes))
        return Value(self.dialect.identifier(self.columns[keys].alias), kind)

    def probe(self, keys: tuple[str, ...], probe: Probe) -> str:
        if (keys, probe) not in self.probes:
            alias = self.dialect.alias("ip", len(self.probes), keys)
            indexes = tuple(resolve_path(self.schema, keys)[1])
            self.probes[(keys, probe)] = ProbeInput(alias, keys, indexes, probe)
        return self.dialect.identifier(self.probes[(keys, probe)].alias)


class SqlRenderer(Renderer):
    """Renders conditions to SQL over the columns of ``inputs``, in their dialect.

    ``inputs`` is a ``BatchInputs``, or (for a subclass with its own ``DIALECT``) a schema.
    """

    NAME: ClassVar[str] = "sql"
    SUFFIX: ClassVar[str] = "sql"
    DIALECT: ClassVar[Dialect | None] = None  # a subclass's own dialect

    def __init__(self, inputs: BatchInputs | pa.Schema) -> None:
        if isinstance(inputs, pa.Schema):
            if self.DIALECT is None:
                raise TypeError("SqlRenderer needs BatchInputs, which name the dialect")
            inputs = BatchInputs(inputs, self.DIALECT)
        elif self.DIALECT is not None and inputs.dialect != self.DIALECT:
            raise ValueError(f"{self.NAME} cannot render over {inputs.dialect.name} inputs")
        self.inputs = inputs
        self.dialect = inputs.dialect
        self._negations: dict[str, str] = {}  # "(NOT x)" -> "x", for the ones built here
        # The errors of the values each condition being rendered reads, innermost last.
        self._value_errors: list[list[str]] = []

    def negate(self, sql: str) -> str:
        """``NOT sql``, folding constants and double negations."""
        if sql in self._negations:
            return self._negations[sql]
        if sql in (TRUE, FALSE):
            return FALSE if sql == TRUE else TRUE
        negated = f"(NOT {sql})"
        self._negations[negated] = sql
        return negated

    # -- entry points -----------------------------------------------------------------------
    def verdict(self, node: ir.Node) -> str:
        """The TINYINT verdict expression (0 no match, 1 match, 2 Python) for a rule condition.

        A top-level and/or becomes one CASE whose WHENs follow the operands in order: the
        engine evaluates each WHEN only on rows still undecided, a vectorized short circuit.
        """
        node = decide_gets(node, self.inputs.schema)
        if isinstance(node, ir.And | ir.Or):
            return self._chain(node)
        value, error = self.cond(node)
        if error == TRUE:
            return str(PYTHON)
        if error is None:
            if value in (TRUE, FALSE):
                return str(MATCH if value == TRUE else NO_MATCH)
            return f"CAST({value} AS TINYINT)"
        return f"CAST(CASE WHEN {error} THEN {PYTHON} WHEN {value} THEN 1 ELSE 0 END AS TINYINT)"

    def _chain(self, node: ir.And | ir.Or) -> str:
        conjunction = isinstance(node, ir.And)
        decided, rest = (NO_MATCH, MATCH) if conjunction else (MATCH, NO_MATCH)
        whens: list[str] = []
        for operand in node.operands:
            value, error = self.cond(operand)
            if error == TRUE and not whens:
                return str(PYTHON)  # every row asks Python
            if error is not None:
                whens.append(f"WHEN {error} THEN {PYTHON}")
                if error == TRUE:
                    break
            stop = self.negate(value) if conjunction else value
            if stop == TRUE:
                rest = decided  # the rows still undecided all get it
                break
            if stop != FALSE:
                whens.append(f"WHEN {stop} THEN {decided}")
        if all(when.endswith(f" THEN {rest}") for when in whens):  # every row gets one verdict
            return str(rest)
        return f"CAST(CASE {' '.join(whens)} ELSE {rest} END AS TINYINT)"

    def cond(self, node: ir.Node) -> Cond:
        """A boolean node as (value, error); anything unrenderable becomes "ask Python"."""
        self._value_errors.append([])
        try:
            found = self.render(node)
            if isinstance(found, Value):  # a non-boolean node used as a condition
                found = Cond(self._truthy(self._noted(found)), None)
        except (NeedsPython, RenderError):
            return Cond(FALSE, TRUE)
        finally:
            errors = self._value_errors.pop()
        if not errors:
            return found
        # The condition's values are computed before it tests them. A value computed only on
        # some rows (a coalesce's default) counts on all: those rows ask Python needlessly.
        error = any_of([*errors, found.error or FALSE])
        return Cond(found.value, None if error == FALSE else error)

    def value(self, node: ir.Node) -> Value:
        found = self.render(node)
        if not isinstance(found, Value):
            raise NeedsPython  # a condition used as a value
        return self._noted(found)

    def _noted(self, value: Value) -> Value:
        """``value``, its errors noted for the condition being rendered."""
        if value.error is not None and value.error != FALSE:
            if value.error == TRUE or not self._value_errors:
                raise NeedsPython
            self._value_errors[-1].append(value.error)
        return value

    # -- values -----------------------------------------------------------------------------
    def udm_sql(self, node: ir.Udm) -> Value:
        raise NeedsPython  # unresolved: a data-model method or an indexed path

    def field_sql(self, node: ir.Field) -> Value:
        return self.inputs.column(node.keys)

    def const_sql(self, node: ir.Const) -> Value | Cond:
        if isinstance(node.value, bool):
            return Cond(TRUE if node.value else FALSE, None)
        kind = NULL if node.value is None else INT if isinstance(node.value, int) else STR
        return Value(self.dialect.literal(node.value), kind, const=True)

    def coalesce_sql(self, node: ir.Coalesce) -> Value:
        operand, default = self.value(node.operand), self.value(node.default)
        if operand.kind == NULL:
            return default
        if default.kind not in (operand.kind, NULL):
            raise NeedsPython  # `x or d` of two types: later operations would see both
        otherwise = "" if default.kind == NULL else f" ELSE {default.sql}"
        return Value(f"(CASE WHEN {self._truthy(operand)} THEN {operand.sql}{otherwise} END)",
                     operand.kind)

    def default_sql(self, node: ir.Default) -> Value:
        operand, default = self.value(node.operand), self.value(node.default)
        if operand.kind == NULL:
            return default
        if default.kind != operand.kind:
            raise NeedsPython  # later operations would see two types
        return Value(f"coalesce({operand.sql}, {default.sql})", operand.kind)

    def get_sql(self, node: ir.Get) -> Value:
        """The column where the batch has it: every row then has the key (None where null)."""
        if field_indices(self.inputs.schema, node.operand.keys[0]):
            return self.value(node.operand)
        return self.value(node.default)

    # -- conditions -------------------------------------------------------------------------
    def contains_sql(self, node: ir.Contains) -> Cond:
        """A substring test; ``in`` a None or an int, or a non-str in a str, raises."""
        item, container = self.value(node.item), self.value(node.container)
        if item.kind != STR or container.kind != STR:
            return Cond(FALSE, TRUE)
        error = any_of([f"({v.sql} IS NULL)" for v in (item, container) if not v.const])
        found = f"coalesce(position({item.sql} IN {container.sql}) > 0, false)"
        return Cond(found, None if error == FALSE else error)

    def strtest_sql(self, node: ir.StrTest) -> Cond:
        """``startswith``/``endswith``: anything but a str raises AttributeError."""
        operand = self.value(node.operand)
        if operand.kind != STR:
            return Cond(FALSE, TRUE)
        test = self.dialect.starts_with if node.method == "startswith" else self.dialect.ends_with
        found = any_of([test(operand.sql, self.dialect.literal(a)) for a in node.affixes])
        return Cond(f"coalesce({found}, false)", None if operand.const else f"({operand.sql} IS NULL)")

    def seq_sql(self, node: ir.Seq) -> Value | Cond:
        """A condition after effects: true where it is; the effects' errors come first."""
        if not ir.is_boolean(node.value):
            return self._value_node(node)
        from flowwarden.logic.render.sql_values import RAW, ValueRenderer

        errors = [ValueRenderer(self).render(effect, RAW).python for effect in node.effects]
        value, error = self.cond(node.value)
        combined = any_of([*errors, error or FALSE])
        return Cond(value, None if combined == FALSE else combined)

    def truthy_sql(self, node: ir.Truthy) -> Cond:
        return Cond(self._truthy(self.value(node.operand)), None)

    def isnull_sql(self, node: ir.IsNull) -> Cond:
        operand = self.value(node.operand)
        if operand.kind == NULL or operand.const:
            return Cond(TRUE if operand.kind == NULL else FALSE, None)
        return Cond(f"({operand.sql} IS NULL)", None)

    def compare_sql(self, node: ir.Compare) -> Cond:
        left, right = self.value(node.left), self.value(node.right)
        if node.op in ("==", "!="):
            equal = self._equal(left, right)
            return Cond(equal if node.op == "==" else self.negate(equal), None)
        if left.kind != right.kind or left.kind not in (INT, STR):
            return Cond(FALSE, TRUE)  # None or mixed types: Python raises TypeError
        error = f"({left.sql} IS NULL OR {right.sql} IS NULL)"
        return Cond(f"coalesce({left.sql} {node.op} {right.sql}, false)", error)

    def inset_sql(self, node: ir.InSet) -> Cond:
        operand = self.value(node.operand)
        if operand.kind not in (INT, STR):
            return Cond(FALSE, None)  # None is in no set of str/int
        wanted = int if operand.kind == INT else str
        values = sorted(v for v in node.values if type(v) is wanted)
        if not values:
            return Cond(FALSE, None)
        return Cond(self.dialect.member(operand.sql, [self.dialect.literal(v) for v in values]),
                    None)

    def ipcheck_sql(self, node: ir.IpCheck) -> Cond:
        probe = Probe("check", node.parse, node.strict)
        code = self._code(node.operand, probe)
        bit = probe.bit(node.attr)
        return Cond(f"(({code} & {bit}) <> 0)", f"(({code} & 1) = 0)")

    def ipincidrs_sql(self, node: ir.IpInCidrs) -> Cond:
        probe = Probe("cidr", "address", node.strict, node.networks)
        code = self._code(node.operand, probe)
        return Cond(f"(({code} & 2) <> 0)", f"(({code} & 1) = 0)")

    def and_sql(self, node: ir.And) -> Cond:
        return self._junction([self.cond(n) for n in node.operands], conjunction=True)

    def or_sql(self, node: ir.Or) -> Cond:
        return self._junction([self.cond(n) for n in node.operands], conjunction=False)

    def not_sql(self, node: ir.Not) -> Cond:
        value, error = self.cond(node.operand)
        return Cond(self.negate(value), error)

    def residual_sql(self, node: ir.Residual) -> Cond:
        raise NeedsPython

    def _value_node(self, node: ir.Node) -> Value:
        """A value node inside a condition: exact int/str/None values only (``sql_values``)."""
        from flowwarden.logic.render.sql_values import RAW, ValueRenderer

        found = ValueRenderer(self).render(node, RAW)
        if found.python == TRUE or found.kind not in (INT, STR, NULL):
            raise NeedsPython
        return Value(found.sql, found.kind, found.const,
                     None if found.python == FALSE else found.python)

    str_sql = concat_sql = add_sql = inttext_sql = ifelse_sql = _value_node
    dictof_sql = listof_sql = lookup_sql = strcase_sql = _value_node

    # -- helpers ----------------------------------------------------------------------------
    def _truthy(self, value: Value) -> str:
        if value.kind == NULL:
            return FALSE
        if value.kind == INT:
            return f"coalesce({value.sql} <> 0, false)"
        if value.kind == STR:
            return f"coalesce({value.sql} <> '', false)"
        raise NeedsPython

    def _equal(self, left: Value, right: Value) -> str:
        if OTHER in (left.kind, right.kind) or BOOL in (left.kind, right.kind):
            raise NeedsPython
        if left.kind == NULL or right.kind == NULL:
            other = right if left.kind == NULL else left
            if other.kind == NULL or other.const:
                return TRUE if other.kind == NULL else FALSE
            return f"({other.sql} IS NULL)"
        if left.kind != right.kind:  # int vs str: only None == None
            if left.const or right.const:
                return FALSE
            return f"({left.sql} IS NULL AND {right.sql} IS NULL)"
        if left.const or right.const:  # a non-null literal: NULL never equals it
            return f"coalesce({left.sql} = {right.sql}, false)"
        return f"({left.sql} IS NOT DISTINCT FROM {right.sql})"

    def _code(self, node: ir.Node, probe: Probe) -> str:
        """SQL for the probe's code of ``node``'s value: a column, a constant, or a CASE."""
        if isinstance(node, ir.Const):
            return str(probe.classify(node.value))
        field, fallback = _field_with_fallback(node)
        if field is not None:
            kind, _ = resolve_path(self.inputs.schema, field.keys)
            if kind == NULL:
                return str(probe.with_fallback(fallback).classify(None))
            if kind != STR:
                raise NeedsPython
            # The engine applies constant fallbacks per distinct value: one column per variant.
            return self.inputs.probe(field.keys, probe.with_fallback(fallback))
        if isinstance(node, ir.Coalesce):
            operand = self.value(node.operand)
            if operand.kind == NULL:
                return self._code(node.default, probe)
            return (f"(CASE WHEN {self._truthy(operand)} THEN {self._code(node.operand, probe)} "
                    f"ELSE {self._code(node.default, probe)} END)")
        raise NeedsPython

    def _junction(self, parts: list[Cond], conjunction: bool) -> Cond:
        """Short-circuit and/or: an error counts only if every earlier operand let it be reached."""
        stop = FALSE if conjunction else TRUE  # the value that ends evaluation
        values: list[str] = []
        errors: list[str] = []
        for value, error in parts:
            reach = [v if conjunction else self.negate(v) for v in values]
            if error is not None:
                errors.append(all_of([*reach, error]))
            values.append(value)
            if value == stop and error is None:
                break
        if conjunction:
            value = all_of(values)
        else:
            value = FALSE if all(v == FALSE for v in values) else (
                TRUE if TRUE in values else "(" + " OR ".join(v for v in values if v != FALSE) + ")")
        error = None if not errors else any_of(errors)
        return Cond(value, error)


def _field_with_fallback(node: ir.Node) -> tuple[ir.Field | None, tuple[ir.Scalar, ...]]:
    """``field or c1 or c2 ...`` with constant fallbacks, or (None, ()) for anything else."""
    fallback: list[ir.Scalar] = []
    head = node
    if isinstance(node, ir.Coalesce):
        head, rest = node.operand, node.default
        while isinstance(rest, ir.Coalesce) and isinstance(rest.operand, ir.Const):
            fallback.append(rest.operand.value)
            rest = rest.default
        if not isinstance(rest, ir.Const):
            return None, ()
        fallback.append(rest.value)
    return (head, tuple(fallback)) if isinstance(head, ir.Field) else (None, ())


def all_of(parts: list[str]) -> str:
    """SQL true where every part is (constants folded)."""
    if FALSE in parts:
        return FALSE
    kept = [p for p in parts if p != TRUE]
    return TRUE if not kept else kept[0] if len(kept) == 1 else "(" + " AND ".join(kept) + ")"


def any_of(parts: list[str]) -> str:
    """SQL true where any part is (constants folded)."""
    if TRUE in parts:
        return TRUE
    kept = [p for p in parts if p != FALSE]
    return FALSE if not kept else kept[0] if len(kept) == 1 else "(" + " OR ".join(kept) + ")"
