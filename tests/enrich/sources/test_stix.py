import json

import pytest
import stix2

from flowwarden.enrich.sources import SOURCE_KINDS, LookupSourceError
from flowwarden.enrich.sources.stix import UnsupportedPattern, parse_pattern
from tests.enrich.sources.helpers import rows, write


def indicator(number, pattern, **more):
    found = {"type": "indicator", "spec_version": "2.1",
             "id": f"indicator--00000000-0000-4000-8000-{number:012d}",
             "created": "2024-03-01T00:00:00.000Z", "modified": "2024-03-01T00:00:00.000Z",
             "pattern": pattern, "pattern_type": "stix", "valid_from": "2024-03-01T00:00:00Z"}
    found.update(more)
    return found


def bundle(*objects):
    return json.dumps({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000",
                       "objects": list(objects)}, indent=2)


def load(tmp_path, text, **options):
    return SOURCE_KINDS["stix"](write(tmp_path, "bundle.json", text), options)


def test_address_indicators_become_rows_keyed_by_network(tmp_path):
    lookup = load(tmp_path, bundle(
        indicator(1, "[ipv4-addr:value = '198.51.100.7']", name="C2", confidence=80,
                  indicator_types=["malicious-activity"], labels=["apt"],
                  valid_until="2025-01-01T00:00:00Z", description="seen beaconing"),
        indicator(2, "[ipv4-addr:value = '203.0.113.0/24' OR ipv6-addr:value = '2001:db8::/32']",
                  name="scanners"),
        indicator(3, "[ipv4-addr:value = '192.0.2.1'] OR [ipv4-addr:value = '192.0.2.2']"),
        {"type": "identity", "id": "identity--1", "name": "not an indicator"},
    ), name="intel")
    first, wide, v6, either, other = rows(
        lookup, "198.51.100.7", "203.0.113.9", "2001:db8::5", "192.0.2.2", "192.0.2.3")
    assert first == {"indicator": "198.51.100.7",
                     "id": "indicator--00000000-0000-4000-8000-000000000001", "name": "C2",
                     "description": "seen beaconing", "confidence": 80, "labels": ["apt"],
                     "indicator_types": ["malicious-activity"],
                     "valid_from": "2024-03-01T00:00:00Z", "valid_until": "2025-01-01T00:00:00Z",
                     "pattern": "[ipv4-addr:value = '198.51.100.7']"}
    assert (wide["indicator"], wide["name"], v6["indicator"]) == (
        "203.0.113.0/24", "scanners", "2001:db8::/32")
    assert either["id"].endswith("000000000003") and other is None
    assert lookup.name == "intel" and lookup.problems.count == 0


def test_patterns_it_cannot_read_are_counted_with_the_indicators_id(tmp_path):
    lookup = load(tmp_path, bundle(
        indicator(1, "[ipv4-addr:value = '198.51.100.7' AND ipv4-addr:value = '198.51.100.8']"),
        indicator(2, "[domain-name:value = 'evil.example']"),
        indicator(3, "[ipv4-addr:value != '10.0.0.1']"),
        indicator(4, "[ipv4-addr:value = '198.51.100.9'] WITHIN 300 SECONDS"),
        indicator(5, "alert tcp any any -> any any", pattern_type="snort"),
        indicator(6, "[ipv4-addr:value = '2001:db8::1']"),
        indicator(7, "[ipv4-addr:value = '198.51.100.10'"),
        indicator(8, "[ipv4-addr:value = '198.51.100.11']", revoked=True),
        indicator(9, "[ipv4-addr:value = '198.51.100.12']", confidence="very"),
    ))
    messages = [problem.message for problem in lookup.problems.shown]
    assert lookup.problems.count == 8
    assert messages[0].startswith("objects[0] indicator--00000000-0000-4000-8000-000000000001: "
                                  "unsupported pattern")
    assert "']' expected, 'AND' found" in messages[0]
    assert "object path 'domain-name:value'" in messages[1]
    assert "operator '!=' is not '='" in messages[2]
    assert "'OR' expected, 'WITHIN' found" in messages[3]
    assert "pattern type 'snort' is not read" in messages[4]
    assert "'2001:db8::1' is not an ipv4-addr value" in messages[5]
    assert "']' expected, the end found" in messages[6]
    assert "confidence 'very'" in messages[7]
    # nothing else matches; the revoked one is left out, the one with a bad confidence kept
    found = rows(lookup, "198.51.100.7", "198.51.100.9", "198.51.100.11", "198.51.100.12")
    assert found[:3] == [None, None, None]
    assert found[3]["confidence"] is None


def test_bundles_written_by_the_stix2_library_are_read(tmp_path):
    made = stix2.Bundle(
        stix2.Indicator(pattern="[ipv4-addr:value = '198.51.100.0/24']", pattern_type="stix",
                        name="bad range", confidence=60, indicator_types=["malicious-activity"]),
        stix2.Indicator(pattern="[ipv6-addr:value = '2001:db8:abcd::1']", pattern_type="stix",
                        confidence=95),
    )
    lookup = load(tmp_path, made.serialize(pretty=True))
    wide, host = rows(lookup, "198.51.100.200", "2001:db8:abcd::1")
    assert (wide["name"], wide["confidence"], wide["indicator_types"]) == (
        "bad range", 60, ["malicious-activity"])
    assert (host["indicator"], host["confidence"]) == ("2001:db8:abcd::1", 95)
    assert wide["valid_from"] is not None


def test_the_more_confident_indicator_wins_a_shared_network(tmp_path):
    lookup = load(tmp_path, bundle(indicator(1, "[ipv4-addr:value = '192.0.2.1']", confidence=30),
                                   indicator(2, "[ipv4-addr:value = '192.0.2.1/32']",
                                             confidence=70)))
    assert rows(lookup, "192.0.2.1")[0]["id"].endswith("000000000002")


def test_a_list_of_objects_or_one_indicator_is_read_too(tmp_path):
    one = indicator(1, "[ipv4-addr:value = '192.0.2.1']")
    assert rows(load(tmp_path, json.dumps([one])), "192.0.2.1")[0] is not None
    assert rows(load(tmp_path, json.dumps(one)), "192.0.2.1")[0] is not None
    with pytest.raises(LookupSourceError, match="not STIX"):
        load(tmp_path, json.dumps({"type": "malware"}))
    with pytest.raises(LookupSourceError, match="not JSON"):
        load(tmp_path, "{")


@pytest.mark.parametrize("text", ["", "  \n", bundle()])
def test_an_empty_file_is_an_empty_table(tmp_path, text):
    lookup = load(tmp_path, text)
    assert rows(lookup, "192.0.2.1") == [None]
    assert lookup.problems.count == 0


def test_quoted_values_may_escape_quotes_and_backslashes():
    assert parse_pattern(r"[ipv4-addr:value = '10.0.0.1']") == ["10.0.0.1"]
    with pytest.raises(UnsupportedPattern, match="is not an ipv4-addr value"):
        parse_pattern(r"[ipv4-addr:value = 'it\'s']")


@pytest.mark.parametrize("pattern, networks", [
    ("  [ ipv4-addr:value='192.0.2.1' ] ", ["192.0.2.1"]),
    ("[ipv4-addr:value = '192.0.2.1/32']", ["192.0.2.1"]),
    ("[ipv6-addr:value = '2001:DB8::/32']", ["2001:db8::/32"]),
    ("[ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value = '192.0.2.1/24']",
     ["192.0.2.1", "192.0.2.0/24"]),
])
def test_patterns_read_one_way_or_the_other_give_the_same_networks(pattern, networks):
    assert parse_pattern(pattern) == networks


@pytest.mark.parametrize("pattern", ["[ipv6-addr:value = '192.0.2.1']",
                                     "[ipv4-addr:value = '2001:db8::1']",
                                     "[ipv4-addr:value = '192.0.2.300']", "[]", ""])
def test_a_value_of_the_wrong_family_or_no_comparison_is_unsupported(pattern):
    with pytest.raises(UnsupportedPattern):
        parse_pattern(pattern)
