"""IP probes: what the SQL renderer asks the engine to compute per row before a query.

A probe is an IP predicate family over one string column. Its code for a value is a small bit
set: bit 0 says the Python call succeeded (no exception); the other bits hold the predicates'
results, and ``TRUTHY`` whether the value itself is truthy, so SQL can apply constant fallbacks
(``ip_network(x or "0.0.0.0/32")``) without reading the string. ``classify`` is the reference:
it runs the running interpreter's ``ipaddress`` on the value (after any fallbacks).

>>> Probe("check", "network", True).classify("10.0.0.1") & Probe.bit("is_private") != 0
True
>>> Probe("check", "network", True).classify("10.0.0.1/8")  # host bits set: raises
0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowwarden.logic.ir import IP_ATTRS, Scalar
from flowwarden.logic.render.python import in_cidrs, ip_parse

VALID = 1
MEMBER = 2
TRUTHY = 0x4000  # set by the engine on rows whose value is truthy (fallbacks are not taken)
ATTR_BITS = {attr: 2 << i for i, attr in enumerate(IP_ATTRS)}


@dataclass(frozen=True, slots=True)
class Probe:
    """``kind`` "check" (``.is_*`` bits) or "cidr" (membership in ``networks``, in order)."""

    kind: str
    parse: str
    strict: bool
    networks: tuple[str, ...] = ()
    fallback: tuple[Scalar, ...] = ()

    @staticmethod
    def bit(attr: str) -> int:
        """The code bit holding ``attr`` for check probes."""
        return ATTR_BITS[attr]

    def with_fallback(self, fallback: tuple[Scalar, ...]) -> Probe:
        return Probe(self.kind, self.parse, self.strict, self.networks, fallback)

    def operand(self, value: Any) -> Any:
        """``value or fallback[0] or fallback[1] ...``, as Python's ``or`` picks."""
        for default in self.fallback:
            if value:
                break
            value = default
        return value

    def classify(self, value: Any) -> int:
        """The code Python's ``ipaddress`` gives ``value`` (after fallbacks); 0 if it raises."""
        value = self.operand(value)
        try:
            if self.kind == "cidr":
                return VALID | (MEMBER if in_cidrs(value, self.networks, self.strict) else 0)
            parsed = ip_parse(value, self.parse, self.strict)
            code = VALID
            for attr, bit in ATTR_BITS.items():
                if getattr(parsed, attr):
                    code |= bit
            return code
        except Exception:  # noqa: BLE001 - any exception is "the rule raises here"
            return 0
