"""The AWS VPC flow log field table: AWS name, Panther column name, Arrow type, version.

Sources: the AWS VPC user guide field table (v2-v5), Beats' mapping for v6-v8 and Panther's
AWS.VPCFlow schema for the column names (gathered in the project's research notes on flow-log
formats).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

LOG_TYPE = "AWS.VPCFlow"
INT = pa.int64()
STR = pa.string()
TIME = pa.timestamp("s", tz="UTC")


@dataclass(frozen=True, slots=True)
class Field:
    """One documented flow log field."""

    aws: str
    panther: str
    type: pa.DataType
    version: int


def _f(aws: str, panther: str, type_: pa.DataType, version: int) -> Field:
    return Field(aws, panther, type_, version)


def camel(name: str) -> str:
    """camelCase an AWS field name (``-`` or ``_`` separated) for a column name.

    >>> camel("encryption-status")
    'encryptionStatus'
    """
    head, *rest = re.split(r"[-_]", name)
    return head.lower() + "".join(part[:1].upper() + part[1:].lower() for part in rest)


_ECS = [
    "cluster-arn",
    "cluster-name",
    "container-instance-arn",
    "container-instance-id",
    "container-id",
    "second-container-id",
    "service-name",
    "task-definition-arn",
    "task-arn",
    "task-id",
]
_TGW_STR = [
    "resource-type",
    "tgw-id",
    "tgw-attachment-id",
    "tgw-src-vpc-account-id",
    "tgw-dst-vpc-account-id",
    "tgw-src-vpc-id",
    "tgw-dst-vpc-id",
    "tgw-src-subnet-id",
    "tgw-dst-subnet-id",
    "tgw-src-eni",
    "tgw-dst-eni",
    "tgw-src-az-id",
    "tgw-dst-az-id",
    "tgw-pair-attachment-id",
]
_TGW_INT = [
    "packets-lost-no-route",
    "packets-lost-blackhole",
    "packets-lost-mtu-exceeded",
    "packets-lost-ttl-expired",
]

FIELDS: tuple[Field, ...] = (
    _f("version", "version", INT, 2),
    _f("account-id", "account", STR, 2),
    _f("interface-id", "interfaceId", STR, 2),
    _f("srcaddr", "srcAddr", STR, 2),
    _f("dstaddr", "dstAddr", STR, 2),
    _f("srcport", "srcPort", INT, 2),
    _f("dstport", "dstPort", INT, 2),
    _f("protocol", "protocol", INT, 2),
    _f("packets", "packets", INT, 2),
    _f("bytes", "bytes", INT, 2),
    _f("start", "start", TIME, 2),
    _f("end", "end", TIME, 2),
    _f("action", "action", STR, 2),
    _f("log-status", "status", STR, 2),
    _f("vpc-id", "vpcId", STR, 3),
    _f("subnet-id", "subNetId", STR, 3),
    _f("instance-id", "instanceId", STR, 3),
    _f("tcp-flags", "tcpFlags", INT, 3),
    _f("type", "trafficType", STR, 3),
    _f("pkt-srcaddr", "pktSrcAddr", STR, 3),
    _f("pkt-dstaddr", "pktDstAddr", STR, 3),
    _f("region", "region", STR, 4),
    _f("az-id", "azId", STR, 4),
    _f("sublocation-type", "sublocationType", STR, 4),
    _f("sublocation-id", "sublocationId", STR, 4),
    _f("pkt-src-aws-service", "pktSrcAwsService", STR, 5),
    _f("pkt-dst-aws-service", "pktDstAwsService", STR, 5),
    _f("flow-direction", "flowDirection", STR, 5),
    _f("traffic-path", "trafficPath", INT, 5),
    *(_f(name, camel(name), STR, 6) for name in _TGW_STR),
    *(_f(name, camel(name), INT, 6) for name in _TGW_INT),
    *(_f(f"ecs-{name}", camel(f"ecs-{name}"), STR, 7) for name in _ECS),
    _f("reject-reason", "rejectReason", STR, 8),
)

BY_AWS: dict[str, Field] = {f.aws: f for f in FIELDS}
BY_PANTHER: dict[str, Field] = {f.panther: f for f in FIELDS}
# Parquet column names are the AWS names with "_" for "-" (Athena's DDL, the AWS user guide).
BY_SNAKE: dict[str, Field] = {f.aws.replace("-", "_"): f for f in FIELDS}

DEFAULT_V2: tuple[str, ...] = tuple(f.aws for f in FIELDS if f.version == 2)
IP_COLUMNS: tuple[str, ...] = ("srcAddr", "dstAddr", "pktSrcAddr", "pktDstAddr")
ACTIONS = frozenset({"ACCEPT", "REJECT"})
FORMAT_TOKEN = re.compile(r"\$\{([A-Za-z0-9_-]+)\}")
# Values above this are milliseconds, not seconds (flowlogs-reader saw ms start/end in the wild).
MS_THRESHOLD = 100_000_000_000


def parse_format(text: str) -> tuple[str, ...]:
    """Field names from an AWS format string (``${version} ${srcaddr}``) or a plain name list.

    >>> parse_format("${version} ${account-id}")
    ('version', 'account-id')
    """
    names = FORMAT_TOKEN.findall(text) or text.replace(",", " ").split()
    return tuple(n.strip().lower().replace("_", "-") for n in names)


def field_for(name: str) -> Field:
    """The field an AWS (dash or underscore) name denotes; unknown names become string fields."""
    key = name.lower().replace("_", "-")
    if key in BY_AWS:
        return BY_AWS[key]
    return Field(key, camel(key), STR, 0)


def schema(extra: tuple[Field, ...] = ()) -> pa.Schema:
    """The AWS.VPCFlow columns (every known field, then any unknown ones), without p_ columns."""
    return pa.schema([pa.field(f.panther, f.type) for f in (*FIELDS, *extra)])
