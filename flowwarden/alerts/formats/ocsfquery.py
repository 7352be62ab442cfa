"""OCSF findings built by DuckDB from a scan's alert tables: ``ocsf.to_finding`` as one query.

``finding_sql`` computes, for every alert of a ``tablequery.QueriedAlerts``, the
``ocsf.FINDING_SCHEMA`` columns (a null where ``to_finding`` leaves an attribute out, so an
empty struct or list is null; ``ocsfjson`` renders them as ``finding_json`` text), its Security
Lake partition, and whether the query can render it at all. The first
event's flow comes out of its sample (alert JSON text, parsed once with ``json_extract``), or
out of the alert context; rule-level parts (analytic, ATT&CK, data sources) are computed in
Python once per rule (``rule_parts``); whether an address is an IP address is decided by regular
expression for IPv4 and by Python's ``ipaddress`` once per distinct other value (``is_ip``).

Python's semantics are kept value by value (``pysql``): ``_text`` (None, ``""``, ``-`` are no
value; an integer is its digits), ``_int`` (booleans are no value), truthiness where
``to_finding`` tests it. A value the query does not reproduce (a JSON type the Python would ``str()`` differently, a
context whose pruning needs more than dropping top-level nulls and empties, an integer outside
the Parquet column's range, non-ASCII text that ``json.dumps`` would escape) marks the alert
``exotic`` (``exotic_parquet``: only its Parquet row): the caller renders that alert with
``to_finding``. ``tests/alerts/test_ocsftable.py`` compares both on every alert.
"""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa

from flowwarden import __version__
from flowwarden.alerts.formats.jsonsql import iso_micros
from flowwarden.alerts.formats.ocsf import (
    BOUNDARIES,
    CATEGORY_UID,
    CLASS_UID,
    CONNECTION,
    ENDPOINT,
    FINDING_SCHEMA,
    OCSF_LOG_TYPE,
    OCSF_VERSION,
    PROTOCOLS,
    SEVERITY_CAPTIONS,
    SEVERITY_IDS,
    rule_info,
)
from flowwarden.alerts.formats.pysql import (
    INT32,
    TEXT_KINDS,
    barrier,
    epoch_ms_sql,
    int32,
    is_ascii,
    is_ip,
    json_kind,
    kind_in,
    outside_int32,
    pack,
    py_int,
    py_text,
    sql_type,
    string_of,
    struct_of,
    struct_sql,
    truthy_text,
)
from flowwarden.alerts.formats.securitylake import MAX_PART, UNKNOWN
from flowwarden.alerts.tablequery import ALERT_VALUES, alerts_from, in_seqs
from flowwarden.logic.render.duckdb_sql import json_string
from flowwarden.logic.render.sqltext import sql_literal

FINDING_INFO = FINDING_SCHEMA.field("finding_info").type
RULE_JSON = ("types", "data_sources", "analytic", "attacks")  # also as JSON text, per rule
RULE_PARTS = pa.schema([
    ("rule", pa.string()), ("types", FINDING_INFO.field("types").type),
    ("data_sources", FINDING_INFO.field("data_sources").type),
    ("analytic", FINDING_INFO.field("analytic").type),
    ("attacks", FINDING_INFO.field("attacks").type),
    ("log_types_text", pa.string()),
    *((f"{name}_json", pa.string()) for name in RULE_JSON)])
# The sample keys an AWS.VPCFlow first event gives, and the context keys that stand in for them
# when the alert has no sample (``ocsf.first_flow``).
VPC_KEYS = ("srcAddr", "dstAddr", "pktSrcAddr", "pktDstAddr", "srcPort", "dstPort",
            "pktSrcAwsService", "pktDstAwsService", "flowDirection", "interfaceId", "instanceId",
            "vpcId", "subNetId", "protocol", "trafficPath", "trafficType", "tcpFlags", "region",
            "account", "azId")
FROM_CONTEXT = {"srcAddr": "source_ip", "dstAddr": "destination_ip", "srcPort": "source_port",
                "dstPort": "destination_port", "protocol": "protocol",
                "interfaceId": "interface_id", "vpcId": "vpc_id", "account": "account_id",
                "region": "region"}
ENDPOINT_KINDS = {ENDPOINT.field(i).name: ENDPOINT.field(i).type for i in range(ENDPOINT.num_fields)}
CONNECTION_KINDS = {CONNECTION.field(i).name: CONNECTION.field(i).type
                    for i in range(CONNECTION.num_fields)}
SIDES = ("src_endpoint", "dst_endpoint")
CLOUD_PATHS = ("cloud", "cloud.region", "cloud.zone", "cloud.account", "cloud.account.uid",
               "cloud.account_uid")
SAMPLE_PATHS = (*VPC_KEYS, "p_log_type", *SIDES,
                *(f"{side}.{name}" for side in SIDES for name in ENDPOINT_KINDS),
                "connection_info", *(f"connection_info.{name}" for name in CONNECTION_KINDS),
                *CLOUD_PATHS)
CONTEXT_PATHS = tuple(dict.fromkeys(("region", "account_id", *FROM_CONTEXT.values())))


def _path(key: str) -> str:
    return "$." + key


def _at(column: str, paths: tuple[str, ...], key: str) -> str:
    """The JSON value at ``key`` of a list made by ``json_extract(..., paths)``."""
    return f"{column}[{paths.index(key) + 1}]"


# -- the pieces of a finding ---------------------------------------------------------------
def _vpc_values() -> dict[str, str]:
    """The VPC flow record's JSON values: the sample's, or the context's stand-ins."""
    values = {}
    for key in VPC_KEYS:
        sampled = _at("s", SAMPLE_PATHS, key)
        standin = _at("c", CONTEXT_PATHS, FROM_CONTEXT[key]) if key in FROM_CONTEXT else "NULL"
        values[f"v_{key}"] = f"CASE WHEN has_sample THEN {sampled} ELSE {standin} END"
    return values


def _vpc_endpoint(side: str, port: str, service: str) -> str:
    """``ocsf._endpoint`` and ``_identified`` of one side (``eni``: the ENI's side)."""
    eni = f"(eni_side = {sql_literal(side)})"
    fields = {"instance_uid": "instanceId", "interface_uid": "interfaceId", "vpc_uid": "vpcId",
              "subnet_uid": "subNetId"}
    owned = {key: f"CASE WHEN {eni} THEN {truthy_text('v_' + column)} END"
             for key, column in fields.items()}
    shown = f"{side}_shown"
    uid = f"CASE WHEN {shown} IS NULL THEN coalesce({owned['instance_uid']}, " \
          f"{owned['interface_uid']}) END"
    port_value = py_int("v_" + port)
    struct = struct_sql(ENDPOINT_KINDS, {
        "name": shown, "uid": uid, "ip": f"CASE WHEN {is_ip(shown)} THEN {shown} END",
        "port": f"CASE WHEN {port_value} BETWEEN 0 AND 65535 THEN {port_value} END",
        "svc_name": truthy_text("v_" + service),
        "intermediate_ips": f"CASE WHEN {side}_packet IS NOT NULL AND {side}_addr IS NOT NULL "
                            f"AND {side}_packet <> {side}_addr AND {is_ip(side + '_addr')} "
                            f"THEN [{side}_addr] END",
        **owned})
    return f"CASE WHEN {shown} IS NOT NULL OR ({uid}) IS NOT NULL THEN {struct} END"


def _vpc_connection() -> str:
    protocol, path = py_int("v_protocol"), py_int("v_trafficPath")
    kind = json_kind("v_trafficType")
    version = (f"CASE WHEN {kind} = 'VARCHAR' THEN CASE {string_of('v_trafficType')} "
               "WHEN 'IPv4' THEN 4 WHEN 'IPv6' THEN 6 END END")
    names = " ".join(f"WHEN {n} THEN {sql_literal(name)}" for n, name in PROTOCOLS.items())
    bounds = " ".join(f"WHEN {n} THEN {sql_literal(name)}" for n, name in BOUNDARIES.items())
    return struct_sql(CONNECTION_KINDS, {
        "direction_id": "CASE direction WHEN 'ingress' THEN 1 WHEN 'egress' THEN 2 ELSE 0 END",
        "direction": "CASE direction WHEN 'ingress' THEN 'Inbound' WHEN 'egress' THEN "
                     "'Outbound' ELSE 'Unknown' END",
        "protocol_num": int32(protocol), "protocol_name": f"CASE {protocol} {names} END",
        "protocol_ver": f"CASE WHEN ({version}) IS NOT NULL THEN {string_of('v_trafficType')} END",
        "protocol_ver_id": version, "tcp_flags": int32(py_int("v_tcpFlags")),
        "boundary_id": f"CASE WHEN {path} BETWEEN 1 AND 8 THEN {path} + 3 END",
        "boundary": f"CASE {path} {bounds} END"})


def _ocsf_endpoint(side: str) -> tuple[str, list[str]]:
    """``ocsf._from_ocsf``'s endpoint of one side, and the conditions that make it exotic."""
    raw = {name: _at("s", SAMPLE_PATHS, f"{side}.{name}") for name in ENDPOINT_KINDS}
    exotic = [f"NOT {kind_in(_at('s', SAMPLE_PATHS, side), 'OBJECT')}"]
    values = {}
    for name, kind in ENDPOINT_KINDS.items():
        v = raw[name]
        if kind == pa.int32():
            exotic.append(f"NOT {kind_in(v, 'BIGINT', 'UBIGINT')}")
            exotic.append(outside_int32(py_int(v)))
            values[name] = int32(py_int(v))
        elif pa.types.is_list(kind):
            exotic.append(f"NOT {kind_in(v, 'ARRAY')} OR NOT coalesce(list_bool_and(list_transform("
                          f"json_type({v}, '$[*]'), lambda t: t = 'VARCHAR')), true)")
            values[name] = (f"CASE WHEN json_array_length({v}) > 0 THEN "
                            f"CAST(json_extract_string({v}, '$[*]') AS VARCHAR[]) END")
        else:
            exotic.append(f"NOT {kind_in(v, 'VARCHAR')}")
            values[name] = string_of(v)
    ip, name, uid = values["ip"], values["name"], values["uid"]
    values["ip"] = f"CASE WHEN {is_ip(ip)} THEN {ip} END"
    named = (f"CASE WHEN coalesce({name}, '') = '' AND coalesce({uid}, '') = '' "
             f"AND coalesce({ip}, '') <> '' THEN {ip} ELSE {name} END")
    lacking = f"(coalesce({named}, '') = '' AND coalesce({uid}, '') = '')"
    instance, interface = values["instance_uid"], values["interface_uid"]
    fallback = (f"CASE WHEN coalesce({instance}, '') <> '' THEN {instance} "
                f"WHEN coalesce({interface}, '') <> '' THEN {interface} END")
    values["name"], values["uid"] = named, f"CASE WHEN {lacking} THEN {fallback} ELSE {uid} END"
    return (f"CASE WHEN NOT {lacking} OR ({fallback}) IS NOT NULL THEN "
            f"{struct_sql(ENDPOINT_KINDS, values)} END", exotic)


def _ocsf_connection() -> tuple[str, list[str]]:
    exotic = [f"NOT {kind_in(_at('s', SAMPLE_PATHS, 'connection_info'), 'OBJECT')}"]
    values = {}
    for name, kind in CONNECTION_KINDS.items():
        v = _at("s", SAMPLE_PATHS, f"connection_info.{name}")
        if kind == pa.int32():
            exotic += [f"NOT {kind_in(v, 'BIGINT', 'UBIGINT')}", outside_int32(py_int(v))]
            values[name] = int32(py_int(v))
        else:
            exotic.append(f"NOT {kind_in(v, 'VARCHAR')}")
            values[name] = string_of(v)
    values["direction_id"] = f"coalesce({values['direction_id']}, 0)"
    return struct_sql(CONNECTION_KINDS, values), exotic


def _ocsf_cloud() -> tuple[dict[str, str], list[str]]:
    """The OCSF sample's region, zone and account as JSON values, and what makes them exotic."""
    def at(key: str) -> str:
        return _at("s", SAMPLE_PATHS, key)
    uid, other = at("cloud.account.uid"), at("cloud.account_uid")
    truthy = f"({truthy_text(uid)} IS NOT NULL)"
    exotic = [f"NOT {kind_in(at('cloud'), 'OBJECT')}", f"NOT {kind_in(at('cloud.account'), 'OBJECT')}",
              *(f"NOT {kind_in(at(k), *TEXT_KINDS)}" for k in ("cloud.region", "cloud.zone",
                                                        "cloud.account.uid", "cloud.account_uid"))]
    return ({"region": at("cloud.region"), "zone": at("cloud.zone"),
             "account": f"CASE WHEN {truthy} THEN {uid} ELSE {other} END"}, exotic)


def _vpc_exotic() -> list[str]:
    texts = ("srcAddr", "dstAddr", "pktSrcAddr", "pktDstAddr", "pktSrcAwsService",
             "pktDstAwsService", "interfaceId", "instanceId", "vpcId", "subNetId", "region",
             "account", "azId")
    ints = ("srcPort", "dstPort", "protocol", "trafficPath", "tcpFlags")
    return [*(f"NOT {kind_in('v_' + k, *TEXT_KINDS)}" for k in texts),
            *(f"NOT {kind_in('v_' + k, 'BOOLEAN', 'BIGINT', 'UBIGINT')}" for k in ints),
            outside_int32(py_int("v_protocol")), outside_int32(py_int("v_tcpFlags"))]


def _pruned_context() -> tuple[str, str]:
    """The alert context as ``_prune`` leaves it (JSON text, NULL when it is dropped), and
    whether the query cannot say: a context whose text holds no null and no empty container
    is its own pruning; one with them only among its top-level members loses those members."""
    clean = "NOT (contains(context, 'null') OR contains(context, '{}') OR contains(context, '[]'))"
    entries = "map_entries(CAST(CAST(context AS JSON) AS MAP(VARCHAR, JSON)))"
    empty = "CAST(e.value AS VARCHAR) IN ('{}', '[]')"
    flat = (f"coalesce(list_bool_and(list_transform({entries}, lambda e: e.value IS NULL OR "
            f"json_type(e.value) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'BOOLEAN') OR {empty})), "
            "true)")
    value = (f"CASE json_type(e.value) WHEN 'VARCHAR' THEN {json_string(string_of('e.value'))} "
             f"ELSE {string_of('e.value')} END")
    kept = f"list_filter({entries}, lambda e: e.value IS NOT NULL AND NOT {empty})"
    rebuilt = (f"nullif('{{' || array_to_string(list_transform({kept}, lambda e: "
               f"{json_string('e.key')} || ': ' || {value}), ', ') || '}}', '{{}}')")
    unusable = "context IS NULL OR context = '{}' OR json_type(context) <> 'OBJECT'"
    pruned = f"CASE WHEN {unusable} THEN NULL WHEN {clean} THEN context WHEN {flat} THEN {rebuilt} END"
    return pruned, f"CASE WHEN {unusable} OR {clean} THEN false ELSE NOT {flat} END"


def _part(value: str) -> str:
    """``securitylake._safe``: path-safe, cut with a digest beyond ``MAX_PART`` characters."""
    safe = f"regexp_replace({value}, '[^A-Za-z0-9._-]', '_', 'g')"
    return (f"CASE WHEN {value} IS NULL OR {value} = '' THEN {sql_literal(UNKNOWN)} "
            f"WHEN length({safe}) <= {MAX_PART} THEN {safe} "
            f"ELSE left({safe}, {MAX_PART - 24}) || '-' || left(sha256({value}), 16) END")


def finding_sql(max_samples: int, seqs: range | None = None) -> str:
    """The query of every alert's finding (``FINDING_SCHEMA`` columns, ``seq``, ``exotic``,
    ``exotic_parquet``, the ``lake_region``/``lake_account``/``lake_day`` partition, and what
    ``ocsfjson`` reads), over the grouper's tables and ``finding_rules`` (``rule_parts``), in
    no particular order; ``seqs``: of those alerts only."""
    return _finding_select(_flows_select(fields_sql(max_samples, seqs)))


def fields_sql(max_samples: int, seqs: range | None = None) -> str:
    """Each alert's values, its first event's sample and context parsed (``s``, ``c``), and
    its flow's typed values (``v_*``, ``*_addr``, ``*_shown``, ``flow_*``, ``eni_side``)."""
    tables = alerts_from(0).tables  # the first event only: no join per sample rank
    # A first event without a sample (never read as a record) leaves Alert.samples[0] to a
    # later rank's: rare, and left to Python.
    sample = "f.sample" if max_samples else "NULL::VARCHAR"
    missing = "f.sample IS NULL" if max_samples else "false"
    values = ALERT_VALUES
    base = ", ".join([
        "a.seq", "a.id", "a.rule", "a.dedup", "a.window_us", "a.first_us", "a.last_us",
        "a.events", f"{values['unique_count']} AS unique_count", "r.threshold",
        *(f"{values[k]} AS {k}" for k in ("title", "severity", "description", "reference",
                                          "runbook")),
        "nullif(f.context, 'null') AS context", "nullif(f.destinations, 'null') AS destinations",
        f"{sample} AS sample", f"{missing} AS sample_missing", "fr.types", "fr.data_sources", "fr.analytic",
        "fr.attacks", "fr.log_types_text", "r.log_types_json",
        *(f"fr.{name}_json" for name in RULE_JSON)])
    paths = ", ".join(sql_literal(_path(p)) for p in SAMPLE_PATHS)
    context_paths = ", ".join(sql_literal(_path(p)) for p in CONTEXT_PATHS)
    log_type = _at("s", SAMPLE_PATHS, "p_log_type")
    sample_values = barrier(f"json_extract(sample, [{paths}])")
    context_values = barrier(f"CASE WHEN json_type(context) = 'OBJECT' THEN "
                              f"json_extract(context, [{context_paths}]) END")
    parsed = (f"coalesce(sample <> '{{}}', false) AS has_sample, {sample_values} AS s, "
              f"{context_values} AS c")
    ocsf = (f"has_sample AND (coalesce({json_kind(log_type)} = 'VARCHAR' AND {string_of(log_type)} = "
            f"{sql_literal(OCSF_LOG_TYPE)}, false) OR {_at('s', SAMPLE_PATHS, 'src_endpoint')} "
            "IS NOT NULL)")
    vpc = ", ".join(f"{sql} AS {name}" for name, sql in _vpc_values().items())
    direction = (f"CASE WHEN {json_kind('v_flowDirection')} = 'VARCHAR' AND "
                 f"{is_ascii(string_of('v_flowDirection'))} THEN lower({string_of('v_flowDirection')}) "
                 "END")
    sides = ", ".join(f"{py_text('v_' + a)} AS {s}_addr, {py_text('v_' + p)} AS {s}_packet"
                      for s, a, p in (("src", "srcAddr", "pktSrcAddr"),
                                      ("dst", "dstAddr", "pktDstAddr")))
    cloud, _ = _ocsf_cloud()
    layers = [
        f"{base} FROM {tables} JOIN finding_rules fr ON fr.rule = a.rule"
        + (f" WHERE {in_seqs(seqs, 'a.seq')}" if seqs else ""),
        f"*, {parsed}", f"*, {vpc}",
        f"*, {ocsf} AS is_ocsf, {direction} AS direction, {sides}",
        f"*, CASE WHEN is_ocsf THEN {cloud['region']} ELSE v_region END AS flow_region, "
        f"CASE WHEN is_ocsf THEN {cloud['account']} ELSE v_account END AS flow_account, "
        f"CASE WHEN is_ocsf THEN {cloud['zone']} ELSE v_azId END AS flow_zone, "
        "CASE WHEN direction = 'ingress' THEN 'dst' ELSE 'src' END AS eni_side, "
        "coalesce(src_packet, src_addr) AS src_shown, coalesce(dst_packet, dst_addr) AS dst_shown",
    ]
    sql = f"SELECT {layers[0]}"
    for layer in layers[1:]:
        sql = f"SELECT {layer} FROM ({sql})"
    return sql


def _flows_select(fields: str) -> str:
    """The first event's flow as finding pieces (endpoints, connection, cloud), the pruned
    context, and whether any of it is exotic, over ``fields``."""
    src_ocsf, src_exotic = _ocsf_endpoint("src_endpoint")
    dst_ocsf, dst_exotic = _ocsf_endpoint("dst_endpoint")
    connection_ocsf, connection_exotic = _ocsf_connection()
    _, cloud_exotic = _ocsf_cloud()
    pruned, unprunable = _pruned_context()
    ocsf_exotic = " OR ".join(f"({c})" for c in (*src_exotic, *dst_exotic, *connection_exotic,
                                                 *cloud_exotic))
    vpc_exotic = " OR ".join(f"({c})" for c in _vpc_exotic())
    region, account = (_at("c", CONTEXT_PATHS, k) for k in ("region", "account_id"))
    src_vpc = _vpc_endpoint("src", "srcPort", "pktSrcAwsService")
    dst_vpc = _vpc_endpoint("dst", "dstPort", "pktDstAwsService")
    exotic = f"""(context IS NOT NULL AND json_type(context) <> 'OBJECT')
        OR (CASE WHEN is_ocsf THEN {ocsf_exotic} ELSE {vpc_exotic} END)
        OR NOT {kind_in(region, *TEXT_KINDS)} OR NOT {kind_in(account, *TEXT_KINDS)}
        OR NOT {kind_in('flow_region', *TEXT_KINDS)} OR NOT {kind_in('flow_account', *TEXT_KINDS)}
        OR NOT {kind_in('flow_zone', *TEXT_KINDS)} OR {unprunable} OR events > {INT32[1]}
        OR sample_missing"""
    columns = {
        "src_endpoint": f"CASE WHEN is_ocsf THEN {src_ocsf} ELSE {src_vpc} END",
        "dst_endpoint": f"CASE WHEN is_ocsf THEN {dst_ocsf} ELSE {dst_vpc} END",
        "connection_info": f"CASE WHEN is_ocsf THEN {connection_ocsf} ELSE {_vpc_connection()} END",
        "cloud_region": f"coalesce({py_text(region)}, {py_text('flow_region')})",
        "cloud_account": f"coalesce({py_text(account)}, {py_text('flow_account')})",
        "cloud_zone": py_text("flow_zone"), "pruned_context": pruned, "exotic_flow": exotic}
    selected = ", ".join(f"{barrier(sql)} AS {name}" for name, sql in columns.items())
    return f"SELECT *, {selected} FROM ({fields})"


def _finding_select(flows: str) -> str:
    """The finding's columns over ``flows`` (``_flows_select``)."""
    severity = " ".join(f"WHEN {sql_literal(k)} THEN {v}" for k, v in SEVERITY_IDS.items())
    captions = " ".join(f"WHEN {k} THEN {sql_literal(v)}" for k, v in SEVERITY_CAPTIONS.items())
    no_endpoints = "(src_endpoint IS NULL AND dst_endpoint IS NULL)"
    data = "evidence_data"
    evidence_kind = FINDING_SCHEMA.field("evidences").type.value_type
    evidence = {f.name: f.name for f in evidence_kind if f.name != "data"}
    window = f"trim({iso_micros('window_us')}, '\"')"
    unmapped = ("map_from_entries(list_filter([" + ", ".join(
        f"{{'key': {sql_literal(k)}, 'value': {v}}}" for k, v in (
            ("alert_context", "pruned_context"), ("dedup", "dedup"), ("window_start", window),
            ("threshold", "CAST(threshold AS VARCHAR)"),
            ("unique_count", "CAST(unique_count AS VARCHAR)"),
            ("log_types", "log_types_text"), ("destinations", "kept_destinations"))
    ) + "], lambda e: e.value IS NOT NULL))")
    dest_exotic = ("(destinations IS NOT NULL AND (json_type(destinations) <> 'ARRAY' "
                   "OR contains(destinations, '{')))")
    severity_id = f"CASE severity {severity} ELSE 0 END"
    columns = {
        "class_uid": str(CLASS_UID), "class_name": "'Detection Finding'",
        "category_uid": str(CATEGORY_UID), "category_name": "'Findings'",
        "activity_id": "1", "activity_name": "'Create'", "type_uid": str(CLASS_UID * 100 + 1),
        "type_name": "'Detection Finding: Create'",
        "severity_id": severity_id,
        "severity": f"CASE {severity_id} {captions} END",
        "status_id": "1", "status": "'New'", "time": epoch_ms_sql("last_us"),
        "start_time": epoch_ms_sql("first_us"), "end_time": epoch_ms_sql("last_us"), "timezone_offset": "0",
        "count": int32("events"), "message": "title",
        "metadata": pack(version=sql_literal(OCSF_VERSION), uid="id", profiles="['cloud']",
                          product=pack(name="'flowwarden'", vendor_name="'flowwarden'",
                                        version=sql_literal(__version__))),
        "cloud": pack(provider="'AWS'", region="cloud_region", zone="cloud_zone",
                       account="CASE WHEN cloud_account IS NOT NULL THEN " + pack(
                           uid="cloud_account", type="'AWS Account'", type_id="10") + " END"),
        "finding_info": pack(uid="id", title="title", desc="nullif(description, '')",
                              first_seen_time=epoch_ms_sql("first_us"), last_seen_time=epoch_ms_sql("last_us"),
                              src_url="nullif(reference, '')", types="types",
                              data_sources="data_sources", analytic="analytic",
                              attacks="attacks"),
        "remediation": "CASE WHEN coalesce(runbook, '') <> '' THEN " + pack(
            desc="runbook", references="CASE WHEN coalesce(reference, '') <> '' THEN "
            "[reference] END") + " END",
        "evidences": f"CASE WHEN NOT {no_endpoints} THEN [{struct_of(evidence_kind, evidence)}] "
                     f"WHEN ({data}) IS NOT NULL THEN [{struct_of(evidence_kind, {'data': data})}]"
                     " END",
        "unmapped": unmapped,
    }
    finding = ", ".join(
        f"{barrier(f'CAST({sql} AS {sql_type(FINDING_SCHEMA.field(n).type)})')} AS {n}"
        for n, sql in columns.items())
    exotic = (f"exotic_flow OR {dest_exotic} OR ({no_endpoints} AND ({data}) IS NOT NULL "
              f"AND NOT {is_ascii(data)})")
    parquet_exotic = " OR ".join(f"NOT {is_ascii(c)}" for c in (
        "pruned_context", "kept_destinations", "log_types_text"))
    day = f"strftime(make_timestamp({epoch_ms_sql('last_us')} * 1000), '%Y%m%d')"
    return f"""
    SELECT seq, coalesce({exotic}, true) AS exotic,
           coalesce({parquet_exotic}, true) AS exotic_parquet,
           {_part('cloud_region')} AS lake_region, {_part('cloud_account')} AS lake_account,
           {day} AS lake_day, {finding}, pruned_context, kept_destinations, log_types_json,
           window_us, dedup, threshold, unique_count, {", ".join(f"{n}_json" for n in RULE_JSON)},
           src_endpoint, dst_endpoint, connection_info, evidence_data
    FROM (SELECT *, CASE WHEN destinations <> '[]' THEN destinations END AS kept_destinations,
            CASE WHEN {no_endpoints} AND context IS NOT NULL AND context <> '{{}}' THEN context
            END AS evidence_data
          FROM ({flows}))"""


# -- what Python computes once per rule, or per distinct address ---------------------------
def rule_parts(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """The rule-level parts of every rule's findings (``RULE_PARTS``), from ``rules``."""
    rows = []
    for rule, name_json, mitre_json, log_types_json in con.execute(
            "SELECT rule, name_json, mitre_json, log_types_json FROM rules").fetchall():
        log_types = json.loads(log_types_json)
        info = rule_info(rule, json.loads(name_json), json.loads(mitre_json), log_types)
        texts = {f"{name}_json": None if info.get(name) is None else
                 json.dumps(info[name], sort_keys=True, ensure_ascii=False) for name in RULE_JSON}
        rows.append({"rule": rule, **info, **texts,
                     "log_types_text": json.dumps(log_types, sort_keys=True) if log_types
                     else None})
    return pa.Table.from_pylist(rows, schema=RULE_PARTS)
