from __future__ import annotations

import pytest

from flowwarden.rules.datamodel import DataModel, FieldMapping
from flowwarden.rules.event import PantherEvent
from flowwarden.rules.immutable import ImmutableDict, ImmutableList

RECORD = {
    "dstAddr": "10.0.0.1",
    "nested": {"a": {"b": 0}, "list": [{"ip": "1.1.1.1"}, {"ip": "2.2.2.2"}, {"ip": "1.1.1.1"}]},
    "empty": None,
    "dst_endpoint": {"ip": "10.9.9.9", "port": 22},
}


def test_get_and_missing_key():
    event = PantherEvent(RECORD)
    assert event.get("dstAddr") == "10.0.0.1"
    assert event.get("nope") is None
    assert event.get("nope", "x") == "x"


def test_deep_get_defaults_on_missing_none_and_non_mapping():
    event = PantherEvent(RECORD)
    assert event.deep_get("nested", "a", "b") == 0
    assert event.deep_get("nested", "missing", default="d") == "d"
    assert event.deep_get("empty", default="d") == "d"
    assert event.deep_get("dstAddr", "x", default=5) == 5


def test_deep_walk_collects_distinct_values_through_lists():
    event = PantherEvent(RECORD)
    assert event.deep_walk("nested", "list", "ip") == ["1.1.1.1", "2.2.2.2"]
    assert event.deep_walk("nested", "list", "ip", return_val="first") == "1.1.1.1"
    assert event.deep_walk("nested", "list", "ip", return_val="last") == "2.2.2.2"
    assert event.deep_walk("nested", "list", "nope", default="none") == "none"
    assert event.deep_walk("nested", "a", "b") == 0


def test_event_is_read_only_all_the_way_down():
    event = PantherEvent(RECORD)
    with pytest.raises(TypeError):
        event["dstAddr"] = "x"  # type: ignore[index]
    nested = event["nested"]
    assert isinstance(nested, ImmutableDict)
    assert isinstance(nested["list"], ImmutableList)
    with pytest.raises(TypeError):
        nested["list"][0]["ip"] = "x"
    assert nested["list"][0] == {"ip": "1.1.1.1"}
    assert nested["list"] == [{"ip": "1.1.1.1"}, {"ip": "2.2.2.2"}, {"ip": "1.1.1.1"}]


class _Methods:
    @staticmethod
    def get_pair(event):
        return f"{event.get('dstAddr')}!"


MODEL = DataModel(
    "Test.Model",
    ("Test.Log",),
    {
        "destination_ip": FieldMapping("destination_ip", path="dstAddr"),
        "ocsf_ip": FieldMapping("ocsf_ip", path="$.dst_endpoint.ip"),
        "ocsf_port": FieldMapping("ocsf_port", path="$['dst_endpoint'].port"),
        "all_ips": FieldMapping("all_ips", path="$.nested.list[*].ip"),
        "first_ip": FieldMapping("first_ip", path="$.nested.list[1].ip"),
        "pair": FieldMapping("pair", method="get_pair"),
        "absent": FieldMapping("absent", path="noSuchKey"),
    },
    "test.yml",
    module=_Methods,  # type: ignore[arg-type]
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("destination_ip", "10.0.0.1"),
        ("ocsf_ip", "10.9.9.9"),
        ("ocsf_port", 22),
        ("all_ips", ["1.1.1.1", "2.2.2.2", "1.1.1.1"]),
        ("first_ip", "2.2.2.2"),
        ("pair", "10.0.0.1!"),
        ("absent", None),
        ("dstAddr", "10.0.0.1"),  # not mapped: falls back to the raw key
        ("unknown", None),
    ],
)
def test_udm_resolution(name, expected):
    assert PantherEvent(RECORD, MODEL).udm(name) == expected


def test_udm_default_and_multi_key_fallback():
    event = PantherEvent(RECORD, MODEL)
    assert event.udm("absent", default="dflt") == "dflt"
    assert event.udm("nested", "a", "b") == 0


def test_udm_without_data_model_reads_raw_keys():
    assert PantherEvent(RECORD).udm("dstAddr") == "10.0.0.1"
    assert PantherEvent(RECORD).udm("destination_ip") is None
