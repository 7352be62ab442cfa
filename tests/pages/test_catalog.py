from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowwarden.pages import build_catalog
from flowwarden.pages.catalog import TACTIC_ORDER, rule_file


@pytest.fixture(scope="module")
def site(default_pack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = build_catalog(default_pack, tmp_path_factory.mktemp("site"))
    assert index.name == "index.html"
    return index.parent


def test_site_layout(site: Path, default_pack):
    assert (site / "assets" / "pages.css").is_file()
    assert (site / "assets" / "catalog.js").is_file()
    pages = sorted(p.name for p in (site / "rules").iterdir())
    assert pages == sorted(rule_file(r.id) for r in default_pack.rules)


def test_index_rows_carry_their_facets(site: Path):
    html = (site / "index.html").read_text()
    rows = re.findall(r'<tr class="rule-row"[^>]*>', html)
    assert len(rows) == 8
    dns = next(r for r in rows if "UnapprovedOutboundDNS" in r)
    assert 'data-severity="Medium"' in dns
    assert 'data-log-type="AWS.VPCFlow|OCSF.NetworkActivity"' in dns
    assert 'data-tactic="Command and Control"' in dns
    assert 'data-enabled="enabled"' in dns  # Enabled: false, but the configuration enables it


def test_rule_page_has_the_explanation(site: Path):
    html = (site / "rules" / "AWS.VPC.UnapprovedOutboundDNS.html").read_text()
    assert "not is_global(source_ip or &quot;0.0.0.0/32&quot;)" in html
    assert 'href="../assets/pages.css"' in html and 'src="../assets/catalog.js"' in html


def test_attack_matrix_columns_and_cells(site: Path):
    html = (site / "attack.html").read_text()
    assert len(re.findall(r'<th scope="col" class="(covered|empty)">', html)) == len(TACTIC_ORDER)
    cell = re.search(r'<td class="covered" data-tactic="TA0011" data-techniques="3">(.*?)</td>',
                     html, re.S)
    assert cell is not None
    assert "T1071" in cell.group(1) and "AWS.VPC.UnapprovedOutboundDNS" in cell.group(1)
    assert "T1571" in cell.group(1) and "AWS.VPC.InboundPortWhitelist" in cell.group(1)
    assert 'data-tactic="TA0040" data-techniques="0"' in html


def test_no_page_loads_anything_from_the_network(site: Path):
    for page in site.rglob("*.html"):
        html = page.read_text()
        loads = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', html)
        assert all(url == "data:," or not re.match(r"[a-z]+:", url) for url in loads), loads


def test_rule_file_names_are_safe():
    assert rule_file("AWS.VPC.PortScan") == "AWS.VPC.PortScan.html"
    assert "/" not in rule_file("../../etc/passwd")
    assert rule_file("a/b") != rule_file("a_b")


def test_catalog_checks_summary_attributes_as_check_does(site: Path):
    # The built-in rules name `srcaddr` for `srcAddr`: Panther matches any case, and so does
    # `flowwarden check`; the catalog must not warn where check is silent.
    for page in (site / "rules").iterdir():
        html = page.read_text()
        assert "did you mean" not in html and "not a column of AWS.VPCFlow" not in html, page
