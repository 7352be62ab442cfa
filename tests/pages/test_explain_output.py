from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flowwarden.errors import UsageError
from flowwarden.logs.fields import FIELDS
from flowwarden.pages import FORMATS, render_explanation
from flowwarden.pages.explanation import explain_rule
from flowwarden.rules.loader import load_pack, resolve_pack_paths
from tests.pages.snapshot import assert_snapshot

SNAPSHOTS = Path(__file__).parent / "snapshots"
SUFFIX = {"text": "txt", "markdown": "md", "json": "json", "html": "html"}
SPEC_RULES = ("AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.InboundPortWhitelist")
# What the catalog pages of the project's specification show, copied from them: Condition
# lines, then Exclusions and Indicators rows as (field, kind, values in the page's order).
# The pages quote every constant; explain keeps their type (issue 17), so ports are numbers.
SPEC = {
    "AWS.VPC.UnapprovedOutboundDNS": {
        "conditions": ["not (destination_port ne 53 and destination_port ne 5353)",
                       "destination_ip is_not_null",
                       'destination_ip not in ["1.1.1.1", "8.8.8.8"]'],
        "exclusions": [("destination_port", "ne", (53,)), ("destination_port", "ne", (5353,)),
                       ("destination_ip", "in", ("1.1.1.1", "8.8.8.8"))],
        "indicators": [("destination_ip", "is_not_null", ())],
        "ip_class": ['not is_global(source_ip or "0.0.0.0/32")',
                     'not is_private(destination_ip or "192.168.0.1/32")'],
    },
    "AWS.VPC.InboundPortWhitelist": {
        "conditions": ["destination_port is_not_null", "destination_port not in [80, 443]"],
        "exclusions": [("destination_port", "in", (80, 443))],
        "indicators": [("destination_port", "is_not_null", ())],
        "ip_class": ['is_global(source_ip or "0.0.0.0/32")',
                     'not is_global(destination_ip or "1.0.0.0/32")'],
    },
}
CLOUDTRAIL_FIELDS = ("eventName", "eventSource", "awsRegion", "recipientAccountId",
                     "sourceIPAddress", "userAgent", "userIdentity")


def _in_order(wanted: list, found: list) -> bool:
    """Every wanted item appears in `found`, in the same relative order."""
    position = 0
    for item in wanted:
        try:
            position = found.index(item, position) + 1
        except ValueError:
            return False
    return True


@pytest.mark.parametrize("rule_id", SPEC_RULES)
def test_explain_shows_everything_the_spec_page_shows(default_pack, rule_id: str):
    data = json.loads(render_explanation(default_pack, rule_id, "json"))
    spec = SPEC[rule_id]
    texts = [c["text"] for c in data["conditions"]]
    for wanted in spec["conditions"]:
        assert any(t == wanted or t.startswith(wanted + " ") for t in texts), wanted
    for wanted in spec["ip_class"]:
        assert wanted in texts
    exclusions = [(e["field"], e["kind"], tuple(e["values"])) for e in data["exclusions"]]
    assert _in_order(spec["exclusions"], exclusions)
    indicators = [(i["field"], i["kind"], tuple(i["values"])) for i in data["indicators"]]
    assert _in_order(spec["indicators"], indicators)


@pytest.mark.parametrize("rule_id", SPEC_RULES)
def test_output_fields_are_flow_fields_not_cloudtrail(default_pack, rule_id: str):
    data = json.loads(render_explanation(default_pack, rule_id, "json"))
    vpc = data["output_fields"]["AWS.VPCFlow"]
    assert vpc["found_by"] == "matching tests"
    names = [f["name"] for f in vpc["fields"]]
    assert {"source_ip", "destination_port", "action", "account_id"} <= set(names)
    assert not set(CLOUDTRAIL_FIELDS) & set(names)
    columns = {f.panther for f in FIELDS}
    assert all(f["column"] in columns for f in vpc["fields"])
    ocsf = {f["name"]: f["column"] for f in data["output_fields"]["OCSF.NetworkActivity"]["fields"]}
    assert ocsf["destination_ip"] == "dst_endpoint.ip"


def test_summary_attributes_are_checked_against_the_schema(default_pack):
    text = render_explanation(default_pack, "AWS.VPC.UnapprovedOutboundDNS", "text")
    # The spec page's srcaddr is srcAddr: Panther matches field names in any case
    assert "srcaddr    AWS.VPCFlow           ok" in text
    # An event field of one of the rule's log types is fine: Panther shows it for those events
    assert "srcaddr    OCSF.NetworkActivity  ok: AWS.VPCFlow only" in text
    checks = explain_rule(default_pack, "AWS.VPC.InboundAdminPort").summary_checks
    assert all(c.found for c in checks if c.log_type == "AWS.VPCFlow")


@pytest.mark.parametrize("pack_name", ["default", "tuned"])
def test_builtin_rules_have_no_summary_attribute_warning(pack_name: str):
    pack = load_pack(resolve_pack_paths([pack_name]))
    for rule in pack.rules:
        checks = explain_rule(pack, rule.id).summary_checks
        assert checks and not [c.message for c in checks if c.problem], rule.id
        text = render_explanation(pack, rule.id, "text")
        assert "did you mean" not in text and "not a column of AWS.VPCFlow" not in text, rule.id


def test_mitre_names_and_reasons_and_settings(default_pack):
    text = render_explanation(default_pack, "AWS.VPC.UnapprovedOutboundDNS", "text")
    assert "TA0011 Command and Control  T1071 Application Layer Protocol" in text
    assert "# Only monitor traffic that is originating internally" in text
    assert "constants: APPROVED_DNS_SERVERS (flowwarden.yaml approved_dns_servers)" in text


def test_corpus_counts_other_rules_with_the_same_indicator(default_pack):
    indicators = explain_rule(default_pack, "AWS.VPC.UnapprovedOutboundDNS").indicators
    assert [(i.test.field, i.test.kind, i.corpus) for i in indicators] == [
        # InboundAdminPort, PortScan and SSHAcceptedFromInternet require a destination address.
        ("destination_ip", "is_not_null", 3)]
    skip = explain_rule(default_pack, "AWS.VPC.SkipDataLogStatus").indicators
    assert [(i.test.kind, i.test.values, i.corpus) for i in skip] == [("eq", ("SKIPDATA",), 0)]


def test_unknown_rule_and_format_are_usage_errors(default_pack):
    with pytest.raises(UsageError, match="no rule with id 'Nope' is loaded"):
        render_explanation(default_pack, "Nope", "text")
    with pytest.raises(UsageError, match="unknown format 'yaml'"):
        render_explanation(default_pack, "AWS.VPC.PortScan", "yaml")


RULE_WITH_RESIDUAL = '''
from flowwarden_flow_helpers import flow_context

BIG = 1000000


def rule(event):
    # Only accepted flows matter here
    if event.udm("action") != "ACCEPT":
        return False
    # Large transfers: the byte count is summed, which the extractor cannot express
    total = sum([event.udm("bytes") or 0, 0])
    return total > BIG


def title(event):
    return "<b>big</b> transfer"


def alert_context(event):
    return flow_context(event)
'''
RULE_YAML = '''AnalysisType: rule
Filename: big_transfer.py
RuleID: "Custom.BigTransfer<script>"
DisplayName: "Big <script>alert(1)</script> transfer"
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Low
Description: "Transfers over 1 MB | exfiltration"
Reference: "javascript:alert(1)"
Reports: {MITRE ATT&CK: ["TA0010:T1048"]}
SummaryAttributes: [bytes, nosuchfield]
Tests:
  - Name: big
    ExpectedResult: true
    Log: {"action": "ACCEPT", "bytes": 5000000, "srcAddr": "10.0.0.1", "p_log_type": "AWS.VPCFlow"}
'''


def written_pack(tmp_path_factory: pytest.TempPathFactory, name: str, files: dict[str, str]):
    """A pack of one rule written from ``files`` (file name: text), loaded without problems."""
    root = tmp_path_factory.mktemp(name)
    for file_name, text in files.items():
        (root / file_name).write_text(text)
    pack = load_pack([root])
    assert not pack.problems, pack.problems
    return pack


@pytest.fixture(scope="module")
def custom_pack(tmp_path_factory: pytest.TempPathFactory):
    return written_pack(tmp_path_factory, "custom_rules",
                        {"big_transfer.py": RULE_WITH_RESIDUAL, "big_transfer.yml": RULE_YAML})


def test_residual_python_is_shown_as_code(custom_pack):
    text = render_explanation(custom_pack, "Custom.BigTransfer<script>", "text")
    assert "Detection logic (extracted: partial)" in text
    assert 'action eq "ACCEPT"' in text
    assert "# Only accepted flows matter here" in text
    assert "Residual Python (evaluated per event)" in text
    # The local `total` is read where it is used: only the sum() it holds is left to Python,
    # inside the comparison the rule makes.
    assert '<python: sum([event.udm("bytes") or 0, 0])> gt 1000000' in text
    assert '      sum([event.udm("bytes") or 0, 0])' in text
    assert "bytes        AWS.VPCFlow  ok" in text
    assert "nosuchfield  AWS.VPCFlow  not a column of AWS.VPCFlow" in text
    assert "T1048 Exfiltration Over Alternative Protocol" in text


def test_html_escapes_rule_metadata(custom_pack):
    html = render_explanation(custom_pack, "Custom.BigTransfer<script>", "html")
    assert "<script>alert(1)" not in html
    assert "Big &lt;script&gt;alert(1)&lt;/script&gt; transfer" in html
    assert "Custom.BigTransfer&lt;script&gt;" in html
    assert 'href="javascript:' not in html  # only http(s) references become links


def test_markdown_escapes_table_cells(custom_pack):
    md = render_explanation(custom_pack, "Custom.BigTransfer<script>", "markdown")
    assert "Transfers over 1 MB \\| exfiltration" in md
    assert "```python\nsum(" in md


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rule_id", SPEC_RULES + ("AWS.VPC.PortScan",))
def test_explain_snapshot(default_pack, rule_id: str, fmt: str):
    output = render_explanation(default_pack, rule_id, fmt)
    if fmt == "html":  # the page pins the explanation; the stylesheet may change on its own
        output = re.sub(r"<style>.*?</style>", "<style>/* pages.css */</style>", output, flags=re.S)
    assert_snapshot(output, SNAPSHOTS / f"{rule_id}.{SUFFIX[fmt]}")


def test_json_values_keep_numbers_and_strings_apart(default_pack):
    data = json.loads(render_explanation(default_pack, "AWS.VPC.UnapprovedOutboundDNS", "json"))
    values = [(e["field"], e["kind"], e["values"]) for e in data["exclusions"]]
    assert ("destination_port", "ne", [53]) in values
    assert ("destination_port", "ne", [5353]) in values
    assert ("destination_ip", "in", ["1.1.1.1", "8.8.8.8"]) in values
    text = render_explanation(default_pack, "AWS.VPC.UnapprovedOutboundDNS", "text")
    assert "not (destination_port ne 53 and destination_port ne 5353)" in text
    assert 'destination_ip not in ["1.1.1.1", "8.8.8.8"]' in text


MARKUP_RULE = '''
def rule(event):
    # Accepted flows **only**, see <b>notes</b>
    #
    # [the runbook](javascript:alert(1))
    return event.udm("action") == "ACCEPT"
'''
MARKUP_YAML = '''AnalysisType: rule
Filename: markup.py
RuleID: Custom.Markup
DisplayName: "_Loud_ <img src=x onerror=alert(1)> title"
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Low
Description: "# not a heading, **not bold**, [not a link](javascript:alert(1))"
Runbook: "- not a list item"
'''


@pytest.fixture(scope="module")
def markup_pack(tmp_path_factory: pytest.TempPathFactory):
    return written_pack(tmp_path_factory, "markup_rules",
                        {"markup.py": MARKUP_RULE, "markup.yml": MARKUP_YAML})


def test_markdown_escapes_markup_from_rule_metadata_and_comments(markup_pack):
    md = render_explanation(markup_pack, "Custom.Markup", "markdown")
    assert "# \\_Loud\\_ \\<img src=x onerror=alert(1)\\> title" in md
    assert "\\# not a heading, \\*\\*not bold\\*\\*, \\[not a link\\](javascript:alert(1))" in md
    assert "\\- not a list item" in md
    assert "_Accepted flows \\*\\*only\\*\\*, see \\<b\\>notes\\</b\\>_" in md
    assert "_\\[the runbook\\](javascript:alert(1))_" in md
    # no markup character is left unescaped (the fenced residual code is the rule's source)
    assert not re.search(r"(?<!\\)[<\[*]", md.split("```")[0])


def test_blank_comment_lines_do_not_render_as_empty_emphasis(markup_pack):
    md = render_explanation(markup_pack, "Custom.Markup", "markdown")
    assert "__" not in md.replace("\\_", "")


CONTEXT_RULE = '''
def rule(event):
    return True


def alert_context(event):
    return {"destination_ip": event.udm("destination_ip"), "source_ip": event.get("srcAddr")}
'''
CONTEXT_YAML = '''AnalysisType: rule
Filename: context.py
RuleID: Custom.Context
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Low
Tests:
  - Name: any
    ExpectedResult: true
    Log: {"srcAddr": "10.0.0.1", "dstAddr": "10.0.0.2", "p_log_type": "AWS.VPCFlow"}
'''


def test_output_fields_are_attributed_to_the_data_model_only_when_read_through_it(
        tmp_path: Path):
    (tmp_path / "context.py").write_text(CONTEXT_RULE)
    (tmp_path / "context.yml").write_text(CONTEXT_YAML)
    data_models = Path(resolve_pack_paths([])[0]) / "data_models"
    pack = load_pack([tmp_path, data_models])
    assert "AWS.VPCFlow" in pack.data_models
    fields = {f.name: f.column for f in explain_rule(pack, "Custom.Context").output_fields[0].fields}
    # `source_ip` is named like a data-model field but read with event.get(): no attribution.
    assert fields == {"destination_ip": "dstAddr", "source_ip": None}
    text = render_explanation(pack, "Custom.Context", "text")
    assert "source_ip       (not read through the data model)" in text


def test_blank_comment_lines_stay_bare_in_text(markup_pack):
    text = render_explanation(markup_pack, "Custom.Markup", "text")
    assert "      # Accepted flows **only**, see <b>notes</b>\n      #\n      # [the" in text
