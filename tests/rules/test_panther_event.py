"""The event behaves as Panther's (``panther_core``'s ``PantherEvent`` and immutable containers)
on the behaviours panther-analysis rules rely on."""

from __future__ import annotations

import abc
import sys
import types
from collections.abc import Mapping
from typing import Any

import pytest

from flowwarden.rules import immutable
from flowwarden.rules.datamodel import DataModel, FieldMapping
from flowwarden.rules.event import NoDataModelError, PantherEvent
from flowwarden.rules.immutable import ImmutableCaseInsensitiveDict, ImmutableList

RECORD = {
    "eventType": "user.session.start",
    "Actor": {"alternateId": "a@b.c", "Type": "User"},
    "dup": 1, "DUP": 2, "Dup": 3,
    "items": [{"id": "i-1", "tags": ["x", "y"]}, {"id": "i-2", "tags": ["y", "z"]}, {"x": 1}],
    "one": [{"id": "only"}],
    "direct": {"list": [1, 2], "empty": [[], []]},
    "none": None,
}


def test_keys_are_found_whatever_their_case_exact_first():
    event = PantherEvent(RECORD)
    assert event.get("eventtype") == "user.session.start"
    assert event["EVENTTYPE"] == "user.session.start"
    assert "actor" in event and "nope" not in event
    assert event.deep_get("actor", "alternateid") == "a@b.c"
    assert event["actor"]["type"] == "User"  # nested mappings too
    assert event.get("DUP") == 2  # the exact key
    assert event.get("dUp") == 1  # else the first in order
    assert event.get("nope", "d") == "d" and event.get(1, "d") == "d"
    with pytest.raises(KeyError):
        event["nope"]  # noqa: B018
    assert list(event) == list(RECORD)  # iteration keeps the keys as they are


def test_deep_get_is_panthers():
    event = PantherEvent(RECORD)
    assert event.deep_get("none", default="d") == "d"
    assert event.deep_get("eventType", "x", default="d") == "d"
    # a missing key continues with the default, as Panther's reduce over .get does
    assert event.deep_get("missing", "k", default={"k": 5}) == 5
    assert event["actor"].deep_get("TYPE") == "User"  # nested mappings have it too


@pytest.mark.parametrize(("keys", "kwargs", "expected"), [
    (("items", "id"), {}, ["i-1", "i-2"]),
    (("items", "id"), {"default": "?"}, ["i-1", "i-2", "?"]),  # an item without the key
    (("items", "tags"), {}, ["x", "y", "z"]),  # final lists flattened, duplicates dropped
    (("items", "tags"), {"return_val": "last"}, "z"),
    (("items", "id"), {"return_val": "first"}, "i-1"),
    (("items", "id"), {"return_val": "other"}, "all"),  # Panther's lookup gives the text
    (("one", "id"), {}, "only"),  # a single value is unwrapped
    (("direct", "list"), {"return_val": "first"}, [1, 2]),  # no list passed: whole value
    (("direct", "empty"), {"default": "d"}, "d"),  # only empty lists: the default
    (("Direct", "list"), {"default": "d"}, "d"),  # the raw record: exact keys
    (("items", "nope"), {}, None),
])
def test_deep_walk_is_panthers(keys, kwargs, expected):
    assert PantherEvent(RECORD).deep_walk(*keys, **kwargs) == expected


def test_deep_walk_returns_plain_mutable_copies():
    event = PantherEvent(RECORD)
    found = event.deep_walk("items", "id")
    assert type(found) is list
    whole = event.deep_walk("direct", "list")
    assert type(whole) is list
    whole.append(3)
    assert event.deep_walk("direct", "list") == [1, 2]  # the event did not change
    with pytest.raises(TypeError):  # mappings are unhashable in Panther's walk too
        PantherEvent({"a": [{"b": [{"c": 1}]}]}).deep_walk("a", "b")


def test_containers_copy_compare_and_print_as_panthers():
    event = PantherEvent({"l": [1, {"a": 2}], "d": {"k": [3]}})
    items = event["l"]
    assert isinstance(items, ImmutableList)
    copied = items.copy()
    assert copied == [1, {"a": 2}] and type(copied) is list and type(copied[1]) is dict
    copied[1]["a"] = 9
    assert event["l"][1]["a"] == 2
    assert items.as_list() == [1, {"a": 2}]
    assert items == [1, {"a": 2}] and items == (1, {"a": 2}) and items != {1}
    assert items[0:1] == (1,) and type(items[0:1]) is tuple
    assert repr(ImmutableList([1, 2])) == "ImmutableList((1, 2))"
    assert repr(event["d"]) == "ImmutableCaseInsensitiveDict({'k': [3]})"
    assert event["d"].copy() == {"k": [3]} and type(event["d"].to_dict()["k"]) is list
    assert event.copy() == {"l": [1, {"a": 2}], "d": {"k": [3]}}
    assert event.raw_view() is not None and event.raw_view()["d"] == {"k": [3]}
    with pytest.raises(TypeError):
        hash(items)


def _fake_panther_core(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A stand-in ``panther_core.immutable``: ABCs whose own ``register`` classmethod shadows
    the ABC's, as the real ones do."""

    class Base(abc.ABC):  # noqa: B024 - the real mixin's abstract methods do not matter here
        @classmethod
        def register(cls) -> None:  # type: ignore[override]
            raise AssertionError("flowwarden must not call Panther's own register()")

    fake = types.ModuleType("panther_core.immutable")
    fake.ImmutableList = type("ImmutableList", (Base,), {})  # type: ignore[attr-defined]
    fake.ImmutableCaseInsensitiveDict = type(  # type: ignore[attr-defined]
        "ImmutableCaseInsensitiveDict", (Base,), {})
    package = types.ModuleType("panther_core")
    package.immutable = fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "panther_core", package)
    monkeypatch.setitem(sys.modules, "panther_core.immutable", fake)
    return fake


def test_isinstance_against_panther_core_classes(monkeypatch):
    fake = _fake_panther_core(monkeypatch)
    event = PantherEvent({"l": [1], "d": {}})
    assert not isinstance(event["l"], fake.ImmutableList)
    immutable.adopt_panther_core()
    assert isinstance(event["l"], fake.ImmutableList)
    assert isinstance(event["d"], fake.ImmutableCaseInsensitiveDict)
    assert not isinstance([1], fake.ImmutableList)


def test_adopt_leaves_missing_or_broken_modules_alone(monkeypatch):
    assert not immutable.adopt("flowwarden_no_such_module.immutable", "ImmutableList",
                               ImmutableList)
    fake = types.ModuleType("flowwarden_fake_plain")
    fake.ImmutableList = object  # type: ignore[attr-defined]  # not an ABC: nothing to do
    monkeypatch.setitem(sys.modules, "flowwarden_fake_plain", fake)
    assert not immutable.adopt("flowwarden_fake_plain", "ImmutableList", ImmutableList)


class _Methods:
    @staticmethod
    def get_user(event: Any) -> Any:
        return event.get("user")


MODEL = DataModel("Test.Model", ("Test.Log",), {
    "source_ip": FieldMapping("source_ip", path="ipAddress"),
    "dest_ip": FieldMapping("dest_ip", path="$.dst.ip"),
    "listed": FieldMapping("listed", path="$.hops[1].ip"),
    "all_hops": FieldMapping("all_hops", path="$.hops[*].ip"),
    "user": FieldMapping("user", method="get_user"),
}, "test.yml", module=_Methods)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "expected"), [
    ("source_ip", "ipAddress"),
    ("dest_ip", "dst.ip"),
    ("listed", "hops.[1].ip"),
    ("user", "get_user"),
    ("unmapped", None),
])
def test_udm_path_names_where_a_field_is_read(name, expected):
    event = PantherEvent({"ipAddress": "1.2.3.4", "dst": {"ip": None},
                          "hops": [{"ip": "a"}, {"ip": "b"}]}, MODEL)
    assert event.udm_path(name) == expected


def test_udm_path_without_a_match_a_model_or_a_single_match():
    assert PantherEvent({"dst": {}}, MODEL).udm_path("dest_ip") is None
    with pytest.raises(ValueError, match="matched multiple fields"):
        PantherEvent({"hops": [{"ip": "a"}, {"ip": "b"}]}, MODEL).udm_path("all_hops")
    with pytest.raises(NoDataModelError, match="Some.Log"):
        PantherEvent({"p_log_type": "Some.Log"}).udm_path("source_ip")


def test_mapping_types_are_mappings():
    assert isinstance(PantherEvent({}), Mapping)
    assert issubclass(PantherEvent, ImmutableCaseInsensitiveDict)
