import doctest

import pyarrow as pa
import pytest

from flowwarden.enrich.sources import SOURCE_KINDS, LookupSourceError, notation, stix
from flowwarden.enrich.sources.problems import SHOWN, Problems
from flowwarden.errors import ConfigError, Location
from tests.enrich.sources.helpers import write

KINDS = ["aws-ip-ranges", "mmdb", "tor-exits", "ioc-csv", "stix"]


def test_every_documented_kind_is_registered():
    assert sorted(SOURCE_KINDS) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_file_is_an_error_naming_it(tmp_path, kind):
    path = str(tmp_path / "missing")
    with pytest.raises(LookupSourceError) as raised:
        SOURCE_KINDS[kind](path, {})
    assert raised.value.location == Location(path)
    assert "No such file" in raised.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_file_gives_a_lookup_that_matches_nothing(tmp_path, kind):
    lookup = SOURCE_KINDS[kind](write(tmp_path, "empty", ""), {"name": "t"})
    matched = lookup.match(pa.array(["10.0.0.1", "2001:db8::1", None, "x"]))
    assert lookup.name == "t"
    assert matched.type == lookup.row_type and matched.null_count == 4


@pytest.mark.parametrize("kind", KINDS)
def test_a_name_that_is_not_text_is_a_config_error(tmp_path, kind):
    with pytest.raises(ConfigError, match="'name'"):
        SOURCE_KINDS[kind](write(tmp_path, "empty", ""), {"name": 3})


@pytest.mark.parametrize("kind", KINDS)
def test_no_key_asked_gives_no_row(tmp_path, kind):
    lookup = SOURCE_KINDS[kind](write(tmp_path, "empty", ""), {})
    assert len(lookup.match(pa.array([], pa.string()))) == 0


def test_problems_keep_a_count_and_the_first_few():
    problems = Problems("feed.csv")
    for line in range(1, SHOWN + 6):
        problems.add("bad", line)
    assert problems.count == SHOWN + 5 and len(problems.shown) == SHOWN
    assert str(problems.shown[1]) == "feed.csv:2: bad"
    assert problems.summary().startswith(f"feed.csv: {SHOWN + 5} entries skipped (first: ")
    assert Problems("clean.csv").summary() == ""


@pytest.mark.parametrize("module", [stix, notation])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("text", [
    "192.0.2.1", "192.0.2.1/32", "10.0.0.0/8", "10.1.2.3/8", "0.0.0.0/0", "1.2.3.4/31",
    "255.255.255.255/1", "01.2.3.4", "1.2.3.4/33", "1.2.3.4/08", "1.2.3", " 1.2.3.4", "[::1]",
    "2001:DB8::1/48", "::ffff:1.2.3.4", "fe80::1%eth0", "", "x", "1.2.3.4/",
])
def test_the_fast_network_keys_agree_with_ipaddress(text):
    network = notation.parse_network(text)
    expected = None if network is None else notation.network_text(network)
    assert notation.network_key(text) == expected
    assert notation.network_keys(pa.array([text, None])).to_pylist() == [expected, None]
