"""The OCSF JSON Schema (tests/alerts/ocsf_jsonschema.py) catches what a consumer relies on."""

from __future__ import annotations

import copy
import doctest
import json

import pytest
from jsonschema import Draft202012Validator

from tests.alerts import ocsf_jsonschema
from tests.alerts.ocsf_jsonschema import Problem, assert_valid, json_schema, validate
from tests.conftest import SAMPLES


def found(event) -> set[tuple[str, str]]:
    """Where the event breaks the schema and which keyword it breaks."""
    return {(p.path, p.keyword) for p in validate(event)}


GOOD = {
    "class_uid": 2004, "category_uid": 2, "activity_id": 1, "type_uid": 200401,
    "severity_id": 4, "severity": "High", "time": 1714564800000, "count": 3,
    "metadata": {"version": "1.1.0", "profiles": ["cloud"],
                 "product": {"name": "flowwarden", "vendor_name": "flowwarden"}},
    "cloud": {"provider": "AWS", "region": "us-east-1", "account": {"uid": "123456789012"}},
    "finding_info": {
        "uid": "abc", "title": "SSH from the internet",
        "analytic": {"uid": "AWS.VPC.SSH", "type_id": 1, "type": "Rule"},
        "attacks": [{"tactic": {"uid": "TA0001", "name": "Initial Access"},
                     "technique": {"uid": "T1133"}}],
        "types": ["Initial Access"],
    },
    "evidences": [{"src_endpoint": {"name": "45.33.32.156", "ip": "45.33.32.156", "port": 4000},
                   "connection_info": {"direction_id": 1, "protocol_num": 6}}],
    "unmapped": {"anything": {"goes": [1, 2]}},
}


def broken(**changes):
    """GOOD with dotted paths set (a value of ... deletes the attribute)."""
    event = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = event
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return event


def test_a_complete_finding_is_valid():
    assert validate(GOOD) == []
    assert_valid(GOOD)


def test_the_schemas_are_valid_draft_2020_12_documents():
    for profiles in (frozenset(), frozenset({"cloud"}), frozenset({"cloud", "datetime"})):
        schema = json_schema(profiles)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)
        assert Draft202012Validator(schema).is_valid(GOOD) == (profiles == {"cloud"})


@pytest.mark.parametrize("changes", [
    pytest.param({"time": ...}, id="missing-time"),
    pytest.param({"finding_info__uid": ...}, id="missing-nested"),
    pytest.param({"metadata__product__vendor_name": None}, id="null-is-missing"),
    pytest.param({"evidences__0__connection_info__direction_id": ...}, id="missing-in-array-item"),
    pytest.param({"cloud": ...}, id="missing-profile-attr"),
])
def test_missing_required_attributes_are_reported(changes):
    (dotted,) = changes
    where = dotted.replace("__0__", "[0].").replace("__", ".")
    assert validate(broken(**changes)) == [
        Problem(where, "required", "required attribute missing")]


@pytest.mark.parametrize(("changes", "where"), [
    pytest.param({"severity_id": 7}, "severity_id", id="severity"),
    pytest.param({"finding_info__analytic__type_id": 5}, "finding_info.analytic.type_id",
                 id="nested"),
    pytest.param({"category_uid": 4}, "category_uid", id="category"),
    pytest.param({"evidences__0__connection_info__direction_id": 5},
                 "evidences[0].connection_info.direction_id", id="in-array-item"),
])
def test_bad_enum_values_are_reported(changes, where):
    assert found(broken(**changes)) == {(where, "enum")}


@pytest.mark.parametrize(("changes", "where", "keyword"), [
    pytest.param({"time": "2024-05-01T12:00:00Z"}, "time", "type", id="timestamp-as-string"),
    pytest.param({"time": 2**63}, "time", "maximum", id="timestamp-int64-range"),
    pytest.param({"severity_id": "4"}, "severity_id", "type", id="int-as-string"),
    pytest.param({"count": True}, "count", "type", id="bool-is-not-int"),
    pytest.param({"count": 2**40}, "count", "maximum", id="int32-range"),
    pytest.param({"message": 12}, "message", "type", id="string"),
    pytest.param({"finding_info__types": "Initial Access"}, "finding_info.types", "type",
                 id="array"),
    pytest.param({"finding_info__types": [1]}, "finding_info.types[0]", "type",
                 id="array-item"),
    pytest.param({"cloud": "AWS"}, "cloud", "type", id="object"),
    pytest.param({"unmapped": [1]}, "unmapped", "type", id="free-object"),
    pytest.param({"evidences__0__src_endpoint__port": 70000}, "evidences[0].src_endpoint.port",
                 "maximum", id="port"),
    pytest.param({"evidences__0__src_endpoint__ip": "not-an-ip"},
                 "evidences[0].src_endpoint.ip", "pattern", id="ip"),
    pytest.param({"evidences__0__src_endpoint__ip": "10.0.0." + "1" * 40},
                 "evidences[0].src_endpoint.ip", "maxLength", id="ip-length"),
])
def test_wrong_types_are_reported(changes, where, keyword):
    assert (where, keyword) in found(broken(**changes))


def test_null_optional_attributes_count_as_absent():
    assert validate(broken(message=None, count=None, finding_info__types=None,
                           evidences__0__src_endpoint__ip=None)) == []


def test_unknown_attributes_are_reported():
    assert [str(p) for p in validate(broken(colour="red", finding_info__shape="round"))] == [
        "colour: unknown attribute", "finding_info.shape: unknown attribute"]


def test_profile_attributes_need_their_profile():
    problems = validate(broken(metadata__profiles=[]))
    assert [str(p) for p in problems] == [
        "cloud: attribute of profile 'cloud', which metadata.profiles does not declare"]
    assert validate(broken(metadata__profiles=[], cloud=...)) == []
    # Nested objects' profile attributes too: finding_info.created_time_dt is the datetime
    # profile's.
    dated = broken(finding_info__created_time_dt="2024-05-01T12:00:00Z")
    assert found(dated) == {("finding_info.created_time_dt", "type")}
    dated["metadata"]["profiles"].append("datetime")
    assert validate(dated) == []
    dated["finding_info"]["created_time_dt"] = "yesterday"
    assert found(dated) == {("finding_info.created_time_dt", "pattern")}


def test_constraints_and_class_rules():
    problems = validate(broken(finding_info__analytic={"type_id": 1}, type_uid=200402))
    assert [str(p) for p in problems] == [
        "finding_info.analytic: needs at least one of name, uid",
        "type_uid: not class_uid * 100 + activity_id (200401)"]
    assert [str(p) for p in validate(broken(metadata__version="1.0.0"))] == [
        "metadata.version: not the schema's version, 1.1.0"]
    assert [str(p) for p in validate({"class_uid": 9999})] == [
        "class_uid: unknown class (not one of 2004, 4001)"]
    with pytest.raises(ValueError, match="unknown attribute"):
        assert_valid(broken(colour="red"))


def test_aws_vpc_samples_are_valid_network_activity_but_for_the_endpoint_constraint():
    lines = (SAMPLES / "ocsf" / "vpcflow_ocsf_1.1.0.jsonl").read_text().splitlines()
    assert len(lines) == 17
    for line in lines:
        event = json.loads(line)
        assert event["class_uid"] == 4001
        assert validate(event, constraints=False) == []
        problems = validate(event)
        assert problems and all(p.message == "needs at least one of name, uid" for p in problems)


def test_doctests():
    assert doctest.testmod(ocsf_jsonschema).failed == 0
