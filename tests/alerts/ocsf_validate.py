"""A small OCSF event validator written against a compiled OCSF schema file.

It checks what a consumer relies on: the class is known, every required attribute of the class and
of each nested object is present, enum values are defined, values have the attribute's type
(string, integer, long, float, boolean, object, array; with the type's range, length and pattern),
the objects' ``at_least_one``/``just_one`` constraints hold, ``type_uid`` is
``class_uid * 100 + activity_id``, and no attribute is unknown. Attributes of a profile count only
when ``metadata.profiles`` declares that profile. A null value counts as absent.

>>> schema = OcsfSchema.load()
>>> validate({"class_uid": 2004}, schema)[0]
'activity_id: required attribute missing'
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = "ocsf-1.1.0.json"
# The project keeps the compiled schema in shared/reference beside its checkout (CI lays it there).
SCHEMA_CANDIDATES = (
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "ocsf" / SCHEMA_FILE,
    Path("/work/shared/reference/ocsf") / SCHEMA_FILE,
)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# Types with no base type in the compiled file, and the Python values each accepts.
PRIMITIVES = ("string_t", "integer_t", "long_t", "float_t", "boolean_t", "json_t")
GENERIC_OBJECT = "object"


@dataclass(frozen=True)
class OcsfSchema:
    """The parts of a compiled schema (``python -m ocsf.compile`` output) the validator reads."""

    version: str
    classes: Mapping[str, Any]
    objects: Mapping[str, Any]
    types: Mapping[str, Any]
    by_uid: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> OcsfSchema:
        """Load (and cache) a compiled schema.

        The default is ``$FLOWWARDEN_OCSF_SCHEMA``, else the project's shared OCSF 1.1.0 copy.
        """
        return _load(str(path or default_schema_path()))

    def class_for(self, class_uid: Any) -> Mapping[str, Any] | None:
        name = self.by_uid.get(class_uid) if isinstance(class_uid, int) else None
        return self.classes.get(name) if name else None


def default_schema_path() -> Path:
    """Where the compiled OCSF 1.1.0 schema is: the environment's choice or the shared copy."""
    if os.environ.get("FLOWWARDEN_OCSF_SCHEMA"):
        return Path(os.environ["FLOWWARDEN_OCSF_SCHEMA"])
    for candidate in SCHEMA_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no compiled OCSF schema; set FLOWWARDEN_OCSF_SCHEMA to {SCHEMA_FILE}")


@cache
def _load(path: str) -> OcsfSchema:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    by_uid = {int(c["uid"]): name for name, c in data["classes"].items()}
    return OcsfSchema(data["version"], data["classes"], data["objects"], data["types"], by_uid)


def validate(event: Mapping[str, Any], schema: OcsfSchema | None = None, *,
             constraints: bool = True) -> list[str]:
    """Every problem of one OCSF event as ``path: message``; an empty list means valid.

    ``constraints=False`` skips the objects' ``at_least_one``/``just_one`` checks: the compiled
    1.1.0 file gives ``network_endpoint`` the ``_entity`` constraint (name or uid), which AWS's own
    VPC flow mapping (ip and port only) does not meet.
    """
    schema = schema or OcsfSchema.load()
    cls = schema.class_for(event.get("class_uid"))
    if cls is None:
        return [f"class_uid: unknown class {event.get('class_uid')!r}"]
    metadata = event.get("metadata")
    declared = metadata.get("profiles") if isinstance(metadata, Mapping) else None
    profiles = frozenset(p for p in declared or () if isinstance(p, str))
    checker = _Checker(schema, profiles, constraints)
    checker.attributes(event, cls["attributes"], "", cls.get("constraints"))
    checker.class_rules(event, cls)
    return checker.problems


def assert_valid(event: Mapping[str, Any], schema: OcsfSchema | None = None) -> None:
    """Raise ``ValueError`` listing every problem, if there is one."""
    problems = validate(event, schema)
    if problems:
        raise ValueError("invalid OCSF event:\n  " + "\n  ".join(problems))


@dataclass
class _Checker:
    schema: OcsfSchema
    profiles: frozenset[str]
    check_constraints: bool = True
    problems: list[str] = field(default_factory=list)

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def attributes(self, data: Mapping[str, Any], spec: Mapping[str, Any], prefix: str,
                   constraints: Mapping[str, Any] | None) -> None:
        for name, attribute in spec.items():
            profile = attribute.get("profile")
            applies = profile is None or profile in self.profiles
            if applies and attribute.get("requirement") == "required" and data.get(name) is None:
                self.report(prefix + name, "required attribute missing")
        for name, value in data.items():
            path = prefix + str(name)
            attribute = spec.get(name)
            if attribute is None:
                self.report(path, "unknown attribute")
            elif attribute.get("profile") and attribute["profile"] not in self.profiles:
                self.report(path, f"attribute of profile {attribute['profile']!r}, "
                                  "which metadata.profiles does not declare")
            elif value is not None:
                self.attribute(value, attribute, path)
        self.constraints(data, constraints, prefix)

    def attribute(self, value: Any, attribute: Mapping[str, Any], path: str) -> None:
        if attribute.get("is_array"):
            if not isinstance(value, list):
                self.report(path, f"expected an array, got {_kind(value)}")
                return
            for index, item in enumerate(value):
                self.single(item, attribute, f"{path}[{index}]")
        else:
            self.single(value, attribute, path)

    def single(self, value: Any, attribute: Mapping[str, Any], path: str) -> None:
        type_name = attribute["type"]
        if type_name == GENERIC_OBJECT:  # free-form (``unmapped``), listed as an empty object
            if not isinstance(value, Mapping):
                self.report(path, f"expected an object, got {_kind(value)}")
            return
        if type_name in self.schema.objects:
            if not isinstance(value, Mapping):
                self.report(path, f"expected object {type_name!r}, got {_kind(value)}")
                return
            obj = self.schema.objects[type_name]
            self.attributes(value, obj["attributes"], path + ".", obj.get("constraints"))
            return
        if self.scalar(value, type_name, path):
            self.enum(value, attribute, path)

    def scalar(self, value: Any, type_name: str, path: str) -> bool:
        """Check value against the type and its base types; True if it is of the right kind."""
        chain = self.type_chain(type_name, path)
        if not chain:
            return False
        if not _matches_primitive(value, chain[-1]):
            self.report(path, f"expected {_describe(chain)}, got {_kind(value)} {value!r:.60}")
            return False
        for name in chain:
            info = self.schema.types.get(name) or {}
            if not self.type_limits(value, name, info, path):
                return False
        return True

    def type_chain(self, type_name: str, path: str) -> list[str]:
        chain = [type_name]
        while chain[-1] not in PRIMITIVES:
            info = self.schema.types.get(chain[-1])
            if info is None or not info.get("type") or len(chain) > 8:
                self.report(path, f"attribute has unknown type {type_name!r}")
                return []
            chain.append(info["type"])
        return chain

    def type_limits(self, value: Any, name: str, info: Mapping[str, Any], path: str) -> bool:
        bounds = {"integer_t": INT32, "long_t": INT64}.get(name) or info.get("range")
        if bounds and isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
            self.report(path, f"{value} is outside {name}'s range {bounds[0]}..{bounds[1]}")
            return False
        if isinstance(value, str):
            if info.get("max_len") and len(value) > info["max_len"]:
                self.report(path, f"longer than {name}'s {info['max_len']} characters")
                return False
            if info.get("regex") and not re.search(info["regex"], value):
                self.report(path, f"{value!r:.60} is not a valid {name}")
                return False
        values = info.get("values")
        if values is not None and value not in values:
            self.report(path, f"{value!r} is not one of {name}'s values {values}")
            return False
        return True

    def enum(self, value: Any, attribute: Mapping[str, Any], path: str) -> None:
        enum = attribute.get("enum")
        if enum and str(value) not in enum:
            allowed = ", ".join(sorted(enum, key=lambda k: (len(k), k)))
            self.report(path, f"{value!r} is not a defined enum value ({allowed})")

    def constraints(self, data: Mapping[str, Any], constraints: Mapping[str, Any] | None,
                    prefix: str) -> None:
        if not self.check_constraints:
            return
        for kind, names in (constraints or {}).items():
            present = [n for n in names if data.get(n) is not None]
            where = prefix.rstrip(".") or "event"
            if kind == "at_least_one" and not present:
                self.report(where, f"needs at least one of {', '.join(names)}")
            elif kind == "just_one" and len(present) != 1:
                self.report(where, f"needs exactly one of {', '.join(names)}, has {len(present)}")

    def class_rules(self, event: Mapping[str, Any], cls: Mapping[str, Any]) -> None:
        class_uid, activity = event.get("class_uid"), event.get("activity_id")
        type_uid = event.get("type_uid")
        expected = None
        if isinstance(class_uid, int) and isinstance(activity, int):
            expected = class_uid * 100 + activity
        if isinstance(type_uid, int) and expected is not None and type_uid != expected:
            self.report("type_uid", f"{type_uid} is not class_uid * 100 + activity_id ({expected})")
        version = (event.get("metadata") or {}).get("version")
        if isinstance(version, str) and version != self.schema.version:
            self.report("metadata.version", f"{version!r}, but the schema is {self.schema.version}")


def _matches_primitive(value: Any, primitive: str) -> bool:
    if primitive == "string_t":
        return isinstance(value, str)
    if primitive in ("integer_t", "long_t"):
        return isinstance(value, int) and not isinstance(value, bool)
    if primitive == "float_t":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if primitive == "boolean_t":
        return isinstance(value, bool)
    return True  # json_t: any JSON value


def _describe(chain: list[str]) -> str:
    return " -> ".join(chain)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
