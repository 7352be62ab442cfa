import json

import pytest

from flowwarden.enrich.sources import SOURCE_KINDS, LookupSourceError
from flowwarden.errors import Location
from tests.enrich.sources.helpers import problem_texts, rows, write


def ranges(prefixes, ipv6_prefixes=()):
    return json.dumps({"syncToken": "1700000000", "createDate": "2023-11-14-22-13-20",
                       "prefixes": list(prefixes), "ipv6_prefixes": list(ipv6_prefixes)}, indent=2)


def v4(prefix, service, region="us-east-1", group=None):
    return {"ip_prefix": prefix, "region": region, "service": service,
            "network_border_group": group or region}


def load(tmp_path, text, **options):
    return SOURCE_KINDS["aws-ip-ranges"](write(tmp_path, "ip-ranges.json", text), options)


def test_the_longest_prefix_answers_with_the_services_of_every_prefix_containing_it(tmp_path):
    lookup = load(tmp_path, ranges(
        [v4("3.0.0.0/9", "AMAZON"), v4("3.5.140.0/22", "AMAZON", "ap-northeast-2"),
         v4("3.5.140.0/22", "S3", "ap-northeast-2"), v4("3.5.140.0/24", "EC2", "ap-northeast-2",
                                                         "ap-northeast-2-wl1")],
        [{"ipv6_prefix": "2600:1f00::/24", "region": "GLOBAL", "service": "AMAZON",
          "network_border_group": "GLOBAL"}]), name="aws")
    assert lookup.name == "aws"
    narrow, wide, middle, v6, outside = rows(
        lookup, "3.5.140.7", "3.1.2.3", "3.5.141.9", "2600:1f00::5", "8.8.8.8")
    assert narrow == {"ip_prefix": "3.5.140.0/24", "region": "ap-northeast-2",
                      "network_border_group": "ap-northeast-2-wl1", "service": "EC2",
                      "services": ["AMAZON", "EC2", "S3"]}
    assert wide == {"ip_prefix": "3.0.0.0/9", "region": "us-east-1",
                    "network_border_group": "us-east-1", "service": "AMAZON",
                    "services": ["AMAZON"]}
    assert (middle["ip_prefix"], middle["service"], middle["services"]) == (
        "3.5.140.0/22", "S3", ["AMAZON", "S3"])
    assert (v6["ip_prefix"], v6["region"]) == ("2600:1f00::/24", "GLOBAL")
    assert outside is None
    assert lookup.problems.count == 0


def test_services_of_a_sibling_prefix_do_not_leak_into_another(tmp_path):
    lookup = load(tmp_path, ranges([v4("10.0.0.0/8", "AMAZON"), v4("10.1.0.0/16", "EC2"),
                                    v4("10.2.0.0/16", "S3"), v4("10.2.3.0/24", "ROUTE53")]))
    first, second = rows(lookup, "10.1.9.9", "10.2.3.4")
    assert first["services"] == ["AMAZON", "EC2"]
    assert second["services"] == ["AMAZON", "ROUTE53", "S3"]
    assert second["service"] == "ROUTE53"


def test_bad_entries_are_counted_with_where_they_are_and_the_rest_still_match(tmp_path):
    lookup = load(tmp_path, ranges([v4("300.0.0.0/8", "EC2"), "not an object",
                                    {"region": "x", "service": "S3"}, v4("52.0.0.0/8", "EC2")]))
    assert lookup.problems.count == 3
    path = str(tmp_path / "ip-ranges.json")
    assert problem_texts(lookup) == [
        f"{path}: prefixes[0]: ip_prefix '300.0.0.0/8' is not a CIDR prefix",
        f"{path}: prefixes[1]: not an object",
        f"{path}: prefixes[2]: ip_prefix None is not a CIDR prefix",
    ]
    assert rows(lookup, "52.1.1.1")[0]["service"] == "EC2"


def test_an_empty_file_is_an_empty_table(tmp_path):
    lookup = load(tmp_path, "")
    assert rows(lookup, "3.5.140.7", "::1") == [None, None]
    assert len(lookup.source.rows) == 0 and lookup.problems.count == 0


def test_a_file_that_is_not_json_is_an_error_at_its_line_and_column(tmp_path):
    with pytest.raises(LookupSourceError) as raised:
        load(tmp_path, '{\n  "prefixes": [\n    {"ip_prefix": }\n')
    assert raised.value.location == Location(str(tmp_path / "ip-ranges.json"), 3, 19)
    with pytest.raises(LookupSourceError, match="'prefixes' is not a list"):
        load(tmp_path, '{"prefixes": {}}')
    with pytest.raises(LookupSourceError, match="top level is not an object"):
        load(tmp_path, "[1, 2]")
