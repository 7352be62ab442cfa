"""flowwarden.yaml: the allowlists and switches that "Configuration Required" rules read.

Rules never need a code edit to change an allowlist: built-in rules read named settings through
the `flowwarden_config` helper, and any Panther rule's module-level constant can be replaced per
rule under `rule_constants`. `lookup_tables` says where each lookup table's data is
(`TableSource`; ``flowwarden.enrich.build`` loads them).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowwarden.errors import ConfigError, Location
from flowwarden.yamlfile import load_yaml

CONFIG_FILE_NAME = "flowwarden.yaml"


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"{value!r} is not a port number (an integer from 0 to 65535)")
    return value


def _ip(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an IP address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _cidr(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a CIDR network")
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR network") from None


def _table_name(value: Any) -> str:
    plain = value.replace("_", "").replace("-", "").replace(".", "") if isinstance(value, str) else ""
    if not plain.isascii() or not plain.isalnum():
        raise ValueError(f"{value!r} is not a lookup table name (letters, digits, _ - .)")
    return value


def _rule_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a rule id")
    return value


@dataclass(frozen=True)
class Setting:
    """One named list setting: how to check each item, its default, and what it is for."""

    item: Callable[[Any], Any]
    default: tuple[Any, ...]
    help: str


SETTINGS: dict[str, Setting] = {
    "approved_dns_servers": Setting(
        _ip, ("1.1.1.1", "8.8.8.8"), "DNS resolvers internal hosts may query directly."
    ),
    "allowed_inbound_ports": Setting(
        _port, (80, 443), "Ports the internet may reach on internal addresses."
    ),
    "admin_ports": Setting(
        _port, (22, 3389), "Administrative ports that must never be reachable from the internet."
    ),
    "common_ports": Setting(
        _port,
        (20, 21, 22, 23, 25, 53, 80, 110, 123, 143, 443, 465, 587, 853, 993, 995, 3306, 3389,
         5432, 8080, 8443),
        "Well-known service ports the port-scan rule does not count.",
    ),
    "internal_networks": Setting(
        _cidr, (), "CIDRs (IPv4 and IPv6) that are yours: VPC ranges, shared address space."
    ),
    "nat_gateway_addresses": Setting(
        _ip, (), "Private IPs of your NAT gateways: their translated leg repeats a flow the "
        "client's own record already shows (the tuned DNS rule)."
    ),
    "threat_intel_tables": Setting(
        _table_name, ("threat_intel",), "Lookup tables of indicators (IOCs) whose matches "
        "AWS.VPC.ThreatIntelMatch alerts on (their LookupName)."
    ),
    "enable": Setting(
        _rule_id,
        ("AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.InboundPortWhitelist"),
        "Rules to run although their YAML says Enabled: false.",
    ),
    "disable": Setting(_rule_id, (), "Rules not to run although their YAML enables them."),
}


TABLE_SOURCE_KEYS = ("path", "kind", "match", "primary_key", "log_types", "layout")
MATCH_KINDS = ("exact", "cidr")
# How a table's matches are laid out under p_enrichment.<LookupName>: Panther's documented
# layout keys them by the selector that matched; panther-analysis's GreyNoise V3 and OTX
# helpers read them by the matched value itself (p_enrichment.greynoise_noise."1.2.3.4").
BY_SELECTOR, BY_VALUE = "by-selector", "by-value"
TABLE_LAYOUTS = (BY_SELECTOR, BY_VALUE)


@dataclass(frozen=True)
class TableSource:
    """Where a lookup table's data is (``lookup_tables:`` in the configuration file).

    ``path`` is a local file (relative to the configuration file's directory) or an ``s3://``
    URI. ``kind`` names a source kind of ``flowwarden.enrich.sources`` (checked when the tables
    are built), and ``options`` are the entry's other keys, handed to that kind's loader; without
    a kind the file is a table in CSV, JSON lines or Parquet. ``match`` forces exact or CIDR
    matching, and ``primary_key`` with ``log_types`` ({LogType: [selectors]}) define a table
    that has no lookup_table YAML (or replace its YAML's ``LogTypeMap``).

    ``layout`` says how matches appear under ``p_enrichment.<LookupName>``: ``by-selector``
    (the default, Panther's documented layout: ``<selector>`` -> the matched row, or the list
    of rows for a list selector such as ``p_any_ip_addresses``) or ``by-value`` (``<matched
    value>`` -> its row, whichever selectors found it: the layout panther-analysis's GreyNoise
    V3 and OTX helpers read, ``p_enrichment.greynoise_noise["142.93.204.250"]``).
    """

    path: str
    kind: str | None = None
    match: str | None = None
    primary_key: str | None = None
    log_types: Mapping[str, tuple[str, ...]] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    layout: str = BY_SELECTOR


@dataclass(frozen=True)
class Config:
    """Validated configuration; `values` holds every setting (defaults filled in)."""

    values: Mapping[str, tuple[Any, ...]]
    rule_constants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str | None = None
    explicit: frozenset[str] = frozenset()  # the settings `source` sets (others are defaults)
    lookup_tables: Mapping[str, TableSource] = field(default_factory=dict)  # by LookupName

    def setting(self, name: str) -> frozenset[Any]:
        """The named setting as a frozenset, the shape rules test membership against."""
        if name not in self.values:
            raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(SETTINGS))}")
        return frozenset(self.values[name])

    def is_enabled(self, rule_id: str, yaml_enabled: bool) -> bool:
        if rule_id in self.values["disable"]:
            return False
        return yaml_enabled or rule_id in self.values["enable"]

    def origin(self, name: str) -> str:
        """Where setting ``name`` comes from, for messages.

        >>> default_config().origin("enable")
        'the built-in default `enable:` list; no configuration file'
        >>> parse_config({"enable": []}, "a.yaml").origin("enable")
        '`enable:` in a.yaml'
        >>> parse_config({}, "a.yaml").origin("enable")
        'the built-in default `enable:` list; a.yaml does not set it'
        """
        if name in self.explicit:
            return f"`{name}:` in {self.source}"
        why = f"{self.source} does not set it" if self.source else "no configuration file"
        return f"the built-in default `{name}:` list; {why}"

    def enabled_note(self, rule_id: str, yaml_enabled: bool) -> str | None:
        """Why the configuration runs a rule its YAML disables, or the reverse; None when it
        follows its YAML."""
        if yaml_enabled and rule_id in self.values["disable"]:
            return f"disabled by {self.origin('disable')}"
        if not yaml_enabled and self.is_enabled(rule_id, yaml_enabled):
            return f"enabled by {self.origin('enable')}"
        return None


def default_config() -> Config:
    return Config({name: s.default for name, s in SETTINGS.items()})


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate a parsed YAML document; every bad value is a ConfigError naming its key."""
    where = Location(source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping of setting names", where)
    values = {name: s.default for name, s in SETTINGS.items()}
    rule_constants: dict[str, dict[str, Any]] = {}
    tables: dict[str, TableSource] = {}
    for key, raw in data.items():
        if key == "rule_constants":
            rule_constants = _parse_rule_constants(raw, where)
            continue
        if key == "lookup_tables":
            tables = _parse_lookup_tables(raw, where)
            continue
        setting = SETTINGS.get(key)
        if setting is None:
            known = ", ".join([*sorted(SETTINGS), "lookup_tables", "rule_constants"])
            raise ConfigError(f"unknown setting {key!r}; known settings: {known}", where)
        if not isinstance(raw, list):
            raise ConfigError(f"{key}: expected a list, got {type(raw).__name__}", where)
        try:
            values[key] = tuple(setting.item(item) for item in raw)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}", where) from None
    return Config(values, rule_constants, source, frozenset(data), tables)


def _parse_rule_constants(raw: Any, where: Location) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError("rule_constants: expected {RuleID: {CONSTANT: value}}", where)
    return {str(rule): dict(consts) for rule, consts in raw.items()}


def _parse_lookup_tables(raw: Any, where: Location) -> dict[str, TableSource]:
    if not isinstance(raw, dict):
        raise ConfigError("lookup_tables: expected {LookupName: {path: FILE, ...}}", where)
    base = Path(where.path).parent if where.path != "<config>" else Path()
    return {str(name): _table_source(str(name), entry, base, where)
            for name, entry in raw.items()}


def _table_source(name: str, entry: Any, base: Path, where: Location) -> TableSource:
    key = f"lookup_tables: {name}"
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
        raise ConfigError(f"{key}: expected a mapping with a path (a file or s3:// URI)", where)
    kind, match, primary_key = (entry.get(k) for k in ("kind", "match", "primary_key"))
    if kind is not None and (not isinstance(kind, str) or not kind):
        raise ConfigError(f"{key}: kind must be a source kind's name", where)
    if match is not None and match not in MATCH_KINDS:
        raise ConfigError(f"{key}: match must be one of {', '.join(MATCH_KINDS)}, got {match!r}",
                          where)
    if primary_key is not None and (not isinstance(primary_key, str) or not primary_key):
        raise ConfigError(f"{key}: primary_key must be a column name", where)
    layout = entry.get("layout", BY_SELECTOR)
    if layout not in TABLE_LAYOUTS:
        raise ConfigError(f"{key}: layout must be one of {', '.join(TABLE_LAYOUTS)}, got "
                          f"{layout!r}", where)
    options = {k: v for k, v in entry.items() if k not in TABLE_SOURCE_KEYS}
    if options and kind is None:
        raise ConfigError(f"{key}: unknown key(s) {', '.join(sorted(map(str, options)))}; known: "
                          f"{', '.join(TABLE_SOURCE_KEYS)} (other keys are options of a kind)",
                          where)
    path = entry["path"]
    if not path.startswith("s3://") and not Path(path).is_absolute():
        path = str(base / path)
    return TableSource(path, kind, match, primary_key,
                       _table_log_types(entry.get("log_types"), key, where), options, layout)


def _table_log_types(raw: Any, key: str, where: Location) -> dict[str, tuple[str, ...]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        isinstance(v, list) and all(isinstance(s, str) and s for s in v) for v in raw.values()
    ):
        raise ConfigError(f"{key}: log_types must map log types to lists of selectors", where)
    return {str(log_type): tuple(dict.fromkeys(selectors)) for log_type, selectors in raw.items()}


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load `path`, or ./flowwarden.yaml when present, or the defaults."""
    if path is None:
        candidate = Path(CONFIG_FILE_NAME)
        if not candidate.is_file():
            return default_config()
        path = candidate
    path = Path(path)
    if not path.is_file():
        raise ConfigError("configuration file not found", Location(str(path)))
    return parse_config(load_yaml(path, ConfigError), str(path))
