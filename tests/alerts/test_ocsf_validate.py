from __future__ import annotations

import copy
import json

import pytest

from tests.alerts.ocsf_validate import OcsfSchema, assert_valid, validate
from tests.conftest import REPO, SHARED_SAMPLES

SCHEMA_PATH = REPO.parent / "shared" / "reference" / "ocsf" / "ocsf-1.1.0.json"


@pytest.fixture(scope="module")
def schema():
    return OcsfSchema.load(SCHEMA_PATH)


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


def test_a_complete_finding_is_valid(schema):
    assert validate(GOOD, schema) == []
    assert_valid(GOOD, schema)


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"time": ...}, "time: required attribute missing", id="missing-time"),
    pytest.param({"finding_info__uid": ...}, "finding_info.uid: required attribute missing",
                 id="missing-nested"),
    pytest.param({"metadata__product__vendor_name": None},
                 "metadata.product.vendor_name: required attribute missing", id="null-is-missing"),
    pytest.param({"evidences__0__connection_info__direction_id": ...},
                 "evidences[0].connection_info.direction_id: required attribute missing",
                 id="missing-in-array-item"),
    pytest.param({"cloud": ...}, "cloud: required attribute missing", id="missing-profile-attr"),
])
def test_missing_required_attributes_are_reported(schema, changes, expected):
    assert expected in validate(broken(**changes), schema)


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"severity_id": 7}, "severity_id: 7 is not a defined enum value", id="severity"),
    pytest.param({"finding_info__analytic__type_id": 5},
                 "finding_info.analytic.type_id: 5 is not a defined enum value", id="nested"),
    pytest.param({"class_uid": 2004, "category_uid": 4},
                 "category_uid: 4 is not a defined enum value", id="category"),
])
def test_bad_enum_values_are_reported(schema, changes, expected):
    problems = validate(broken(**changes), schema)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"time": "2024-05-01T12:00:00Z"}, "time: expected timestamp_t -> long_t",
                 id="timestamp-as-string"),
    pytest.param({"severity_id": "4"}, "severity_id: expected integer_t", id="int-as-string"),
    pytest.param({"count": True}, "count: expected integer_t, got boolean", id="bool-is-not-int"),
    pytest.param({"count": 2**40}, "count: 1099511627776 is outside integer_t's range",
                 id="int32-range"),
    pytest.param({"message": 12}, "message: expected string_t", id="string"),
    pytest.param({"finding_info__types": "Initial Access"},
                 "finding_info.types: expected an array, got str", id="array"),
    pytest.param({"cloud": "AWS"}, "cloud: expected object 'cloud', got str", id="object"),
    pytest.param({"unmapped": [1]}, "unmapped: expected an object, got array", id="free-object"),
    pytest.param({"evidences__0__src_endpoint__port": 70000},
                 "evidences[0].src_endpoint.port: 70000 is outside port_t's range", id="port"),
    pytest.param({"evidences__0__src_endpoint__ip": "not-an-ip"},
                 "evidences[0].src_endpoint.ip: 'not-an-ip' is not a valid ip_t", id="ip"),
])
def test_wrong_types_are_reported(schema, changes, expected):
    problems = validate(broken(**changes), schema)
    assert any(p.startswith(expected) for p in problems), problems


def test_unknown_attributes_are_reported(schema):
    problems = validate(broken(colour="red", finding_info__shape="round"), schema)
    assert "colour: unknown attribute" in problems
    assert "finding_info.shape: unknown attribute" in problems


def test_profile_attributes_need_their_profile(schema):
    event = broken(metadata__profiles=[])
    problems = validate(event, schema)
    assert any(p.startswith("cloud: attribute of profile 'cloud'") for p in problems)
    without_cloud = broken(metadata__profiles=[], cloud=...)
    assert validate(without_cloud, schema) == []


def test_constraints_and_class_rules(schema):
    problems = validate(broken(finding_info__analytic={"type_id": 1}, type_uid=200402), schema)
    assert "finding_info.analytic: needs at least one of name, uid" in problems
    assert any(p.startswith("type_uid: 200402 is not class_uid * 100") for p in problems)
    assert validate({"class_uid": 9999}, schema) == ["class_uid: unknown class 9999"]
    with pytest.raises(ValueError, match="unknown attribute"):
        assert_valid(broken(colour="red"), schema)


def test_aws_vpc_samples_are_valid_network_activity_but_for_the_endpoint_constraint(schema):
    lines = (SHARED_SAMPLES / "ocsf" / "vpcflow_ocsf_1.1.0.jsonl").read_text().splitlines()
    for line in lines:
        event = json.loads(line)
        assert validate(event, schema, constraints=False) == []
        assert all("needs at least one of name, uid" in p for p in validate(event, schema))
