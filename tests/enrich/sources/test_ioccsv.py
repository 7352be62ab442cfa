import pyarrow as pa
import pytest

from flowwarden.enrich.sources import SOURCE_KINDS, LookupSourceError
from flowwarden.errors import Location
from tests.enrich.sources.helpers import problem_texts, rows, write

FEED = """\
# exported from the threat-intel platform
indicator,confidence,source,description
198.51.100.7,90,feed-a,C2 server
203.0.113.0/24,medium,feed-b,scanner network
203.0.113.128/25,40,feed-b,
2001:db8:bad::/48,high,feed-c,"bad, v6"
not-an-ip,50,feed-a,typo
198.51.100.8,500,feed-a,confidence out of range
198.51.100.9,10,too,many,fields
198.51.100.7,20,feed-d,less sure duplicate
"""


def load(tmp_path, text, file="iocs.csv", **options):
    return SOURCE_KINDS["ioc-csv"](write(tmp_path, file, text), options)


def test_rows_are_keyed_by_network_with_the_files_columns(tmp_path):
    lookup = load(tmp_path, FEED, file="iocs.csv.gz", name="threat_intel")
    assert lookup.name == "threat_intel"
    assert lookup.row_type == pa.struct([("indicator", pa.string()), ("confidence", pa.int64()),
                                         ("source", pa.string()), ("description", pa.string())])
    host, wide, narrow, v6, outside = rows(
        lookup, "198.51.100.7", "203.0.113.5", "203.0.113.200", "2001:db8:bad::1", "192.0.2.1")
    assert host == {"indicator": "198.51.100.7", "confidence": 90, "source": "feed-a",
                    "description": "C2 server"}
    assert wide == {"indicator": "203.0.113.0/24", "confidence": 50, "source": "feed-b",
                    "description": "scanner network"}
    assert (narrow["indicator"], narrow["confidence"], narrow["description"]) == (
        "203.0.113.128/25", 40, None)
    assert (v6["confidence"], v6["description"]) == (85, "bad, v6")
    assert outside is None


def test_bad_lines_are_counted_with_their_line_numbers(tmp_path):
    lookup = load(tmp_path, FEED)
    path = str(tmp_path / "iocs.csv")
    assert problem_texts(lookup) == [
        f"{path}:7: indicator 'not-an-ip' is not an address or CIDR",
        f"{path}:8: confidence '500' is not a number from 0 to 100",
        f"{path}:9: 5 fields where the header has 4",
    ]
    # a bad confidence loses the confidence, not the indicator
    assert rows(lookup, "198.51.100.8")[0]["confidence"] is None


def test_a_network_listed_twice_keeps_its_most_confident_row(tmp_path):
    assert rows(load(tmp_path, FEED), "198.51.100.7")[0]["source"] == "feed-a"


def test_the_indicator_column_can_be_named(tmp_path):
    text = "ts,dst,tag\n2024-01-01,192.0.2.0/28,x\n"
    lookup = load(tmp_path, text, column="dst")
    assert rows(lookup, "192.0.2.3") == [{"ts": "2024-01-01", "dst": "192.0.2.0/28", "tag": "x"}]
    with pytest.raises(LookupSourceError, match="no indicator column"):
        load(tmp_path, text)
    with pytest.raises(LookupSourceError, match="no column 'src'"):
        load(tmp_path, text, column="src")


def test_a_byte_order_mark_and_a_capitalised_confidence_column_are_understood(tmp_path):
    lookup = load(tmp_path, "\ufeffIP,Confidence\n192.0.2.1,low\n192.0.2.1,High\n")
    assert lookup.row_type.field("Confidence").type == pa.int64()
    assert rows(lookup, "192.0.2.1") == [{"IP": "192.0.2.1", "Confidence": 85}]


def test_a_header_that_is_not_csv_is_an_error(tmp_path):
    with pytest.raises(LookupSourceError, match="the header is not CSV"):
        load(tmp_path, 'indicator,"source"x\n1.2.3.4,a\n')


def test_an_empty_indicator_is_counted(tmp_path):
    lookup = load(tmp_path, "indicator,source\n ,a\n1.2.3.5,c\n")
    assert problem_texts(lookup) == [f"{tmp_path / 'iocs.csv'}:2: indicator is empty"]
    assert rows(lookup, "1.2.3.5") == [{"indicator": "1.2.3.5", "source": "c"}]


def test_host_bits_of_a_network_are_cleared(tmp_path):
    lookup = load(tmp_path, "ip\n10.1.2.3/8\n")
    assert rows(lookup, "10.200.0.1") == [{"ip": "10.0.0.0/8"}]


def test_a_broken_header_is_an_error_at_its_line(tmp_path):
    with pytest.raises(LookupSourceError) as raised:
        load(tmp_path, "# comment\nindicator,source,source\n1.2.3.4,a,b\n")
    assert raised.value.location == Location(str(tmp_path / "iocs.csv"), 2)
    assert "repeats source" in raised.value.message


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "indicator,confidence\n"])
def test_an_empty_file_is_an_empty_table(tmp_path, text):
    lookup = load(tmp_path, text)
    assert rows(lookup, "1.2.3.4") == [None]
    assert len(lookup.source.rows) == 0 and lookup.problems.count == 0
