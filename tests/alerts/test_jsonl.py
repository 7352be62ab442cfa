"""flowwarden's alert JSON lines (``flowwarden.alerts.formats.jsonl``)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowwarden.alerts.formats.jsonl import alert_json, jsonable
from flowwarden.alerts.model import Alert

T0 = datetime(2024, 3, 1, tzinfo=UTC)
KEYS = st.text(max_size=8)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=12) | st.binary(max_size=6)
           | st.decimals(allow_nan=False, allow_infinity=False, places=3)
           | st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]))
           | st.dates())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.tuples(inner, inner) | st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=12)
RECORDS = st.dictionaries(KEYS, VALUES, max_size=6)
# alert_context comes from rule code: any keys Python allows in a dict
CONTEXT_KEYS = KEYS | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)


def _alert(samples: list[dict[str, Any]], context: dict[Any, Any] | None) -> Alert:
    return Alert(
        id="a" * 32, rule_id="R", rule_name="Rule", title="t", severity="High", dedup="d",
        window_start=T0, first_event_time=T0, last_event_time=T0 + timedelta(seconds=1),
        event_count=2, unique_count=None, threshold=1,
        mitre=[{"tactic_id": "TA0011", "tactic": "Command and Control", "technique_id": "T1071",
                "technique": "Application Layer Protocol"}],
        runbook="r", reference="", description="", log_types=["AWS.VPCFlow"],
        alert_context=context, destinations=["slack"], samples=samples)


def _reference(alert: Alert) -> str:
    """The definition: every value made plain first, then encoded."""
    return json.dumps(jsonable(alert.to_dict()), sort_keys=True, ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(RECORDS, max_size=3),
       st.none() | st.dictionaries(CONTEXT_KEYS, VALUES, max_size=4))
def test_alert_json_writes_what_jsonable_gives(samples: list[dict[str, Any]],
                                               context: dict[Any, Any] | None) -> None:
    alert = _alert(samples, context)
    assert alert_json(alert) == _reference(alert)


def test_context_keys_of_any_type_are_written_as_str() -> None:
    alert = _alert([{"when": T0, "b": b"\x00", "n": Decimal("1.5"), "d": date(2024, 1, 2)}],
                   {True: 1, None: 2, 1.5: {3}, 4: frozenset()})
    written = json.loads(alert_json(alert))
    assert written["alert_context"] == {"True": 1, "None": 2, "1.5": [3], "4": []}
    assert written["samples"] == [{"when": "2024-03-01T00:00:00+00:00", "b": "AA==", "n": 1.5,
                                   "d": "2024-01-02"}]
    assert alert_json(alert) == _reference(alert)


def test_values_json_cannot_write_are_refused_as_before() -> None:
    alert = _alert([{"x": object()}], None)
    with pytest.raises(TypeError, match="not JSON serializable"):
        alert_json(alert)


def _plain(value: Any) -> Any:
    """``jsonable`` as first written: isinstance checks only, the reference of the fast one."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    if isinstance(value, Decimal):
        return float(value)
    return value


class _Str(str):
    pass


@settings(max_examples=300, deadline=None)
@given(st.recursive(SCALARS | st.builds(_Str, st.text(max_size=4)),
                    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
                    | st.dictionaries(CONTEXT_KEYS, inner, max_size=3)
                    | st.frozensets(st.integers(), max_size=3), max_leaves=12))
def test_jsonable_gives_what_the_isinstance_chain_gives(value: Any) -> None:
    assert jsonable(value) == _plain(value)
    assert json.dumps(jsonable(value), sort_keys=True) == json.dumps(_plain(value), sort_keys=True)
