from __future__ import annotations

import dataclasses
import doctest

import pytest

from flowwarden.logic import ir
from flowwarden.logic.ir import (
    NODE_TYPES,
    Add,
    And,
    Coalesce,
    Compare,
    Concat,
    Const,
    Contains,
    Default,
    DictOf,
    Field,
    Get,
    IfElse,
    InSet,
    IntText,
    IpCheck,
    IpInCidrs,
    IsNull,
    ListOf,
    Lookup,
    Not,
    Or,
    Residual,
    Seq,
    Span,
    Str,
    StrCase,
    StrTest,
    Truthy,
    Udm,
)
from flowwarden.logic.render import text
from flowwarden.logic.render.text import pretty, to_text

SPAN_A, SPAN_B = Span(1, 0, 1, 10, "a.py"), Span(7, 4, 7, 30, "b.py")
PORT, SRC = Udm("destination_port"), Udm("source_ip")


def sample(kind: type[ir.Node]) -> ir.Node:
    """One instance of every node kind, for tests that must cover them all."""
    return {
        Udm: Udm("source_ip"),
        Field: Field(("dst_endpoint", "ip")),
        Const: Const(53),
        Compare: Compare("<", PORT, Const(1024)),
        InSet: InSet(PORT, frozenset({22, 3389}), "ADMIN_PORTS", hashed=True),
        IsNull: IsNull(SRC),
        Truthy: Truthy(SRC),
        Coalesce: Coalesce(SRC, Const("0.0.0.0/32")),
        IpCheck: IpCheck(SRC, "is_global"),
        IpInCidrs: IpInCidrs(SRC, ("10.0.0.0/8",)),
        And: And((Truthy(SRC), IsNull(PORT))),
        Or: Or((Truthy(SRC), IsNull(PORT))),
        Not: Not(Truthy(SRC)),
        Residual: Residual("helper(event)", "call to helper()"),
        Default: Default(Field(("a", "b")), Const("")),
        Get: Get(Field(("action",)), Const("ACCEPT")),
        Contains: Contains(Const("x"), Field(("action",))),
        StrTest: StrTest("startswith", SRC, ("10.", "192.")),
        StrCase: StrCase("lower", Udm("action")),
        Str: Str(PORT),
        Concat: Concat((Const("port "), Str(PORT))),
        Add: Add(Const("ip "), SRC),
        IntText: IntText(PORT),
        IfElse: IfElse(IsNull(SRC), Const("none"), SRC),
        DictOf: DictOf(("source_ip",), (SRC,)),
        ListOf: ListOf((SRC, Const("slack"))),
        Lookup: Lookup(PORT, ((22, "ssh"),), Const(None), "NAMES"),
        Seq: Seq((Add(SRC, Const("!")),), Const("x")),
    }[kind]


@pytest.mark.parametrize("kind", NODE_TYPES, ids=lambda k: k.__name__)
def test_nodes_are_frozen_slotted_and_hashable(kind):
    node = sample(kind)
    assert not hasattr(node, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.span = SPAN_A  # type: ignore[misc]
    assert hash(node) == hash(sample(kind))
    assert node == sample(kind)


@pytest.mark.parametrize("kind", NODE_TYPES, ids=lambda k: k.__name__)
def test_span_takes_no_part_in_equality(kind):
    a = dataclasses.replace(sample(kind), span=SPAN_A)
    b = dataclasses.replace(sample(kind), span=SPAN_B)
    assert a == b and hash(a) == hash(b)
    assert {a, b} == {a}
    assert "span" not in repr(a)


def test_structural_equality_sees_every_other_field():
    assert InSet(PORT, frozenset({22})) != InSet(PORT, frozenset({22}), hashed=True)
    assert InSet(PORT, frozenset({22})) != InSet(PORT, frozenset({22}), name="P")
    assert Const(1) != Const("1")
    assert IpCheck(SRC, "is_global") != IpCheck(SRC, "is_global", parse="address")
    assert IpInCidrs(SRC, ("a", "b")) != IpInCidrs(SRC, ("b", "a"))  # order matters: errors


def test_edits_go_through_replace():
    node = Compare("==", PORT, Const(22))
    edited = dataclasses.replace(node, op="!=")
    assert node.op == "==" and edited.op == "!="


def test_boolean_kinds():
    assert ir.is_boolean(Truthy(SRC)) and ir.is_boolean(Const(True))
    assert not ir.is_boolean(Const(1)) and not ir.is_boolean(SRC)
    assert not ir.is_boolean(Coalesce(SRC, Const("x")))
    assert not ir.is_boolean(Residual("x", "y"))


def test_walk_and_residuals_in_evaluation_order():
    r1, r2 = Residual("a()", "call"), Residual("b()", "call")
    node = And((Truthy(SRC), Or((r1, Not(r2)))))
    assert ir.residuals(node) == (r1, r2)
    assert list(ir.walk(Not(Truthy(SRC)))) == [Not(Truthy(SRC)), Truthy(SRC), SRC]
    assert And((Truthy(SRC), IsNull(PORT))).children() == (Truthy(SRC), IsNull(PORT))


def test_span_location_is_one_based():
    assert str(Span(3, 4, 3, 9, "r.py").location()) == "r.py:3:5"


@pytest.mark.parametrize(("node", "expected"), [
    pytest.param(Udm("source_ip"), "udm.source_ip", id="udm"),
    pytest.param(Field(("dst_endpoint", "ip")), "event.dst_endpoint.ip", id="field"),
    pytest.param(Field(("a.b",)), 'event["a.b"]', id="field-odd-key"),
    pytest.param(Const(None), "null", id="none"),
    pytest.param(Const('say "hi"'), '"say \\"hi\\""', id="string-quoted"),
    pytest.param(Const(22, "PORT"), "PORT=22", id="named-constant"),
    pytest.param(Compare("<", PORT, Const(1024)), "lt(udm.destination_port, 1024)", id="compare"),
    pytest.param(InSet(PORT, frozenset({3389, 22, "x"})), 'in(udm.destination_port, {22, 3389, "x"})',
                 id="in-sorted"),
    pytest.param(Not(InSet(PORT, frozenset({80}), "P")), "not_in(udm.destination_port, P={80})",
                 id="not-in"),
    pytest.param(Not(IsNull(SRC)), "is_not_null(udm.source_ip)", id="is-not-null"),
    pytest.param(IpCheck(SRC, "is_private", "address"), "is_private(ip_address(udm.source_ip))",
                 id="ip-address"),
    pytest.param(IpCheck(SRC, "is_global", strict=False),
                 "is_global(ip_network(udm.source_ip, strict=false))", id="ip-not-strict"),
    pytest.param(IpInCidrs(SRC, ("10.0.0.0/8",), "NETS"), 'in_cidr(udm.source_ip, NETS=["10.0.0.0/8"])',
                 id="in-cidr"),
    pytest.param(Residual("f(\n  event)", "call"), 'residual("f( event)", reason="call")',
                 id="residual"),
    pytest.param(Concat((Const("p "), Str(PORT))), 'concat("p ", str(udm.destination_port))',
                 id="concat"),
    pytest.param(IfElse(IsNull(SRC), Const(None), Add(SRC, Const("!"))),
                 'if(is_null(udm.source_ip), null, add(udm.source_ip, "!"))', id="if-else"),
    pytest.param(DictOf(("a",), (ListOf((IntText(PORT),)),)), '{"a": [int_text(udm.destination_port)]}',
                 id="dict-list"),
    pytest.param(Lookup(PORT, ((22, "ssh"),), Const(None), "N"), 'get(N={22: "ssh"}, udm.destination_port, null)',
                 id="lookup"),
    pytest.param(Seq((SRC,), Const(1)), "seq([udm.source_ip], 1)", id="seq"),
])
def test_text_rendering(node, expected):
    assert to_text(node) == expected == str(node)


def test_pretty_breaks_long_junctions():
    node = And(tuple(InSet(Udm(f"field_{i}"), frozenset({i})) for i in range(6)))
    lines = pretty(node).splitlines()
    assert lines[0] == "and(" and lines[-1] == ")"
    assert lines[1] == "  in(udm.field_0, {0}),"


def test_doctests():
    for module in (ir, text):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
