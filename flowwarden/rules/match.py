"""Panther's YAML match expressions (``Detection:``, ``InlineFilters:``) compiled to the
condition IR, so that YAML detections run vectorized like extracted Python rules.

Supported, as Panther's "Simple Detection Match Expression Reference" describes them:

- key specifiers ``Key`` (a top-level key), ``DeepKey`` (a list of keys), ``KeyPath`` (dotted);
- key/value conditions: Equals, DoesNotEqual, IsGreaterThan(OrEquals), IsLessThan(OrEquals),
  StartsWith, EndsWith, Contains and their DoesNot forms, IsIPAddressInCIDR,
  IsIPAddressNotInCIDR, IsIPAddressPublic, IsIPAddressPrivate;
- key/values: IsIn, IsNotIn (``Values``); existence: Exists, DoesNotExist, IsNull, IsNotNull,
  IsNullOrEmpty, IsNotNullOrEmpty; absolute: AlwaysTrue, AlwaysFalse;
- multi-key: a comparison whose ``Values`` are two key specifiers;
- list comprehension: AnyElement, AllElements, OnlyOneElement, NoElement over ``Expressions``
  (the IR has no loops: these are residuals that ``ElementTests`` evaluates in Python);
- combinators All, Any, OnlyOne, None; a list of expressions is All.

String and ordering conditions are false on a missing (null) key; they compare with Python's
own operators, so they are case-sensitive. Exists and IsNull both test for null: flowwarden's
events do not tell a missing key from a null one; IsNullOrEmpty is null or "". Enrichment
expressions are not supported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowwarden.errors import Location, RuleLoadError
from flowwarden.logic import ir

COMPARISONS = {"Equals": "==", "DoesNotEqual": "!=", "IsGreaterThan": ">",
               "IsGreaterThanOrEquals": ">=", "IsLessThan": "<", "IsLessThanOrEquals": "<="}
AFFIXES = {"StartsWith": "startswith", "EndsWith": "endswith"}
NEGATED = {"DoesNotStartWith": "StartsWith", "DoesNotEndWith": "EndsWith",
           "DoesNotContain": "Contains", "IsNotIn": "IsIn", "DoesNotExist": "Exists",
           "IsNotNull": "IsNull", "IsNotNullOrEmpty": "IsNullOrEmpty",
           "IsIPAddressNotInCIDR": "IsIPAddressInCIDR"}
IP_CLASSES = {"IsIPAddressPublic": "is_global", "IsIPAddressPrivate": "is_private"}
ELEMENT_TESTS = ("AnyElement", "AllElements", "OnlyOneElement", "NoElement")
COMBINATORS = ("All", "Any", "OnlyOne", "None")
KEY_SPECIFIERS = ("Key", "DeepKey", "KeyPath")


@dataclass(frozen=True)
class ElementTest:
    """A list comprehension: ``condition`` of ``test`` over the elements at ``keys``."""

    condition: str
    keys: tuple[str, ...]
    test: ir.Node


@dataclass
class MatchCompiler:
    """Compiles match expressions of one file; collects the list comprehensions it meets."""

    where: Location
    elements: dict[ir.Residual, ElementTest] = field(default_factory=dict)

    def compile_all(self, items: Any) -> ir.Node:
        """A list of match expressions: all of them must hold."""
        if not isinstance(items, list):
            raise self.error(f"expected a list of match expressions, got {items!r}")
        return _and([self.compile(item) for item in items])

    def compile(self, item: Any) -> ir.Node:
        if not isinstance(item, Mapping):
            raise self.error(f"a match expression is a mapping, got {item!r}")
        combinator = [k for k in COMBINATORS if k in item]
        if combinator:
            return self._combine(combinator[0], item[combinator[0]])
        if "Enrichment" in item:
            raise self.error("enrichment match expressions (lookup tables) are not supported")
        condition = item.get("Condition")
        if not isinstance(condition, str):
            raise self.error(f"match expression without a Condition: {dict(item)!r}")
        if condition in NEGATED:
            return ir.Not(self._positive(NEGATED[condition], item))
        return self._positive(condition, item)

    def error(self, message: str) -> RuleLoadError:
        return RuleLoadError(message, self.where)

    def _combine(self, name: str, items: Any) -> ir.Node:
        if not isinstance(items, list):
            raise self.error(f"{name} takes a list of match expressions")
        parts = [self.compile(i) for i in items]
        if name == "All":
            return _and(parts)
        if name == "Any":
            return ir.Or(tuple(parts)) if parts else ir.FALSE
        if name == "None":
            return ir.Not(ir.Or(tuple(parts))) if parts else ir.TRUE
        return exactly_one(parts)

    def _positive(self, condition: str, item: Mapping[str, Any]) -> ir.Node:
        if condition in ("AlwaysTrue", "AlwaysFalse"):
            return ir.Const(condition == "AlwaysTrue")
        if condition in ELEMENT_TESTS:
            return self._elements(condition, item)
        values = item.get("Values")
        if isinstance(values, list) and values and all(_is_key(v) for v in values):
            return self._multi_key(condition, values)
        key = self.key(item)
        present = ir.Not(ir.IsNull(key))
        if condition in ("Exists", "IsNull"):
            return present if condition == "Exists" else ir.IsNull(key)
        if condition == "IsNullOrEmpty":
            return ir.Or((ir.IsNull(key), ir.Compare("==", key, ir.Const(""))))
        if condition == "IsIn":
            return ir.InSet(key, frozenset(self._scalars(values, condition)))
        if condition in IP_CLASSES:
            return ir.And((present, ir.IpCheck(key, IP_CLASSES[condition], parse="address")))
        value = self._value(item, condition)
        if condition in COMPARISONS:
            compare = ir.Compare(COMPARISONS[condition], key, ir.Const(value))
            return compare if condition in ("Equals", "DoesNotEqual") else ir.And((present, compare))
        if condition in AFFIXES:
            return ir.And((present, ir.StrTest(AFFIXES[condition], key, (self._text(value),))))
        if condition == "Contains":
            return ir.And((present, ir.Contains(ir.Const(self._text(value)), key)))
        if condition == "IsIPAddressInCIDR":
            return ir.And((present, ir.IpInCidrs(key, (self._text(value),), strict=False)))
        raise self.error(f"unknown or unsupported Condition {condition!r}")

    def _multi_key(self, condition: str, values: list[Any]) -> ir.Node:
        if len(values) != 2:
            raise self.error(f"a multi-key {condition} compares exactly two keys")
        left, right = (self.key(v) for v in values)
        if condition in ("Equals", "DoesNotEqual"):
            return ir.Compare(COMPARISONS[condition], left, right)
        present = (ir.Not(ir.IsNull(left)), ir.Not(ir.IsNull(right)))
        if condition in COMPARISONS:
            return ir.And((*present, ir.Compare(COMPARISONS[condition], left, right)))
        if condition == "Contains":
            return ir.And((*present, ir.Contains(right, left)))
        raise self.error(f"Condition {condition!r} does not compare two keys")

    def _elements(self, condition: str, item: Mapping[str, Any]) -> ir.Node:
        key = self.key(item)
        inner = MatchCompiler(self.where, self.elements)
        test = inner.compile_all(item.get("Expressions"))
        # The residual's source names the test uniquely: equal residuals are one test.
        node = ir.Residual(f"{condition}#{len(self.elements)}({'.'.join(key.keys)})",
                           "list comprehension match expressions run in Python")
        self.elements[node] = ElementTest(condition, key.keys, test)
        return node

    def key(self, item: Any) -> ir.Field:
        """The event key a match expression (or a multi-key value) names."""
        if not isinstance(item, Mapping):
            raise self.error(f"expected a key specifier, got {item!r}")
        if isinstance(item.get("Key"), str):
            return ir.Field((item["Key"],))
        deep = item.get("DeepKey")
        if isinstance(deep, list) and deep and all(isinstance(k, str | int) for k in deep):
            return ir.Field(tuple(str(k) for k in deep))
        path = item.get("KeyPath")
        if isinstance(path, str) and path and not any(c in path for c in "[]*"):
            return ir.Field(tuple(path.split(".")))
        if isinstance(path, str):
            raise self.error(f"KeyPath {path!r}: indexes and wildcards are not supported")
        raise self.error(f"match expression without Key, DeepKey or KeyPath: {dict(item)!r}")

    def _value(self, item: Mapping[str, Any], condition: str) -> ir.Scalar:
        if "Value" not in item:
            raise self.error(f"{condition} needs a Value")
        return self._scalars([item["Value"]], condition)[0]

    def _scalars(self, values: Any, condition: str) -> list[Any]:
        if not isinstance(values, list) or not all(
                isinstance(v, str | int | bool) or v is None for v in values):
            raise self.error(f"{condition}: values must be strings, integers or booleans, "
                             f"got {values!r}")
        return values

    def _text(self, value: ir.Scalar) -> str:
        if not isinstance(value, str):
            raise self.error(f"expected a string value, got {value!r}")
        return value


def _is_key(value: Any) -> bool:
    return isinstance(value, Mapping) and any(k in value for k in KEY_SPECIFIERS)


def _and(parts: list[ir.Node]) -> ir.Node:
    if not parts:
        return ir.TRUE
    return parts[0] if len(parts) == 1 else ir.And(tuple(parts))


def exactly_one(parts: list[ir.Node]) -> ir.Node:
    """True when exactly one of ``parts`` holds (each alone, the others not)."""
    return ir.Or(tuple(
        _and([p if i == j else ir.Not(p) for j, p in enumerate(parts)])
        for i in range(len(parts)))) if parts else ir.FALSE


def element_verdict(condition: str, results: list[bool]) -> bool:
    """A list comprehension's verdict from its test on each element."""
    hits = sum(results)
    return {"AnyElement": hits > 0, "AllElements": hits == len(results),
            "OnlyOneElement": hits == 1, "NoElement": hits == 0}[condition]

