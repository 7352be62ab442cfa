from __future__ import annotations

import doctest
import textwrap
from typing import Any

import pytest

from flowwarden.config import parse_config
from flowwarden.logic import extract, rewrite, scope
from flowwarden.logic.extract import extract_rule, extract_source
from flowwarden.logic.ir import (
    And,
    Coalesce,
    Compare,
    Const,
    Field,
    InSet,
    IpCheck,
    IpInCidrs,
    IsNull,
    Not,
    Or,
    Residual,
    Truthy,
    Udm,
    residuals,
)
from flowwarden.logic.render.text import pretty
from flowwarden.rules.loader import load_pack, resolve_pack_paths

PORT, SRC, DST = Udm("destination_port"), Udm("source_ip"), Udm("destination_ip")
BUILTIN_IDS = [
    "AWS.VPC.InboundAdminPort", "AWS.VPC.InboundPortWhitelist", "AWS.VPC.PortScan",
    "AWS.VPC.SkipDataLogStatus", "AWS.VPC.SSHAcceptedFromInternet",
    "AWS.VPC.UnapprovedOutboundDNS",
]


def run(source: str, namespace: bool = True) -> Any:
    """Extract rule() from dedented source, with the executed module as namespace."""
    source = textwrap.dedent(source)
    env: dict[str, Any] = {}
    if namespace:
        exec(compile(source, "<rule>", "exec"), env)  # noqa: S102 - test rule text
    return extract_source(source, env if namespace else None, "rule.py")


def test_dns_spec_rule_matches_the_architecture_example(default_pack):
    """ARCHITECTURE.md's DNS example, except `is_not_null` where the source says `is not None`.

    The example prints `truthy(udm.destination_ip)`; the rule's source tests `is not None`, and
    the IR keeps what the source says (the two only agree given the earlier conjuncts).
    """
    condition = extract_rule(default_pack.rule("AWS.VPC.UnapprovedOutboundDNS")).condition
    assert condition == And((
        InSet(PORT, frozenset({53, 5353})),
        Not(IpCheck(Coalesce(SRC, Const("0.0.0.0/32")), "is_global")),
        Not(IpCheck(Coalesce(DST, Const("192.168.0.1/32")), "is_private")),
        Not(IsNull(DST)),
        Not(InSet(DST, frozenset({"1.1.1.1", "8.8.8.8"}), "APPROVED_DNS_SERVERS", hashed=True)),
    ))
    assert pretty(condition) == textwrap.dedent("""\
        and(
          in(udm.destination_port, {53, 5353}),
          not(is_global(coalesce(udm.source_ip, "0.0.0.0/32"))),
          not(is_private(coalesce(udm.destination_ip, "192.168.0.1/32"))),
          is_not_null(udm.destination_ip),
          not_in(udm.destination_ip, APPROVED_DNS_SERVERS={"1.1.1.1", "8.8.8.8"}),
        )""")


def test_port_allowlist_spec_rule(default_pack):
    condition = extract_rule(default_pack.rule("AWS.VPC.InboundPortWhitelist")).condition
    assert condition == And((
        Truthy(PORT),
        Not(InSet(PORT, frozenset({80, 443}), "APPROVED_PORTS", hashed=True)),
        IpCheck(Coalesce(SRC, Const("0.0.0.0/32")), "is_global"),
        Not(IpCheck(Coalesce(DST, Const("1.0.0.0/32")), "is_global")),
    ))


def test_admin_port_rule_de_morgan(default_pack):
    condition = extract_rule(default_pack.rule("AWS.VPC.InboundAdminPort")).condition
    assert condition == And((
        InSet(PORT, frozenset({22, 3389}), "ADMIN_PORTS", hashed=True),
        Truthy(SRC), Truthy(DST),
        IpCheck(SRC, "is_global"),
        Not(IpCheck(DST, "is_global")),
    ))


@pytest.mark.parametrize("rule_id", BUILTIN_IDS)
def test_every_builtin_rule_extracts_fully(default_pack, rule_id):
    extraction = extract_rule(default_pack.rule(rule_id))
    assert extraction.status == "full", pretty(extraction.condition)
    assert extraction.residuals == ()


def test_config_settings_and_rule_constants_flow_in():
    config = parse_config({
        "approved_dns_servers": ["9.9.9.9"],
        "rule_constants": {"AWS.VPC.SSHAcceptedFromInternet": {"ACCEPTED": ["ACCEPT"]}},
    })
    pack = load_pack(resolve_pack_paths([]), config)
    dns = extract_rule(pack.rule("AWS.VPC.UnapprovedOutboundDNS")).condition
    assert Not(InSet(DST, frozenset({"9.9.9.9"}), "APPROVED_DNS_SERVERS", hashed=True)) in dns.operands
    ssh = extract_rule(pack.rule("AWS.VPC.SSHAcceptedFromInternet")).condition
    assert InSet(Udm("action"), frozenset({"ACCEPT"}), "ACCEPTED", hashed=True) in ssh.operands


@pytest.mark.parametrize(("source", "expected"), [
    pytest.param("""
        def rule(event):
            if event.udm("action") == "ACCEPT":
                return event.udm("destination_port") == 22
            else:
                return event.udm("destination_port") == 23
        """,
        Or((And((Compare("==", Udm("action"), Const("ACCEPT")), Compare("==", PORT, Const(22)))),
            And((Compare("!=", Udm("action"), Const("ACCEPT")), Compare("==", PORT, Const(23)))))),
        id="if-else"),
    pytest.param("""
        def rule(event):
            if event.udm("destination_port") == 22:
                return True
            return bool(event.udm("source_ip"))
        """,
        Or((Compare("==", PORT, Const(22)), Truthy(SRC))), id="early-true-then-bool"),
    pytest.param("""
        import ipaddress
        def rule(event):
            return ipaddress.ip_network(event.udm("source_ip") or "0.0.0.0/32").is_private
        """,
        IpCheck(Coalesce(SRC, Const("0.0.0.0/32")), "is_private"), id="module-attribute-call"),
    pytest.param("""
        from ipaddress import ip_address, ip_network
        def rule(event):
            return ip_address(event.udm("source_ip")) in ip_network("10.0.0.0/8")
        """,
        IpInCidrs(SRC, ("10.0.0.0/8",)), id="address-in-network"),
    pytest.param("""
        from ipaddress import ip_address, ip_network
        NETS = ["10.0.0.0/8", "fd00::/8"]
        def rule(event):
            for net in NETS:
                if ip_address(event.udm("source_ip")) in ip_network(net):
                    return False
            return True
        """,
        Not(IpInCidrs(SRC, ("10.0.0.0/8", "fd00::/8"), "NETS")), id="loop-over-cidr-strings"),
    pytest.param("""
        from ipaddress import ip_address, ip_network
        NETS = (ip_network("10.0.0.0/8"), ip_network("192.168.0.0/16"))
        def rule(event):
            for net in NETS:
                if ip_address(event.deep_get("src_endpoint", "ip")) in net:
                    return True
            return False
        """,
        IpInCidrs(Field(("src_endpoint", "ip")), ("10.0.0.0/8", "192.168.0.0/16"), "NETS"),
        id="loop-over-network-objects"),
    pytest.param("""
        from ipaddress import ip_network
        def rule(event):
            return ip_network(event.get("srcAddr"), strict=False).is_global
        """,
        IpCheck(Field(("srcAddr",)), "is_global", strict=False), id="strict-false"),
    pytest.param("""
        def rule(event):
            return None == event.udm("a", "b") or 1024 > event.udm("destination_port")
        """,
        Or((IsNull(Field(("a", "b"))), Compare("<", PORT, Const(1024)))), id="mirrored-and-none"),
    pytest.param("""
        def rule(event):
            return event.udm("destination_port") in [22, 23] and event.udm("x") not in {"a"}
        """,
        And((InSet(PORT, frozenset({22, 23})),
             Not(InSet(Udm("x"), frozenset({"a"}), hashed=True)))), id="literal-containers"),
    pytest.param("""
        LIMIT = 1024
        def rule(event):
            return event.udm("destination_port") < LIMIT
        """,
        Compare("<", PORT, Const(1024, "LIMIT")), id="scalar-constant"),
    pytest.param("""
        def rule(event):
            return not (event.udm("destination_port") != 22)
        """,
        Compare("==", PORT, Const(22)), id="not-ne-is-eq"),
])
def test_patterns(source, expected):
    assert run(source) == expected


@pytest.mark.parametrize(("source", "reason"), [
    pytest.param("""
        def rule(event):
            return is_internal(event.udm("source_ip"))
        def is_internal(ip):
            return ip.strip() == "10.0.0.1"
        """, "call to ip.strip()", id="helper-function-inlined-with-its-residual"),
    pytest.param("""
        import re
        def rule(event):
            return bool(re.match(r"eni-", event.udm("interface_id") or ""))
        """, "call to re.match()", id="regex"),
    pytest.param("""
        def rule(event):
            port, ip = event.udm("destination_port"), event.udm("source_ip")
            return port == 22
        """, "assignment to other than a name", id="unpacking-assignment"),
    pytest.param("""
        def rule(event):
            if event.udm("action") == "ACCEPT":
                port = event.udm("destination_port")
            return port == 22
        """, "local variable 'port'", id="local-unbound-on-a-path"),
    pytest.param("""
        def rule(event):
            return 0 < event.udm("destination_port") < 1024
        """, "chained comparison", id="chained-comparison"),
    pytest.param("""
        def ip_network(x):
            return x
        def rule(event):
            return ip_network(event.udm("source_ip")).is_global
        """, "attribute .is_global", id="shadowed-ip-network"),  # inlined: it returns its str
    pytest.param("""
        PORTS = {22}
        def rule(event):
            return event.udm("destination_port") in PORTS
        def reset():
            global PORTS
            PORTS = {23}
        """, "'PORTS' is not a str/int constant or container", id="global-rebinding"),
    pytest.param("""
        def rule(event):
            return event.udm("source_ip")
        """, "returns a value that is not provably a bool", id="returns-non-bool"),
    pytest.param("""
        def rule(event):
            if event.udm("destination_port") == 22:
                return True
        """, "rule() can end without a return (it returns None, an error)", id="falls-off-end"),
    pytest.param("""
        def rule(*events):
            return True
        """, "rule() must take exactly one event argument", id="signature"),
    pytest.param("""
        from ipaddress import ip_address, ip_network
        NETS = [ip_network("10.0.0.0/8")]
        def rule(event):
            return ip_address(event.udm("source_ip")) in NETS
        """, "`in` other than a constant container or ip_network()", id="address-in-list"),
    pytest.param("""
        def rule(event):
            return event.get("action", event.get("act")) == "ACCEPT"
        """, "event.get() with a default other than a constant", id="get-with-field-default"),
    pytest.param("""
        def rule(event):
            return event.udm("flag") is True
        """, "`is` other than a None test", id="is-true"),
    pytest.param("""
        def rule(event):
            return event.udm("ratio") > 0.5
        """, "float literal", id="float-literal"),
    pytest.param("""
        def rule(event):
            return (event.udm("a") == 1) == True
        """, "comparison with a bool", id="compare-with-bool"),
])
def test_residual_reasons(source, reason):
    found = residuals(run(source))
    assert found, "expected a residual"
    assert found[0].reason == reason


def test_partial_extraction_keeps_the_prefix_and_the_span():
    node = run("""
        PORTS = {22}
        def rule(event):
            if event.udm("destination_port") not in PORTS:
                return False
            return helper(event)
        def helper(event, *more):
            return True
        """)
    assert isinstance(node, And) and node.operands[0] == InSet(PORT, frozenset({22}), "PORTS", True)
    residual = node.operands[1]
    assert isinstance(residual, Residual) and residual.source == "helper(event)"
    assert (residual.span.line, residual.span.col, residual.span.path) == (6, 11, "rule.py")


def test_no_rule_or_broken_source_is_one_residual():
    assert isinstance(extract_source("def other(event):\n    return True\n"), Residual)
    broken = extract_source("def rule(:\n", path="x.py")
    assert isinstance(broken, Residual) and broken.reason.startswith("syntax error")


def test_constants_without_a_module_come_from_literals():
    node = run("""
        PORTS = (22, 23)
        def rule(event):
            return event.udm("destination_port") in PORTS
        """, namespace=False)
    assert node == InSet(PORT, frozenset({22, 23}), "PORTS")


def test_statements_after_a_residual_statement_are_kept_in_its_source():
    node = run("""
        def rule(event):
            if not event.udm("source_ip"):
                return False
            for x in event.udm("list"):
                pass
            return True
        """)
    residual = residuals(node)[0]
    assert residual.source.splitlines()[0] == 'for x in event.udm("list"):'
    assert residual.source.splitlines()[-1] == "return True"


def test_strict_extraction_raises_at_the_first_residual(tmp_path):
    from flowwarden.errors import ExtractionError

    (tmp_path / "r.yml").write_text("AnalysisType: rule\nFilename: r.py\nRuleID: R\n"
                                    "Enabled: true\nLogTypes: [AWS.VPCFlow]\nSeverity: Low\n")
    (tmp_path / "r.py").write_text("def rule(event):\n    return helper(event)\n")
    rule = load_pack([tmp_path]).rule("R")
    assert extract_rule(rule).status == "none"
    with pytest.raises(ExtractionError) as info:
        extract_rule(rule, strict=True)
    assert str(info.value) == f"{tmp_path / 'r.py'}:2:12: R: cannot express call to helper()"


def test_doctests():
    for module in (extract, rewrite, scope):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


def test_a_residual_inside_an_unrolled_loop_has_the_loops_own_statements():
    """The synthetic end of an unrolled iteration is no statement of the rule: a residual
    there spans the real statements only (it raised on panther-analysis's
    GCP.Compute.SSHConnection)."""
    result = run('''
        PORTS = [22, 2222]
        def rule(event):
            for port in PORTS:
                if event.get("dstPort") == port:
                    return True
                global SEEN
            return False
    ''')
    found = residuals(result)
    assert found and all("global SEEN" in r.source for r in found)


def test_an_imported_constant_is_one_only_when_it_cannot_change_in_place():
    # sys.builtin_module_names is a tuple of str; sys.path is a list any module may change
    found = run("""
        from sys import builtin_module_names, path

        def rule(event):
            return event.get("m") in builtin_module_names or event.get("p") in path
        """)
    assert "in(event.m, builtin_module_names=" in str(found), found
    [left] = residuals(found)
    assert "path" in left.source, found
