from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from flowwarden.errors import RenderError
from flowwarden.logic import explain as explain_module
from flowwarden.logic.explain import (
    ExplainRenderer,
    FieldTest,
    as_written,
    explain_condition,
    status,
    values_literal,
)
from flowwarden.logic.ir import (
    NODE_TYPES,
    TRUE,
    And,
    Coalesce,
    Compare,
    Const,
    Field,
    InSet,
    IpCheck,
    IpInCidrs,
    IsNull,
    Node,
    Not,
    Or,
    Residual,
    Span,
    Truthy,
    Udm,
)
from flowwarden.logic.rewrite import simplify
from flowwarden.pages.comments import statement_comments
from tests.pages.snapshot import assert_snapshot

SNAPSHOTS = Path(__file__).parent / "snapshots"
PORT, SRC, DST = Udm("destination_port"), Udm("source_ip"), Udm("destination_ip")


def test_every_node_kind_has_an_explain_method():
    missing = [kind.__name__ for kind in NODE_TYPES if not ExplainRenderer.handles(kind)]
    assert missing == []


def test_an_unknown_node_kind_raises_a_render_error():
    class Mystery(Node):
        __slots__ = ()

    with pytest.raises(RenderError, match="explain cannot render Mystery"):
        ExplainRenderer().render(Mystery())


@pytest.mark.parametrize(("node", "text"), [
    pytest.param(Udm("source_ip"), "source_ip", id="udm"),
    pytest.param(Field(("dst_endpoint", "ip")), "dst_endpoint.ip", id="field-path"),
    pytest.param(Const(None), "null", id="const-null"),
    pytest.param(Compare("!=", PORT, Const(53)), "destination_port ne 53", id="compare-ne"),
    pytest.param(Compare("!=", PORT, Const("53")), 'destination_port ne "53"', id="compare-str"),
    pytest.param(Compare("<", Const(1024), PORT), "1024 lt destination_port", id="compare-lt"),
    pytest.param(InSet(PORT, frozenset({443, 80})), "destination_port in [80, 443]",
                 id="in-set-numeric-order"),
    pytest.param(Not(InSet(DST, frozenset({"8.8.8.8", "1.1.1.1"}))),
                 'destination_ip not in ["1.1.1.1", "8.8.8.8"]', id="not-in"),
    pytest.param(IsNull(DST), "destination_ip is_null", id="is-null"),
    pytest.param(Not(IsNull(DST)), "destination_ip is_not_null", id="is-not-null"),
    pytest.param(Truthy(PORT), 'destination_port is_not_null (truthy: not 0, "")', id="truthy"),
    pytest.param(Not(Truthy(SRC)), 'source_ip is_null_or_falsy (null, 0 or "")', id="falsy"),
    pytest.param(Not(IpCheck(Coalesce(SRC, Const("0.0.0.0/32")), "is_global")),
                 'not is_global(source_ip or "0.0.0.0/32")', id="ip-class-coalesce"),
    pytest.param(IpCheck(SRC, "is_private", parse="address"), "is_private(ip_address(source_ip))",
                 id="ip-address"),
    pytest.param(IpCheck(SRC, "is_global", strict=False),
                 "is_global(ip_network(source_ip, strict=false))", id="ip-network-not-strict"),
    pytest.param(IpInCidrs(SRC, ("10.0.0.0/8", "fd00::/8")),
                 'source_ip in_cidr ["10.0.0.0/8", "fd00::/8"]', id="in-cidr-keeps-order"),
    pytest.param(Not(IpInCidrs(SRC, ("10.0.0.0/8",))), 'source_ip not_in_cidr ["10.0.0.0/8"]',
                 id="not-in-cidr"),
    pytest.param(Compare("==", Coalesce(PORT, Const(0)), Const(53)),
                 "(destination_port or 0) eq 53", id="coalesce-in-compare"),
    pytest.param(And((Truthy(SRC), Or((IsNull(DST), Compare("==", PORT, Const(22)))))),
                 'source_ip is_not_null (truthy: not 0, "") and '
                 "(destination_ip is_null or destination_port eq 22)", id="nested-or"),
    pytest.param(Not(And((Compare("!=", PORT, Const(53)), Compare("!=", PORT, Const(5353))))),
                 "not (destination_port ne 53 and destination_port ne 5353)", id="spec-dns"),
    pytest.param(Residual("len(event) > 3", "len() is not supported"), "python: len(event) > 3",
                 id="residual-one-line"),
    pytest.param(Residual("x = f(event)\n\nreturn x", "local variable"),
                 "python: x = f(event) ... (2 lines, shown under Residual Python)",
                 id="residual-lines"),
])
def test_node_text(node: Node, text: str):
    assert ExplainRenderer().render(node) == text


def test_as_written_folds_negations_and_flattens_without_merging():
    """``as_written`` simplifies with ``merge=False``: structure only, tests as written."""
    a, b = Truthy(SRC), Truthy(DST)
    assert simplify(And((Not(Not(a)), And((TRUE, b)))), merge=False) == And((a, b))
    assert simplify(Not(Or((Not(a), Not(b)))), merge=False) == And((a, b))
    assert simplify(Not(Compare("!=", PORT, Const(22))), merge=False) == Compare(
        "==", PORT, Const(22))
    # Mixed negations keep their shape: that is how the spec page shows the DNS port test.
    kept = Not(And((Compare("!=", PORT, Const(53)), Compare("!=", PORT, Const(5353)))))
    assert simplify(kept, merge=False) == kept
    assert simplify(kept) == InSet(PORT, frozenset({53, 5353}))


def test_exclusions_indicators_and_roles():
    condition = And((
        Not(And((Compare("!=", PORT, Const(53)), Compare("!=", PORT, Const(5353))))),
        Not(IpCheck(Coalesce(SRC, Const("0.0.0.0/32")), "is_global")),
        Not(IsNull(DST)),
        Not(InSet(DST, frozenset({"8.8.8.8", "1.1.1.1"}))),
        IpCheck(DST, "is_private"),
    ))
    result = explain_condition(condition)
    assert [c.role for c in result.conditions] == [
        "exclusion", "exclusion", "indicator", "exclusion", "indicator"]
    assert result.exclusions == (
        FieldTest("destination_port", "ne", (53,)),
        FieldTest("destination_port", "ne", (5353,)),
        FieldTest("source_ip", "is_global", (),
                  'IP class; a missing value counts as "0.0.0.0/32"'),
        FieldTest("destination_ip", "in", ("1.1.1.1", "8.8.8.8")),
    )
    assert result.indicators == (
        FieldTest("destination_ip", "is_not_null", (), "no value, null check"),
        FieldTest("destination_ip", "is_private", (), "IP class"),
    )


def test_excluded_values_keep_their_type_and_sort_numbers_numerically():
    result = explain_condition(Not(InSet(PORT, frozenset({80, 443}))))
    assert result.exclusions[0].values == (80, 443)
    assert result.conditions[0].text == "destination_port not in [80, 443]"


def test_a_number_and_a_string_of_its_digits_read_differently():
    mixed = explain_condition(Not(InSet(PORT, frozenset({53, "53"}))))
    assert mixed.exclusions[0].values == (53, "53")
    assert mixed.conditions[0].text == 'destination_port not in [53, "53"]'


def test_constant_compared_on_the_left_is_an_indicator_on_the_field():
    result = explain_condition(Compare("<", Const(1024), PORT))
    assert result.indicators == (FieldTest("destination_port", "gt", (1024,)),)


def test_residuals_are_listed_with_their_line():
    residual = Residual("total = sum(x)\nreturn total > 3", "local variable 'total'",
                        Span(7, 4, 8, 20))
    result = explain_condition(And((Truthy(SRC), residual)))
    assert result.residuals[0].source.startswith("total = sum(x)")
    assert result.residuals[0].line == 7
    assert result.conditions[1].role == "condition"
    assert status(And((Truthy(SRC), residual))) == "partial"
    assert status(residual) == "none"
    assert status(Truthy(SRC)) == "full"


def test_a_comment_on_the_conjunct_line_becomes_its_reason():
    node = And((Not(Truthy(Udm("source_ip", Span(4, 7, 4, 30)))),
                Compare("==", Udm("destination_port", Span(6, 11, 6, 38)), Const(53))))
    result = explain_condition(node, {4: "Only internal sources\n(missing counts)", 9: "x"})
    assert [c.reason for c in result.conditions] == ["Only internal sources\n(missing counts)",
                                                     None]
    assert [c.line for c in result.conditions] == [4, 6]


@pytest.mark.parametrize("rule_id", [
    "AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.InboundPortWhitelist", "AWS.VPC.InboundAdminPort",
    "AWS.VPC.PortScan", "AWS.VPC.SSHAcceptedFromInternet", "AWS.VPC.SkipDataLogStatus",
])
def test_builtin_rule_logic_snapshot(default_pack, rule_id: str):
    rule = default_pack.rule(rule_id)
    result = explain_condition(as_written(rule), statement_comments(rule.source))
    lines = [f"status: {status(as_written(rule))}", "conditions:"]
    for c in result.conditions:
        lines.append(f"  [{c.role}] {c.text}" + (f"  <- {c.reason!r}" if c.reason else ""))
    lines.append("exclusions:")
    lines += [f"  {t.field} | {t.kind} | {values_literal(t.values)} | {t.note or ''}"
              for t in result.exclusions]
    lines.append("indicators:")
    lines += [f"  {t.field} | {t.kind} | {values_literal(t.values)} | {t.note or ''}"
              for t in result.indicators]
    assert_snapshot("\n".join(lines) + "\n", SNAPSHOTS / f"{rule_id}.txt")


def test_doctests():
    result = doctest.testmod(explain_module)
    assert result.attempted > 0 and result.failed == 0
