from __future__ import annotations

import pytest

from flowwarden.config import default_config, load_config, parse_config
from flowwarden.errors import ConfigError


def test_defaults_match_the_spec():
    config = default_config()
    assert config.setting("approved_dns_servers") == {"1.1.1.1", "8.8.8.8"}
    assert config.setting("allowed_inbound_ports") == {80, 443}


def test_values_are_validated_and_normalized():
    config = parse_config({"approved_dns_servers": ["10.0.0.2", "2606:4700:0::1111"],
                           "internal_networks": ["10.0.0.0/8", "2600:1f18::/40", "10.1.2.3/16"]})
    assert config.setting("approved_dns_servers") == {"10.0.0.2", "2606:4700::1111"}
    assert "10.1.0.0/16" in config.setting("internal_networks")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"approved_dns_servers": ["dns.google"]}, "'dns.google' is not an IP address"),
        ({"allowed_inbound_ports": [80, 70000]}, "70000 is not a port number"),
        ({"allowed_inbound_ports": ["80"]}, "'80' is not a port number"),
        ({"allowed_inbound_ports": 80}, "expected a list, got int"),
        ({"internal_networks": ["10.0.0.0/33"]}, "is not a CIDR network"),
        ({"aproved_dns_servers": []}, "unknown setting 'aproved_dns_servers'"),
        (["a"], "must be a mapping"),
        ({"rule_constants": {"X": 1}}, "rule_constants: expected"),
        ({"lookup_tables": ["t"]}, "lookup_tables: expected {LookupName: {path: FILE"),
        ({"lookup_tables": {"t": {"kind": "mmdb"}}}, "lookup_tables: t: expected a mapping with "
                                                     "a path"),
        ({"lookup_tables": {"t": {"path": "x", "match": "prefix"}}}, "t: match must be one of "
                                                                      "exact, cidr"),
        ({"lookup_tables": {"t": {"path": "x", "color": 1}}}, "t: unknown key.s. color"),
        ({"lookup_tables": {"t": {"path": "x", "log_types": {"A": "b"}}}}, "t: log_types must "
                                                                            "map log types"),
        ({"lookup_tables": {"t": {"path": "x", "kind": ""}}}, "t: kind must be"),
    ],
)
def test_bad_values_are_clear_errors(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config(data)


def test_load_config_file_and_errors(tmp_path, monkeypatch):
    path = tmp_path / "flowwarden.yaml"
    path.write_text("allowed_inbound_ports: [22]\n")
    assert load_config(path).setting("allowed_inbound_ports") == {22}
    monkeypatch.chdir(tmp_path)
    assert load_config().setting("allowed_inbound_ports") == {22}
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    path.write_text("allowed_inbound_ports: [22\n")
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load_config(path)
    assert info.value.location.line is not None


def test_lookup_tables_keep_the_options_of_a_kind():
    config = parse_config({"lookup_tables": {"geo": {"path": "/d/geo.mmdb", "kind": "mmdb",
                                                     "fields": ["country"]}}})
    source = config.lookup_tables["geo"]
    assert (source.path, source.kind, source.options) == ("/d/geo.mmdb", "mmdb",
                                                          {"fields": ["country"]})
    assert default_config().lookup_tables == {}


def test_enable_and_disable():
    config = parse_config({"enable": ["A"], "disable": ["B"]})
    assert config.is_enabled("A", False) and not config.is_enabled("B", True)
    assert config.is_enabled("C", True) and not config.is_enabled("C", False)


def test_doctests():
    import doctest

    from flowwarden import config

    result = doctest.testmod(config)
    assert result.attempted > 0 and result.failed == 0
