import ipaddress
import random
import sys

import maxminddb
import pyarrow as pa
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from flowwarden.enrich.sources import SOURCE_KINDS, LookupSourceError
from flowwarden.enrich.sources.mmdb import SAMPLED_RECORDS
from flowwarden.errors import ConfigError
from tests.enrich.sources.helpers import rows, write

LONDON = {
    "city": {"geoname_id": 2643743, "names": {"en": "London", "de": "London"}},
    "continent": {"code": "EU", "names": {"en": "Europe", "de": "Europa"}},
    "country": {"iso_code": "GB", "is_in_european_union": False,
                "names": {"en": "United Kingdom", "de": "Vereinigtes Königreich"}},
    "location": {"accuracy_radius": 100, "latitude": 51.5142, "longitude": -0.0931,
                 "time_zone": "Europe/London"},
    "postal": {"code": "EC2V"},
    "registered_country": {"iso_code": "SE", "names": {"en": "Sweden", "de": "Schweden"}},
    "subdivisions": [{"iso_code": "ENG", "names": {"en": "England", "de": "England"}}],
}
BERLIN = {"country": {"iso_code": "DE", "names": {"en": "Germany", "de": "Deutschland"}}}


def mmdb(tmp_path, database_type, networks, name="test.mmdb", ip_version=6):
    writer = MMDBWriter(ip_version=ip_version, ipv4_compatible=ip_version == 6,
                        database_type=database_type, languages=["en", "de"])
    for network, record in networks:
        writer.insert_network(IPSet([network]), record)
    path = tmp_path / name
    writer.to_db_file(str(path))
    return str(path)


def load(path, **options):
    return SOURCE_KINDS["mmdb"](path, options)


def test_a_city_record_is_flattened_to_the_fields_a_rule_reads(tmp_path):
    lookup = load(mmdb(tmp_path, "GeoLite2-City", [("81.2.69.0/24", LONDON),
                                                   ("2001:db8::/32", BERLIN)]), name="geo")
    assert lookup.name == "geo" and lookup.uses_c_extension
    london, berlin, unknown = rows(lookup, "81.2.69.160", "2001:db8::7", "8.8.8.8")
    assert london == {
        "network": "81.2.69.0/24", "country_iso_code": "GB", "country_name": "United Kingdom",
        "continent_code": "EU", "continent_name": "Europe", "is_in_european_union": False,
        "registered_country_iso_code": "SE", "registered_country_name": "Sweden",
        "city_name": "London", "subdivision_iso_code": "ENG", "subdivision_name": "England",
        "postal_code": "EC2V", "latitude": 51.5142, "longitude": -0.0931, "accuracy_radius": 100,
        "time_zone": "Europe/London"}
    assert (berlin["network"], berlin["country_iso_code"], berlin["city_name"]) == (
        "2001:db8::/32", "DE", None)
    assert unknown is None
    assert lookup.row_type.field("latitude").type == pa.float64()
    assert lookup.row_type.field("accuracy_radius").type == pa.int64()


def test_names_come_in_the_language_asked_for(tmp_path):
    lookup = load(mmdb(tmp_path, "GeoIP2-City", [("81.2.69.0/24", LONDON)]), language="de")
    assert rows(lookup, "81.2.69.1")[0]["country_name"] == "Vereinigtes Königreich"


def test_a_country_file_has_no_city_fields(tmp_path):
    lookup = load(mmdb(tmp_path, "GeoLite2-Country", [("81.2.69.0/24", BERLIN)]))
    assert "city_name" not in lookup.row_type.names
    assert rows(lookup, "81.2.69.1")[0]["country_iso_code"] == "DE"
    # a file whose type says nothing still gets the city fields its records hold
    named_otherwise = load(mmdb(tmp_path, "geo", [("81.2.69.0/24", LONDON)], name="x.mmdb"))
    assert rows(named_otherwise, "81.2.69.1")[0]["city_name"] == "London"


def test_a_maxmind_asn_file_keeps_its_own_flat_keys_typed(tmp_path):
    path = mmdb(tmp_path, "GeoLite2-ASN", [("1.1.1.0/24", {
        "autonomous_system_number": 13335, "autonomous_system_organization": "CLOUDFLARENET"})],
        ip_version=4)
    lookup = load(path)
    assert lookup.row_type.field("autonomous_system_number").type == pa.int64()
    assert rows(lookup, "1.1.1.1", "2001:db8::1") == [
        {"network": "1.1.1.0/24", "autonomous_system_number": 13335,
         "autonomous_system_organization": "CLOUDFLARENET"},
        None,  # IPv6 asked of an IPv4-only file: no match, no error
    ]


@pytest.mark.parametrize("kind, record, reads", [
    ("ipinfo standard_location.mmdb",
     {"city": "Constantinople", "country": "TR", "lat": "41.008610", "lng": "28.971111",
      "postal_code": "34000", "region": "Istanbul", "region_code": "34",
      "timezone": "Europe/Istanbul"},
     ("city", "country", "lat", "lng", "postal_code", "region", "region_code", "timezone")),
    ("ipinfo standard_asn.mmdb",
     {"asn": "AS00000", "domain": "byzantineempire.com", "name": "Byzantine Empire",
      "route": "1.2.3.0/24", "type": "isp"},
     ("asn", "domain", "name", "route", "type")),
    ("ipinfo standard_privacy.mmdb",
     {"hosting": False, "proxy": False, "tor": True, "vpn": False, "relay": False,
      "service": "Tor"},
     ("hosting", "proxy", "tor", "vpn", "relay", "service")),
])
def test_ipinfo_records_keep_the_keys_panthers_ipinfo_helpers_read(tmp_path, kind, record, reads):
    lookup = load(mmdb(tmp_path, kind, [("1.2.3.0/24", record)]))
    row = rows(lookup, "1.2.3.15")[0]
    assert {key: row[key] for key in reads} == {key: record[key] for key in reads}
    assert row["network"] == "1.2.3.0/24"


def test_the_records_not_the_type_name_decide_the_layout(tmp_path):
    lookup = load(mmdb(tmp_path, "Country", [("1.2.3.0/24", {"country": "US", "asn": "AS1"})]))
    assert rows(lookup, "1.2.3.4") == [{"network": "1.2.3.0/24", "country": "US", "asn": "AS1"}]


def test_nested_values_of_a_flat_file_become_parent_child_fields(tmp_path):
    lookup = load(mmdb(tmp_path, "custom", [("1.2.3.0/24", {"asn": {"id": 7, "name": "x"}})]))
    assert rows(lookup, "1.2.3.4")[0] == {"network": "1.2.3.0/24", "asn_id": 7, "asn_name": "x"}


def test_fields_the_sample_misses_are_read_when_listed(tmp_path):
    networks = [(f"10.{i // 256}.{i % 256}.0/24", {"name": f"n{i}"})
                for i in range(SAMPLED_RECORDS + 50)]
    networks.append(("11.0.0.0/8", {"name": "late", "late": "yes"}))
    path = mmdb(tmp_path, "custom", networks, ip_version=4)
    assert "late" not in load(path).row_type.names
    listed = load(path, fields=["name", "late"])
    assert rows(listed, "11.1.1.1", "10.0.3.9") == [
        {"network": "11.0.0.0/8", "name": "late", "late": "yes"},
        {"network": "10.0.3.0/24", "name": "n3", "late": None}]


def test_rows_agree_with_the_reader_address_by_address(tmp_path):
    random.seed(7)
    networks = [(f"{a}.{b}.0.0/{16 + (a + b) % 9}", {"country": {"iso_code": f"C{a}-{b}"}})
                for a in range(1, 40) for b in range(0, 256, 5)]
    networks += [("2001:db8::/33", {"country": {"iso_code": "V6"}}),
                 ("2001:db8:8000::/48", {"country": {"iso_code": "V6B"}})]
    path = mmdb(tmp_path, "GeoLite2-Country", networks)
    keys = [str(ipaddress.IPv4Address(random.randrange(1 << 24, 40 << 24))) for _ in range(3000)]
    keys += ["2001:db8::1", "2001:db8:8000::1", "2001:db8:8000:1::1", "2001:db9::1"]
    reader = maxminddb.open_database(path, maxminddb.MODE_MMAP)
    expected = []
    for key in keys:
        record, length = reader.get_with_prefix_len(key)
        expected.append(None if record is None else (
            str(ipaddress.ip_network(f"{key}/{length}", strict=False)),
            record["country"]["iso_code"]))
    got = [None if row is None else (row["network"], row["country_iso_code"])
           for row in rows(load(path), *keys)]
    assert got == expected
    assert sum(row is not None for row in got) > 100  # the sample holds both outcomes
    assert sum(row is None for row in got) > 100


def test_keys_python_does_not_call_addresses_never_match(tmp_path):
    lookup = load(mmdb(tmp_path, "GeoLite2-Country", [("0.0.0.0/0", BERLIN)]))
    # the C reader would take "1.2.3" as 1.2.0.3; ipaddress refuses it, and so does every table
    assert rows(lookup, "1.2.3", "not an address", "", None, "1.2.3.4")[:4] == [None] * 4


def test_an_empty_file_matches_nothing_and_says_so(tmp_path):
    lookup = load(write(tmp_path, "GeoLite2-City.mmdb", ""))
    assert rows(lookup, "1.2.3.4") == [None]
    assert lookup.problems.count == 1


def test_a_file_that_is_not_a_maxmind_db_is_a_clear_error(tmp_path):
    with pytest.raises(LookupSourceError, match="not a MaxMind DB file"):
        load(write(tmp_path, "city.mmdb", "this is not a database\n"))
    with pytest.raises(LookupSourceError, match="cannot read lookup source"):
        load(str(tmp_path / "missing.mmdb"))


def test_without_maxminddb_the_error_names_the_extra(tmp_path, monkeypatch):
    path = mmdb(tmp_path, "GeoLite2-Country", [("81.2.69.0/24", LONDON)])
    monkeypatch.setitem(sys.modules, "maxminddb", None)
    with pytest.raises(ConfigError, match=r"flowwarden\[enrich\]"):
        load(path)
