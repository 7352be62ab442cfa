"""Loading a directory tree in Panther's layout: rules, data models, global helpers.

Built-in packs are named: ``default`` (the spec rules and the flow rules) and ``tuned`` (the
default pack with the tuned versions of the two spec rules in their place). A rule may declare
``Replaces: <RuleID>`` (or a list): when the rule it names is loaded too, that rule is dropped
from the pack and recorded in ``Pack.replaced``. A directory given alone loads only itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowwarden.config import Config, default_config
from flowwarden.errors import ConfigError, FlowwardenError, Location, RuleLoadError
from flowwarden.rules.constants import like
from flowwarden.rules.datamodel import DataModel, FieldMapping
from flowwarden.rules.event import LookupFunction, PantherEvent
from flowwarden.rules.kinds import Policy, ScheduledRule
from flowwarden.rules.lookups import LookupTableSpec, load_lookup_table
from flowwarden.rules.modules import HelperFinder, config_module, exec_module
from flowwarden.rules.rule import SEVERITIES, Rule, RuleTest
from flowwarden.rules.simple import SimpleRule, check_inline_filters, compile_simple
from flowwarden.yamlfile import load_yaml

PACKS_DIR = Path(__file__).resolve().parent.parent / "packs"
BUILTIN_PACKS = {"default": PACKS_DIR / "default", "tuned": PACKS_DIR / "tuned"}
# What each built-in pack name loads: ``tuned`` is the default pack plus the tuned rules, which
# replace the spec rules they name in ``Replaces:``.
BUILTIN_LAYERS: dict[str, tuple[str, ...]] = {"default": ("default",),
                                               "tuned": ("default", "tuned")}
SKIPPED_TYPES = {
    "scheduled_query": "scheduled queries run in a data lake",
    "saved_query": "saved queries run in a data lake",
    "correlation_rule": "correlation rules need Panther's correlation backend (PAT runs their "
                        "tests remotely, on Panther)",
    "pack": "packs are bundles for Panther's console",
    "derived": "derived rules are not supported yet",
}
DETECTION_TYPES = ("rule", "scheduled_rule", "policy")
# Loaded whatever a filter selects: helpers, data models and lookup tables are what the selected
# detections run with.
SUPPORT_TYPES = ("global", "datamodel", "lookup_table")
# Panther's test tool, run at a repository's root, reads only its content directories: the
# example files under templates/ are not detections.
IGNORED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".github", "templates"}
Selector = Callable[[Mapping[str, Any]], bool]


@dataclass
class Pack:
    """Everything loaded from one or more rule directories."""

    rules: list[Rule] = field(default_factory=list)
    data_models: dict[str, DataModel] = field(default_factory=dict)
    problems: list[FlowwardenError] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    config: Config = field(default_factory=default_config)
    paths: list[str] = field(default_factory=list)  # the directories it was loaded from
    replaced: dict[str, str] = field(default_factory=dict)  # rule id -> the rule run instead
    lookup_tables: list[LookupTableSpec] = field(default_factory=list)
    # What `event.lookup(table, key)` asks: a scan sets its tables' lookup here; without one,
    # events answer from their `_mocked_lookup_data_`, as in Panther's test tool.
    lookup_function: LookupFunction | None = None

    def event(self, data: Mapping[str, Any]) -> PantherEvent:
        """Wrap a record with the data model of its `p_log_type`."""
        return PantherEvent(data, self.data_models.get(str(data.get("p_log_type"))),
                            self.lookup_function)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def active_rules(self, only: Sequence[str] = ()) -> list[Rule]:
        """Rules to run: the named ones, or those enabled by their YAML or the config."""
        if only:
            known = {r.id for r in self.rules}
            missing = [r for r in only if r not in known]
            if missing:
                raise RuleLoadError(f"no rule with id {', '.join(missing)} is loaded"
                                    + self.replaced_note(missing))
            return [r for r in self.rules if r.id in only]
        return [r for r in self.rules if self.config.is_enabled(r.id, r.enabled)]

    def replaced_note(self, rule_ids: Sequence[str]) -> str:
        """``"; X is replaced by Y in this pack"`` for those of ``rule_ids`` that were replaced."""
        found = [f"{r} is replaced by {self.replaced[r]}" for r in rule_ids if r in self.replaced]
        return f"; {', '.join(found)} in this pack (--pack default runs it)" if found else ""


def resolve_pack_paths(names: Sequence[str]) -> list[Path]:
    """Built-in pack names (`default`, `tuned`) or directories; nothing means `default`.

    A built-in name brings the directories it is made of (``BUILTIN_LAYERS``); each directory
    is loaded once.

    >>> [p.name for p in resolve_pack_paths(["tuned"])]
    ['default', 'tuned']
    >>> [p.name for p in resolve_pack_paths(["default", "tuned", "default"])]
    ['default', 'tuned']
    """
    paths: list[Path] = []
    for name in names or ["default"]:
        if name in BUILTIN_LAYERS:
            found = [BUILTIN_PACKS[layer] for layer in BUILTIN_LAYERS[name]]
        else:
            found = [Path(name)]
            if not found[0].exists():
                known = ", ".join(BUILTIN_PACKS)
                raise RuleLoadError(f"no such rule directory or built-in pack (built-in: {known})",
                                    Location(name))
        paths.extend(p for p in found if p not in paths)
    return paths


def load_pack(paths: Sequence[str | os.PathLike[str]], config: Config | None = None,
              select: Selector | None = None) -> Pack:
    """Load every analysis file under `paths`; problems are collected, never raised.

    ``select``, given an analysis file's YAML, says whether to load it at all: what it leaves
    out is neither loaded, skipped nor a problem. Helpers and data models always load, as
    Panther's test tool does with filters; so do lookup tables (``AnalysisType: lookup_table``,
    kept as ``LookupTableSpec``s in ``Pack.lookup_tables`` for the enricher).
    """
    pack = Pack(config=config or default_config(), paths=[str(p) for p in paths])
    docs = [(p, d) for p, d in _analysis_files([Path(p) for p in paths], pack, select)]
    helpers = _helper_paths(docs, pack)
    builtin_helpers = {p.stem: p for p in (BUILTIN_PACKS["default"] / "global_helpers").glob("*.py")}
    HelperFinder(
        {**builtin_helpers, **helpers}, {"flowwarden_config": config_module(pack.config.setting)}
    ).install()
    builtin_models = [(p, d) for p, d in _analysis_files([BUILTIN_PACKS["default"] / "data_models"], pack)]
    for path, doc in [*builtin_models, *docs]:
        kind = doc.get("AnalysisType")
        try:
            if kind == "datamodel":
                model = _load_data_model(path, doc)
                if model.enabled:
                    pack.data_models.update({lt: model for lt in model.log_types})
            elif kind in DETECTION_TYPES:
                pack.rules.append(_load_detection(path, doc, pack.config))
            elif kind == "global":
                _require(doc, path, ("GlobalID", "Filename"))
            elif kind == "lookup_table":
                _add_lookup_table(pack, load_lookup_table(path, doc))
        except ConfigError:
            raise  # the configuration is wrong for every rule, not this file: stop with one line
        except FlowwardenError as exc:
            pack.problems.append(exc)
    _check_duplicate_ids(pack)
    _apply_replacements(pack)
    return pack


def _add_lookup_table(pack: Pack, table: LookupTableSpec) -> None:
    for other in pack.lookup_tables:
        if other.name == table.name:
            raise RuleLoadError(f"LookupName {table.name} is also defined in {other.yaml_path}",
                                Location(table.yaml_path))
    pack.lookup_tables.append(table)


def _helper_paths(docs: Sequence[tuple[Path, dict[str, Any]]], pack: Pack) -> dict[str, Path]:
    helpers = {}
    for path, doc in docs:
        if doc.get("AnalysisType") == "global" and doc.get("Filename"):
            try:
                source = _python_path(path, doc)
            except RuleLoadError as exc:
                pack.problems.append(exc)
                continue
            helpers[source.stem] = source
    return helpers


def _analysis_files(roots: Sequence[Path], pack: Pack, select: Selector | None = None
                    ) -> Iterator[tuple[Path, dict[str, Any]]]:
    for root in roots:
        files = [root] if root.is_file() else sorted(_yaml_files(root))
        for path in files:
            try:
                doc = load_yaml(path, RuleLoadError)
            except RuleLoadError as exc:
                pack.problems.append(exc)
                continue
            if not isinstance(doc, dict) or "AnalysisType" not in doc:
                continue
            kind = str(doc["AnalysisType"])
            if select is not None and kind not in SUPPORT_TYPES and not select(doc):
                continue
            if kind in SKIPPED_TYPES:
                pack.skipped.append((str(path), f"AnalysisType {kind}: {SKIPPED_TYPES[kind]}"))
            elif kind not in (*DETECTION_TYPES, *SUPPORT_TYPES):
                pack.problems.append(RuleLoadError(f"unknown AnalysisType {kind!r}", Location(str(path))))
            else:
                yield path, doc


def _yaml_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS and not d.startswith("."))
        for name in filenames:
            if name.endswith((".yml", ".yaml")):
                yield Path(dirpath) / name


def _require(doc: dict[str, Any], path: Path, keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in doc]
    if missing:
        raise RuleLoadError(f"missing required key(s): {', '.join(missing)}", Location(str(path)))


def _python_path(path: Path, doc: dict[str, Any]) -> Path:
    target = path.parent / str(doc.get("Filename", ""))
    if not target.is_file():
        raise RuleLoadError(f"Filename {doc.get('Filename')!r} does not exist", Location(str(path)))
    return target


def _log_types(doc: dict[str, Any], path: Path, key: str = "LogTypes") -> tuple[str, ...]:
    log_types = doc.get(key)
    if not isinstance(log_types, list) or not log_types or not all(
        isinstance(t, str) and t for t in log_types
    ):
        raise RuleLoadError(f"{key} must be a non-empty list of names", Location(str(path)))
    return tuple(log_types)


def _load_data_model(path: Path, doc: dict[str, Any]) -> DataModel:
    _require(doc, path, ("DataModelID", "LogTypes", "Mappings"))
    mappings: dict[str, FieldMapping] = {}
    raw = doc["Mappings"]
    if not isinstance(raw, list):
        raise RuleLoadError("Mappings must be a list", Location(str(path)))
    for item in raw:
        if not isinstance(item, dict) or "Name" not in item or ("Path" in item) == ("Method" in item):
            raise RuleLoadError(
                f"each mapping needs Name and exactly one of Path or Method: {item!r}",
                Location(str(path)),
            )
        mappings[str(item["Name"])] = FieldMapping(
            str(item["Name"]), item.get("Path"), item.get("Method")
        )
    module = exec_module(_python_path(path, doc)) if doc.get("Filename") else None
    for mapping in mappings.values():
        if mapping.method and not callable(getattr(module, mapping.method, None)):
            raise RuleLoadError(f"mapping {mapping.name!r}: method {mapping.method!r} not found",
                                Location(str(path)))
    return DataModel(str(doc["DataModelID"]), _log_types(doc, path), mappings, str(path),
                     bool(doc.get("Enabled", True)), module)


# Per analysis type: its id key, the key naming what it runs on, and its matcher function.
KIND_KEYS = {
    "rule": ("RuleID", "LogTypes", "rule"),
    "scheduled_rule": ("RuleID", "ScheduledQueries", "rule"),
    "policy": ("PolicyID", "ResourceTypes", "policy"),
}
KIND_CLASSES: dict[str, type[Rule]] = {"rule": Rule, "scheduled_rule": ScheduledRule,
                                       "policy": Policy}


def _load_detection(path: Path, doc: dict[str, Any], config: Config) -> Rule:
    """A rule, scheduled rule or policy: Python (``Filename``) or YAML (``Detection``)."""
    kind = str(doc["AnalysisType"])
    id_key, targets_key, matcher = KIND_KEYS[kind]
    simple = "Detection" in doc and "Filename" not in doc
    _require(doc, path, (id_key, targets_key, "Severity", "Enabled",
                         *(() if simple else ("Filename",))))
    rule_id = str(doc[id_key])
    severity = str(doc["Severity"])
    canonical = {s.upper(): s for s in SEVERITIES}.get(severity.upper())
    if canonical is None:
        raise RuleLoadError(f"{rule_id}: Severity {severity!r} is not one of {', '.join(SEVERITIES)}",
                            Location(str(path)))
    if not isinstance(doc["Enabled"], bool):
        raise RuleLoadError(f"{rule_id}: Enabled must be true or false", Location(str(path)))
    cls: type[Rule] = KIND_CLASSES[kind]
    extra: dict[str, Any] = {}
    if simple:
        compiled = compile_simple(doc, path)
        cls, module, source_path, source = SimpleRule, compiled.module, path, compiled.source
        extra["condition"] = compiled.condition
    else:
        source_path = _python_path(path, doc)
        module = exec_module(source_path)
        if not callable(getattr(module, matcher, None)):
            raise RuleLoadError(f"{rule_id}: no {matcher}() function", Location(str(source_path)))
        check_inline_filters(doc, path)
        source = source_path.read_text(encoding="utf-8")
    _apply_constants(module, config.rule_constants.get(rule_id, {}), rule_id, config)
    return cls(
        id=rule_id,
        yaml_path=str(path),
        source_path=str(source_path),
        log_types=_log_types(doc, path, targets_key),
        severity=canonical,
        enabled=doc["Enabled"],
        display_name=str(doc.get("DisplayName") or ""),
        description=str(doc.get("Description") or "").strip(),
        runbook=str(doc.get("Runbook") or "").strip(),
        reference=str(doc.get("Reference") or ""),
        tags=tuple(str(t) for t in doc.get("Tags") or ()),
        reports={str(k): tuple(str(x) for x in v or ()) for k, v in (doc.get("Reports") or {}).items()},
        summary_attributes=tuple(str(a) for a in doc.get("SummaryAttributes") or ()),
        dedup_minutes=_positive_int(doc, "DedupPeriodMinutes", 60, path),
        threshold=_positive_int(doc, "Threshold", 1, path),
        tests=_tests(doc, path),
        replaces=_replaces(doc, path),
        module=module,
        source=source,
        **extra,
    )


def _replaces(doc: dict[str, Any], path: Path) -> tuple[str, ...]:
    value = doc.get("Replaces")
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise RuleLoadError("Replaces must be a RuleID or a list of RuleIDs", Location(str(path)))
    return tuple(items)


def _positive_int(doc: dict[str, Any], key: str, default: int, path: Path) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RuleLoadError(f"{key} must be a positive integer, got {value!r}", Location(str(path)))
    return value


def _apply_constants(module: Any, constants: Mapping[str, Any], rule_id: str, config: Config) -> None:
    for name, value in constants.items():
        if not hasattr(module, name):
            raise RuleLoadError(f"rule_constants: {rule_id} has no constant {name!r}",
                                Location(config.source or "<config>"))
        try:
            value = like(getattr(module, name), value)
        except ValueError as exc:
            raise ConfigError(f"rule_constants: {rule_id}.{name}: {exc}",
                              Location(config.source or "<config>")) from None
        setattr(module, name, value)


def _tests(doc: dict[str, Any], path: Path) -> tuple[RuleTest, ...]:
    tests = []
    for index, raw in enumerate(doc.get("Tests") or (), start=1):
        where = Location(str(path))
        # Policies' tests give a Resource; Panther's test tool takes it before Log.
        data_key = "Resource" if isinstance(raw, dict) and "Resource" in raw else "Log"
        if not isinstance(raw, dict) or data_key not in raw or "ExpectedResult" not in raw:
            raise RuleLoadError(f"test #{index} needs Name, Log and ExpectedResult", where)
        if not isinstance(raw[data_key], dict) or not isinstance(raw["ExpectedResult"], bool):
            raise RuleLoadError(f"test #{index}: {data_key} must be a mapping, ExpectedResult a bool",
                                where)
        mocks = tuple((str(m["objectName"]), m.get("returnValue")) for m in raw.get("Mocks") or ()
                      if isinstance(m, dict) and "objectName" in m)
        tests.append(RuleTest(str(raw.get("Name", f"test #{index}")), raw["ExpectedResult"],
                              raw[data_key], mocks))
    return tuple(tests)


def _check_duplicate_ids(pack: Pack) -> None:
    seen: dict[str, Rule] = {}
    for rule in list(pack.rules):
        if rule.id in seen:
            pack.problems.append(RuleLoadError(
                f"RuleID {rule.id} is also defined in {seen[rule.id].yaml_path}", Location(rule.yaml_path)))
            pack.rules.remove(rule)
        else:
            seen[rule.id] = rule


def _apply_replacements(pack: Pack) -> None:
    """Drop every rule another loaded rule replaces (``Replaces:``), remembering by which."""
    loaded = {rule.id for rule in pack.rules}
    for rule in pack.rules:
        for target in rule.replaces:
            if target in loaded and target != rule.id:
                pack.replaced.setdefault(target, rule.id)
    pack.rules = [rule for rule in pack.rules if rule.id not in pack.replaced]
