"""Panther's ``AnalysisType: lookup_table`` files, read into plain specs.

The rules layer only describes a table (its name, primary key, where its data is, which fields
of which log types select into it); ``flowwarden.enrich`` reads the data and matches it.
Keys follow Panther's lookup table YAML: ``LookupName``, ``Enabled``, ``Schema``, ``Filename``
(a data file beside the YAML) or ``Refresh`` (an S3 ``ObjectPath`` Panther refreshes; flowwarden
takes a local path or ``s3://`` URI for it from ``flowwarden.yaml``) or ``Query`` (a table
Panther fills from a scheduled query), and ``LogTypeMap`` (``PrimaryKey``,
``AssociatedLogTypes`` of ``LogType`` + ``Selectors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowwarden.errors import Location, RuleLoadError

KNOWN_KEYS = frozenset({"AnalysisType", "LookupName", "Enabled", "Description", "Reference",
                        "Schema", "Filename", "Refresh", "Query", "LogTypeMap", "Tags"})
REFRESH_KEYS = frozenset({"RoleARN", "ObjectPath", "PeriodMinutes", "AlarmPeriodMinutes"})
LOG_TYPE_MAP_KEYS = frozenset({"PrimaryKey", "AssociatedLogTypes"})


@dataclass(frozen=True)
class LookupTableSpec:
    """One lookup table as its YAML describes it."""

    name: str
    yaml_path: str
    primary_key: str
    selectors: Mapping[str, tuple[str, ...]]  # log type -> selectors, in the YAML's order
    enabled: bool = True
    schema: str = ""
    filename: str | None = None  # the data file, resolved against the YAML's directory
    object_path: str | None = None  # Refresh.ObjectPath: Panther's copy, not readable here
    query: bool = False  # filled by a scheduled query in Panther
    description: str = field(default="", compare=False)


def load_lookup_table(path: Path, doc: Mapping[str, Any]) -> LookupTableSpec:
    """Validate one lookup table YAML; every problem is a RuleLoadError naming the file."""
    where = Location(str(path))
    unknown = sorted(str(k) for k in doc if k not in KNOWN_KEYS)
    if unknown:
        raise RuleLoadError(f"unknown key(s) in a lookup table: {', '.join(unknown)}", where)
    name = doc.get("LookupName")
    if not isinstance(name, str) or not name:
        raise RuleLoadError("LookupName must be a non-empty name", where)
    enabled = doc.get("Enabled", True)
    if not isinstance(enabled, bool):
        raise RuleLoadError(f"{name}: Enabled must be true or false", where)
    filename = doc.get("Filename")
    if filename is not None and (not isinstance(filename, str) or not filename):
        raise RuleLoadError(f"{name}: Filename must be a file name", where)
    primary_key, selectors = _log_type_map(doc.get("LogTypeMap"), name, where)
    return LookupTableSpec(
        name=name, yaml_path=str(path), primary_key=primary_key, selectors=selectors,
        enabled=enabled, schema=str(doc.get("Schema") or ""),
        filename=str(path.parent / filename) if filename else None,
        object_path=_object_path(doc.get("Refresh"), name, where),
        query="Query" in doc, description=str(doc.get("Description") or "").strip())


def _object_path(refresh: Any, name: str, where: Location) -> str | None:
    if refresh is None:
        return None
    if not isinstance(refresh, dict):
        raise RuleLoadError(f"{name}: Refresh must be a mapping", where)
    unknown = sorted(str(k) for k in refresh if k not in REFRESH_KEYS)
    if unknown:
        raise RuleLoadError(f"{name}: unknown key(s) in Refresh: {', '.join(unknown)}", where)
    path = refresh.get("ObjectPath")
    if path is not None and not isinstance(path, str):
        raise RuleLoadError(f"{name}: Refresh.ObjectPath must be an S3 URI", where)
    return path or None


def _log_type_map(raw: Any, name: str, where: Location
                  ) -> tuple[str, dict[str, tuple[str, ...]]]:
    if not isinstance(raw, dict):
        raise RuleLoadError(f"{name}: LogTypeMap must be a mapping with PrimaryKey and "
                            "AssociatedLogTypes", where)
    unknown = sorted(str(k) for k in raw if k not in LOG_TYPE_MAP_KEYS)
    if unknown:
        raise RuleLoadError(f"{name}: unknown key(s) in LogTypeMap: {', '.join(unknown)}", where)
    primary_key = raw.get("PrimaryKey")
    if not isinstance(primary_key, str) or not primary_key:
        raise RuleLoadError(f"{name}: LogTypeMap.PrimaryKey must be a column name", where)
    associated = raw.get("AssociatedLogTypes") or []
    if not isinstance(associated, list):
        raise RuleLoadError(f"{name}: LogTypeMap.AssociatedLogTypes must be a list", where)
    selectors: dict[str, tuple[str, ...]] = {}
    for number, item in enumerate(associated, start=1):
        log_type = item.get("LogType") if isinstance(item, dict) else None
        chosen = item.get("Selectors") if isinstance(item, dict) else None
        if not isinstance(log_type, str) or not log_type or not isinstance(chosen, list | None) \
                or not all(isinstance(s, str) and s for s in chosen or ()):
            raise RuleLoadError(f"{name}: AssociatedLogTypes item {number} needs a LogType and a "
                                "list of Selectors (field names or $.paths)", where)
        merged = selectors.get(log_type, ())
        selectors[log_type] = merged + tuple(s for s in chosen or () if s not in merged)
    return primary_key, selectors
