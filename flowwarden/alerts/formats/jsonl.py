"""flowwarden's own alert format: one JSON object per line."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any, Protocol, runtime_checkable

from flowwarden.alerts.model import Alert

SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """Plain JSON values: datetimes as ISO 8601, bytes as base64, containers recursively."""
    kind = type(value)
    if kind in SCALAR_TYPES:  # exact types first: isinstance against ABCs is slow
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): jsonable(v) for k, v in value.items()}
    if kind is list:
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Decimal):
        return float(value)
    return value


FIELDS = tuple(f.name for f in fields(Alert))
TIMES = ("window_start", "first_event_time", "last_event_time")


@runtime_checkable
class JsonLines(Protocol):
    """Alerts that can write their own ``alert_json`` lines (``groupstore.AlertTable``: from
    its query, no Python object per alert)."""

    def json_lines(self) -> Iterable[bytes]:
        """Every alert's ``alert_json`` and a newline, UTF-8, in order, in chunks."""
# Values the C encoder writes itself, as ``jsonable`` would hand them to it.
NATIVE = (str, int, float, bool, type(None))


def alert_json(alert: Alert) -> str:
    """The alert as ``json.dumps(jsonable(alert.to_dict()), sort_keys=True)`` writes it, without
    copying it first: records (string keys) go to the C encoder as they are, the rare values it
    does not know through ``_encodable``; alert contexts (any keys) through ``jsonable``."""
    data = {name: getattr(alert, name) for name in FIELDS}
    data["alert_context"] = jsonable(alert.alert_context)
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=_encodable)


def dumps(value: Any) -> str:
    """JSON text of a value as ``alert_json`` writes it inside an alert."""
    return json.dumps(jsonable(value), sort_keys=True, ensure_ascii=False)


def alert_from_json(text: str) -> Alert:
    """The ``Alert`` an ``alert_json`` line holds (times as datetimes; samples and context as
    the JSON values written, so times inside them as text)."""
    data = json.loads(text)
    for name in TIMES:
        data[name] = datetime.fromisoformat(data[name])
    return Alert(**data)


def _encodable(value: Any) -> Any:
    """What ``jsonable`` makes of a value the encoder cannot write: datetimes, bytes, decimals,
    sets, other mappings (keys as ``str``)."""
    converted = jsonable(value)
    if converted is value:  # jsonable leaves it alone: the encoder's own error
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return converted


def write_lines(alerts: Iterable[Alert], out: IO[str],
                render: Callable[[Alert], str] = alert_json) -> int:
    """One rendered alert per line (flowwarden JSON by default); returns the number written."""
    count = 0
    for alert in alerts:
        out.write(render(alert) + "\n")
        count += 1
    return count
