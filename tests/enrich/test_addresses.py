from __future__ import annotations

import ipaddress

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from flowwarden.enrich.addresses import parse_addresses

OCTET_TEXT = st.one_of(st.integers(0, 255).map(str), st.integers(0, 999).map(str),
                       st.sampled_from(["00", "01", "007", "", "-1", "٣", "1 ", "0x1"]))
V4_LIKE = st.lists(OCTET_TEXT, min_size=3, max_size=5).map(".".join)
ANY_TEXT = st.one_of(
    V4_LIKE,
    st.integers(0, 2**128 - 1).map(lambda v: str(ipaddress.IPv6Address(v))),
    st.integers(0, 2**32 - 1).map(lambda v: f"::ffff:{ipaddress.IPv4Address(v)}"),
    st.sampled_from(["fe80::1%eth0", "::", "1.2.3.4/32", "localhost", "::ffff:1.2.3.4",
                     "2001:DB8::1", "1:2:3:4:5:6:7:8:9"]),
    st.text(max_size=8),
    st.none(),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(ANY_TEXT, max_size=40))
def test_parsing_agrees_with_ipaddress(texts: list[str | None]) -> None:
    parsed = parse_addresses(pa.array(texts, pa.string()))
    for i, text in enumerate(texts):
        try:
            address = ipaddress.ip_address(text) if text is not None else None
        except ValueError:
            address = None
        assert parsed.v4[i] == isinstance(address, ipaddress.IPv4Address), text
        assert parsed.v6[i] == isinstance(address, ipaddress.IPv6Address), text
        if isinstance(address, ipaddress.IPv4Address):
            assert int(parsed.v4_value[i]) == int(address)
        if isinstance(address, ipaddress.IPv6Address):
            assert (int(parsed.v6_hi[i]) << 64) | int(parsed.v6_lo[i]) == int(address)
