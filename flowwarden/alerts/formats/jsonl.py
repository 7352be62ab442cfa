"""flowwarden's own alert format: one JSON object per line."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from flowwarden.alerts.model import Alert


def jsonable(value: Any) -> Any:
    """Plain JSON values: datetimes as ISO 8601, bytes as base64, containers recursively."""
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


def alert_json(alert: Alert) -> str:
    return json.dumps(jsonable(alert.to_dict()), sort_keys=True, ensure_ascii=False)


def write_lines(alerts: Iterable[Alert], out: IO[str],
                render: Callable[[Alert], str] = alert_json) -> int:
    """One rendered alert per line (flowwarden JSON by default); returns the number written."""
    count = 0
    for alert in alerts:
        out.write(render(alert) + "\n")
        count += 1
    return count
