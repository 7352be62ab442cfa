import json
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from flowwarden.enrich.sources import SOURCE_KINDS, LookupSourceError
from flowwarden.errors import ConfigError
from tests.enrich.sources.helpers import problem_texts, rows, write

PANTHER_TABLE = (Path(__file__).resolve().parents[2] / "fixtures" / "lookup_tables"
                 / "panther_analysis" / "tor_exit_nodes.yml")

BULK = """\
# Tor bulk exit list
171.25.193.25
185.220.101.1   # with a comment
2001:67c:e60:c0c:192:42:116:16

not-an-address
171.25.193.25
10.0.0.0/8
"""

EXIT_LIST = """\
ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E
Published 2024-03-01 10:00:00
LastStatus 2024-03-01 11:00:00
ExitAddress 162.247.74.201 2024-03-01 11:05:00
ExitNode 0111BA9B604669E636FFD5B503F382A4B7AD6E80
Published 2024-03-01 09:00:00
LastStatus 2024-03-01 10:00:00
ExitAddress 176.10.99.200 2024-03-01 10:03:00
ExitAddress 999.1.1.1 2024-03-01 10:03:00
Unexpected line
"""


def onionoo(*relays):
    return json.dumps({"version": "8.0", "relays_published": "2024-03-01 11:00:00",
                       "relays": list(relays), "bridges": []})


def load(tmp_path, text, file="exits.txt", **options):
    return SOURCE_KINDS["tor-exits"](write(tmp_path, file, text), options)


def test_the_table_has_panthers_name_and_primary_key_by_default(tmp_path):
    lookup = load(tmp_path, BULK)
    panther = yaml.safe_load(PANTHER_TABLE.read_text())
    assert lookup.name == panther["LookupName"] == "tor_exit_nodes"
    assert lookup.key == panther["LogTypeMap"]["PrimaryKey"] == "ip"


def test_the_bulk_list_gives_an_ip_row_per_address_and_reports_bad_lines(tmp_path):
    lookup = load(tmp_path, BULK)
    assert rows(lookup, "185.220.101.1", "2001:67c:e60:c0c:192:42:116:16", "171.25.193.25",
                "8.8.8.8", "10.1.2.3") == [
        {"ip": "185.220.101.1"}, {"ip": "2001:67c:e60:c0c:192:42:116:16"},
        {"ip": "171.25.193.25"}, None, None]
    path = str(tmp_path / "exits.txt")
    assert problem_texts(lookup) == [
        f"{path}:6: not an IP address: 'not-an-address'",
        f"{path}:8: not an IP address: '10.0.0.0/8'",
    ]
    assert len(lookup.source.rows) == 3  # the repeated address is one row


def test_an_address_written_another_way_still_matches(tmp_path):
    lookup = load(tmp_path, "2001:0DB8:0000::0001\n")
    assert rows(lookup, "2001:db8::1") == [{"ip": "2001:db8::1"}]


def test_the_exit_list_keeps_each_addresses_relay(tmp_path):
    lookup = load(tmp_path, EXIT_LIST, file="exit-addresses.gz")
    first, second = rows(lookup, "162.247.74.201", "176.10.99.200")
    assert first == {"ip": "162.247.74.201",
                     "fingerprint": "0011BD2485AD45D984EC4159C88FC066E5E3300E",
                     "published": "2024-03-01 10:00:00", "last_status": "2024-03-01 11:00:00",
                     "last_seen": "2024-03-01 11:05:00"}
    assert second["fingerprint"] == "0111BA9B604669E636FFD5B503F382A4B7AD6E80"
    path = str(tmp_path / "exit-addresses.gz")
    assert problem_texts(lookup) == [
        f"{path}:9: ExitAddress '999.1.1.1 2024-03-01 10:03:00': not an IP address",
        f"{path}:10: unknown line 'Unexpected line'",
    ]


def relay(nickname, or_addresses, exit_addresses=None, flags=("Exit", "Running")):
    found = {"nickname": nickname, "fingerprint": nickname.upper() * 4,
             "or_addresses": or_addresses, "flags": list(flags), "country": "de",
             "country_name": "Germany", "as": "AS24940", "as_name": "Hetzner Online GmbH",
             "first_seen": "2020-01-01 00:00:00", "last_seen": "2024-03-01 11:00:00"}
    if exit_addresses is not None:
        found["exit_addresses"] = exit_addresses
    return found


def test_onionoo_details_give_exit_addresses_and_the_or_addresses_of_exits(tmp_path):
    text = onionoo(
        relay("exitone", ["95.216.1.1:443", "[2a01:4f9::1]:443"], ["95.216.9.9"]),
        relay("middle", ["78.46.1.1:9001"], flags=("Guard", "Running")),
        relay("differs", ["78.46.2.2:9001"], ["5.5.5.5", "bad"], flags=("Running",)),
        "not a relay",
    )
    lookup = load(tmp_path, text, file="details.json")
    exit_address, or_v4, or_v6, middle, differs = rows(
        lookup, "95.216.9.9", "95.216.1.1", "2a01:4f9::1", "78.46.1.1", "5.5.5.5")
    assert exit_address == {"ip": "95.216.9.9", "fingerprint": "EXITONE" * 4,
                            "nickname": "exitone", "country": "de", "country_name": "Germany",
                            "as": "AS24940", "as_name": "Hetzner Online GmbH",
                            "first_seen": "2020-01-01 00:00:00",
                            "last_seen": "2024-03-01 11:00:00"}
    assert (or_v4["nickname"], or_v6["ip"]) == ("exitone", "2a01:4f9::1")
    assert middle is None  # not an exit
    assert differs["nickname"] == "differs"
    assert lookup.problems.count == 2
    assert [p.message for p in lookup.problems.shown] == [
        "relays[2]: not an IP address: 'bad'", "relays[3]: not an object"]
    only_listed = load(tmp_path, text, file="details.json", or_addresses=False)
    assert rows(only_listed, "95.216.9.9", "95.216.1.1")[1] is None


def test_a_broken_onionoo_document_is_an_error(tmp_path):
    with pytest.raises(LookupSourceError, match="not JSON"):
        load(tmp_path, '{"relays": [', file="details.json")
    with pytest.raises(LookupSourceError, match="no 'relays' list"):
        load(tmp_path, '{"bridges": []}', file="details.json")
    with pytest.raises(ConfigError, match="or_addresses"):
        load(tmp_path, BULK, or_addresses="yes")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_list_is_an_empty_table(tmp_path, text):
    lookup = load(tmp_path, text)
    assert rows(lookup, "171.25.193.25") == [None]
    assert len(lookup.source.rows) == 0 and lookup.problems.count == 0


def test_rows_land_where_panthers_tor_helper_reads_them(tmp_path):
    from flowwarden.enrich.enricher import BoundTable, Enricher, enrichment_view

    lookup = load(tmp_path, BULK)
    enricher = Enricher([BoundTable(lookup, {"AWS.VPCFlow": ("srcAddr", "dstAddr")})])
    batch = pa.record_batch({"srcAddr": ["185.220.101.1", "10.0.0.1"],
                             "dstAddr": ["10.0.0.2", "10.0.0.3"]})
    enriched = enricher.enrich(batch, "AWS.VPCFlow").column("p_enrichment").to_pylist()
    first, second = (enrichment_view(value) for value in enriched)
    # panther_tor_helpers.TorExitNodes(event).ip_address("srcAddr") reads exactly this path
    assert first["tor_exit_nodes"]["srcAddr"]["ip"] == "185.220.101.1"
    assert "dstAddr" not in first["tor_exit_nodes"]
    assert second is None
