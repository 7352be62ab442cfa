"""flowwarden.yaml: the allowlists and switches that "Configuration Required" rules read.

Rules never need a code edit to change an allowlist: built-in rules read named settings through
the `flowwarden_config` helper, and any Panther rule's module-level constant can be replaced per
rule under `rule_constants`.
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
    "enable": Setting(
        _rule_id,
        ("AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.InboundPortWhitelist"),
        "Rules to run although their YAML says Enabled: false.",
    ),
    "disable": Setting(_rule_id, (), "Rules not to run although their YAML enables them."),
}


@dataclass(frozen=True)
class Config:
    """Validated configuration; `values` holds every setting (defaults filled in)."""

    values: Mapping[str, tuple[Any, ...]]
    rule_constants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str | None = None
    explicit: frozenset[str] = frozenset()  # the settings `source` sets (others are defaults)

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
    for key, raw in data.items():
        if key == "rule_constants":
            rule_constants = _parse_rule_constants(raw, where)
            continue
        setting = SETTINGS.get(key)
        if setting is None:
            known = ", ".join([*sorted(SETTINGS), "rule_constants"])
            raise ConfigError(f"unknown setting {key!r}; known settings: {known}", where)
        if not isinstance(raw, list):
            raise ConfigError(f"{key}: expected a list, got {type(raw).__name__}", where)
        try:
            values[key] = tuple(setting.item(item) for item in raw)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}", where) from None
    return Config(values, rule_constants, source, frozenset(data))


def _parse_rule_constants(raw: Any, where: Location) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError("rule_constants: expected {RuleID: {CONSTANT: value}}", where)
    return {str(rule): dict(consts) for rule, consts in raw.items()}


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
