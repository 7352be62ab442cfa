"""OCSF 1.1.0 events checked with ``jsonschema`` against a JSON Schema made from the compiled schema.

``json_schema(profiles)`` turns the extract of the compiled OCSF schema in
``tests/fixtures/ocsf/`` into a JSON Schema (draft 2020-12) for the events of its classes
(Detection Finding 2004, Network Activity 4001) whose ``metadata.profiles`` declares
``profiles``. It checks:

- ``class_uid`` is one of the classes;
- every required attribute of the class and of each nested object is present (a null value
  counts as absent, as OCSF has it);
- values have the attribute's type: string, integer (with the 32- or 64-bit range), float,
  boolean, object, array, and the types built on them (``timestamp_t`` is a 64-bit integer,
  ``port_t`` an integer in 0..65535, ``ip_t`` a string of at most 40 characters matching the
  schema's pattern, and so on); ``json_t`` is any value;
- enum values (``*_id`` attributes and the few enumerated strings) are defined;
- no attribute is unknown (``additionalProperties: false``), and a profile's attributes appear
  only when ``metadata.profiles`` declares that profile (and its required ones then must);
- the objects' ``at_least_one``/``just_one`` constraints hold (``constraints=False`` leaves
  them out: the compiled 1.1.0 file gives ``network_endpoint`` the ``_entity`` constraint, name
  or uid, which AWS's own VPC flow mapping, ip and port only, does not meet);
- ``type_uid`` is ``class_uid * 100 + activity_id`` and ``metadata.version`` is the schema's.

``validate(event)`` picks the schema for the profiles the event declares and lists the problems.

>>> [str(p) for p in validate({"class_uid": 2004, "activity_id": 1})][:2]
['category_uid: required attribute missing', 'finding_info: required attribute missing']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "ocsf" / "ocsf-1.1.0-extract.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The types without a base type in the compiled file, as JSON Schema types (json_t: any value).
PRIMITIVES = {"string_t": "string", "integer_t": "integer", "long_t": "integer",
              "float_t": "number", "boolean_t": "boolean", "json_t": None}
BOUNDS = {"integer_t": (-(2**31), 2**31 - 1), "long_t": (-(2**63), 2**63 - 1)}
GENERIC_OBJECT = "object"  # free-form (``unmapped``), listed in the file as an empty object


@cache
def compiled(path: str = str(SCHEMA_FILE)) -> dict[str, Any]:
    """The compiled OCSF schema (or its extract) at ``path``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def known_profiles(path: str = str(SCHEMA_FILE)) -> frozenset[str]:
    """The profiles some attribute of the file's classes or objects belongs to."""
    return _profiles_of(compiled(path))


@cache
def json_schema(profiles: frozenset[str] = frozenset(), *, constraints: bool = True,
                path: str = str(SCHEMA_FILE)) -> dict[str, Any]:
    """The JSON Schema of the file's classes for events that declare ``profiles``."""
    return _Builder(compiled(path), frozenset(profiles), constraints).document()


@cache
def validator(profiles: frozenset[str] = frozenset(), *, constraints: bool = True,
              path: str = str(SCHEMA_FILE)) -> Draft202012Validator:
    schema = json_schema(profiles, constraints=constraints, path=path)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@dataclass(frozen=True, order=True)
class Problem:
    """One way an event breaks the schema: where, which JSON Schema keyword, and what."""

    path: str  # dotted, array items as [i]; for a missing attribute, the attribute's own path
    keyword: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or 'event'}: {self.message}"


def declared_profiles(event: Mapping[str, Any], path: str = str(SCHEMA_FILE)) -> frozenset[str]:
    """The known profiles the event's ``metadata.profiles`` declares."""
    metadata = event.get("metadata")
    declared = metadata.get("profiles") if isinstance(metadata, Mapping) else None
    if not isinstance(declared, list):
        return frozenset()
    return frozenset(p for p in declared if isinstance(p, str)) & known_profiles(path)


def validate(event: Mapping[str, Any], *, constraints: bool = True,
             path: str = str(SCHEMA_FILE)) -> list[Problem]:
    """Every problem of one OCSF event, sorted by path; an empty list means valid."""
    checker = validator(declared_profiles(event, path), constraints=constraints, path=path)
    found: set[Problem] = set()
    for error in checker.iter_errors(event):
        found.update(_problems(error))
    return sorted(found)


def assert_valid(event: Mapping[str, Any], *, constraints: bool = True) -> None:
    """Raise ``ValueError`` listing every problem, if there is one."""
    problems = validate(event, constraints=constraints)
    if problems:
        raise ValueError("invalid OCSF event:\n  " + "\n  ".join(map(str, problems)))


def _problems(error: ValidationError) -> Iterator[Problem]:
    """The problems one ``jsonschema`` error stands for, in OCSF's words where they differ."""
    path = _dotted(error.absolute_path)
    if error.validator == "required":  # one error per missing name, each naming them all
        for name in error.validator_value:
            if isinstance(error.instance, Mapping) and error.instance.get(name) is None:
                yield Problem(_join(path, name), "required", "required attribute missing")
    elif error.validator == "additionalProperties":  # one error for all the unknown names
        known = error.schema.get("properties", {})
        for name in error.instance:
            if name not in known:
                yield Problem(_join(path, name), "additionalProperties", "unknown attribute")
    elif error.validator == "type" and error.instance is None and error.path and isinstance(
            error.path[-1], str):  # optional attributes allow null: this one is required
        yield Problem(path, "required", "required attribute missing")
    elif isinstance(error.schema, Mapping) and "description" in error.schema:
        yield Problem(path, str(error.validator), error.schema["description"])
    else:
        yield Problem(path, str(error.validator), error.message)


def _dotted(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text = f"{text}[{part}]" if isinstance(part, int) else _join(text, part)
    return text


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@dataclass(frozen=True)
class _Builder:
    data: Mapping[str, Any]
    profiles: frozenset[str]
    constraints: bool

    def document(self) -> dict[str, Any]:
        classes = self.data["classes"]
        uids = {name: int(cls["uid"]) for name, cls in classes.items()}
        defs = {name: self.entry(obj) for name, obj in self.data["objects"].items()}
        for name, cls in classes.items():
            key = f"class_{name}"
            if key in defs:
                raise ValueError(f"object and class definitions collide: {key}")
            defs[key] = self.class_schema(cls)
        listed = ", ".join(sorted(self.profiles)) or "none"
        return {
            "$schema": DIALECT,
            "title": f"OCSF {self.data['version']} events of classes "
                     f"{', '.join(map(str, uids.values()))}, profiles: {listed}",
            "type": "object",
            "required": ["class_uid"],
            "properties": {"class_uid": {
                "enum": list(uids.values()),
                "description": f"unknown class (not one of {', '.join(map(str, uids.values()))})",
            }},
            "allOf": [
                self.profile_declaration(),
                *({"if": {"properties": {"class_uid": {"const": uid}}, "required": ["class_uid"]},
                   "then": {"$ref": f"#/$defs/class_{name}"}} for name, uid in uids.items()),
            ],
            "$defs": defs,
        }

    def profile_declaration(self) -> dict[str, Any]:
        """``metadata.profiles`` declares this schema's profiles and no other known one."""
        others = sorted(_profiles_of(self.data) - self.profiles)
        rules = [{"contains": {"const": p}} for p in sorted(self.profiles)]
        rules += [{"not": {"contains": {"const": p}}} for p in others]
        profiles: dict[str, Any] = {"allOf": rules}
        metadata: dict[str, Any] = {"properties": {"profiles": profiles}}
        if self.profiles:
            metadata["required"] = ["profiles"]
        return {"description": f"this schema is for events whose metadata.profiles declares "
                               f"{sorted(self.profiles)} and none of {others}",
                "properties": {"metadata": metadata}}

    def class_schema(self, cls: Mapping[str, Any]) -> dict[str, Any]:
        schema = self.entry(cls)
        uid, version = int(cls["uid"]), self.data["version"]
        rules = schema.setdefault("allOf", [])
        rules.append({"properties": {"metadata": {"properties": {"version": {
            "const": version, "description": f"not the schema's version, {version}"}}}}})
        for activity in sorted(int(a) for a in cls["attributes"]["activity_id"].get("enum") or {}):
            type_uid = uid * 100 + activity
            rules.append({
                "if": {"properties": {"activity_id": {"const": activity}},
                       "required": ["activity_id"]},
                "then": {"properties": {"type_uid": {
                    "const": type_uid,
                    "description": f"not class_uid * 100 + activity_id ({type_uid})"}}},
            })
        return schema

    def entry(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """A class or object: its attributes, required ones, no others, its constraints.

        No ``type: object`` here: the places that refer to it say whether null is allowed.
        """
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, attribute in entry["attributes"].items():
            profile = attribute.get("profile")
            if profile and profile not in self.profiles:
                properties[name] = {
                    "type": "null",
                    "description": f"attribute of profile {profile!r}, "
                                   "which metadata.profiles does not declare"}
                continue
            needed = attribute.get("requirement") == "required"
            if needed:
                required.append(name)
            properties[name] = self.attribute(attribute, nullable=not needed)
        schema: dict[str, Any] = {"properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        rules = [self.constraint(kind, names)
                 for kind, names in (entry.get("constraints") or {}).items()]
        if self.constraints and rules:
            schema["allOf"] = rules
        return schema

    @staticmethod
    def constraint(kind: str, names: list[str]) -> dict[str, Any]:
        present = [{"required": [n], "properties": {n: {"not": {"type": "null"}}}} for n in names]
        if kind == "at_least_one":
            return {"description": f"needs at least one of {', '.join(names)}", "anyOf": present}
        if kind == "just_one":
            return {"description": f"needs exactly one of {', '.join(names)}", "oneOf": present}
        raise ValueError(f"unknown constraint {kind!r}")

    def attribute(self, attribute: Mapping[str, Any], *, nullable: bool) -> dict[str, Any]:
        single = self.value(attribute)
        schema = {"type": "array", "items": single} if attribute.get("is_array") else single
        return _with_null(schema) if nullable else schema

    def value(self, attribute: Mapping[str, Any]) -> dict[str, Any]:
        type_name = attribute["type"]
        if type_name == GENERIC_OBJECT:
            return {"type": "object"}
        if type_name in self.data["objects"]:
            return {"type": "object", "$ref": f"#/$defs/{type_name}"}
        schema = self.scalar(type_name)
        enum = attribute.get("enum")
        if enum:
            cast = int if schema.get("type") == "integer" else str
            schema["enum"] = [cast(key) for key in enum]
        return schema

    def scalar(self, type_name: str) -> dict[str, Any]:
        """A type and its base types, down to a primitive, as one JSON Schema."""
        types = self.data["types"]
        chain = [type_name]
        while chain[-1] not in PRIMITIVES:
            base = (types.get(chain[-1]) or {}).get("type")
            if not base or len(chain) > 8:
                raise ValueError(f"unknown type {type_name!r}")
            chain.append(base)
        primitive = PRIMITIVES[chain[-1]]
        schema: dict[str, Any] = {} if primitive is None else {"type": primitive}
        low, high, max_len, patterns = None, None, None, []
        for name in chain:
            info = types.get(name) or {}
            bounds = info.get("range") or BOUNDS.get(name)
            if bounds:
                low = bounds[0] if low is None else max(low, bounds[0])
                high = bounds[1] if high is None else min(high, bounds[1])
            if info.get("max_len"):
                max_len = info["max_len"] if max_len is None else min(max_len, info["max_len"])
            if info.get("regex"):
                patterns.append(info["regex"])
            if info.get("values") is not None and primitive != "boolean":
                schema["enum"] = list(info["values"])
        if primitive in ("integer", "number") and low is not None:
            schema |= {"minimum": low, "maximum": high}
        if primitive == "string":
            if max_len is not None:
                schema["maxLength"] = max_len
            if len(patterns) == 1:
                schema["pattern"] = patterns[0]
            elif patterns:
                schema["allOf"] = [{"pattern": p} for p in patterns]
        return schema


def _profiles_of(data: Mapping[str, Any]) -> frozenset[str]:
    entries = [*data["classes"].values(), *data["objects"].values()]
    return frozenset(a["profile"] for e in entries for a in e["attributes"].values()
                     if a.get("profile"))


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, also allowing null (OCSF reads a null attribute as an absent one)."""
    if "type" not in schema:  # json_t: any value already
        return schema
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    schema = {**schema, "type": [*kinds, "null"]}
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema
