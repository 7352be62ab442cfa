"""What IOC sources share: confidence on STIX's 0-100 scale, and one row per network."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# STIX 2.1's "Low/Med/High" confidence scale (Appendix A), for feeds that write words.
CONFIDENCE_WORDS = {"none": 0, "low": 15, "med": 50, "medium": 50, "high": 85}


def parse_confidence(value: Any) -> tuple[int | None, str | None]:
    """The confidence ``value`` states (0-100) and, if it states none, why not."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    number: Any = value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in CONFIDENCE_WORDS:
            return CONFIDENCE_WORDS[word], None
        try:
            number = float(word)
        except ValueError:
            number = None
    if isinstance(number, (int, float)) and not isinstance(number, bool) and 0 <= number <= 100:
        return round(number), None
    return None, f"confidence {value!r} is not a number from 0 to 100"


def most_confident(rows: Iterable[dict[str, Any]], key: str,
                   confidence: str | None = "confidence") -> list[dict[str, Any]]:
    """One row per ``key``: the one with the highest ``confidence``, the first among equals."""
    kept: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = kept.get(row[key])
        if held is None or _rank(row, confidence) > _rank(held, confidence):
            kept[row[key]] = row
    return list(kept.values())


def _rank(row: dict[str, Any], confidence: str | None) -> int:
    value = row.get(confidence) if confidence is not None else None
    return -1 if value is None else int(value)
