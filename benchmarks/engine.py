"""Engine benchmark: compiled DuckDB conditions vs per-event Python vs hand-written queries.

Generates N realistic flow records (`tests.flowgen.generate`: private/public, DNS to approved
and rogue resolvers, inbound to common and odd ports, return flows, NODATA, IPv6) as AWS Parquet
(and gzip text for the Python comparisons), then measures, each in its own process (so peak RSS
is that run's alone). `--parts` picks the groups (default all three):

engines (`--engines`):
- match, duckdb:   flowwarden's compiled conditions (`evaluate_batch`, Python only on the rows
                   the compiled query hands back) over every batch `flowwarden.logs.read` yields,
                   read as `flowwarden scan`'s phase 1 reads them (`engine.loop.narrowed`: only
                   the columns the conditions use; rows handed to Python get their complete
                   records, phase 2);
- match, python:   Panther's model, `rule(event)` on every event (on a prefix of --python-records
                   records, because it is slow; compared by records/s);
- match, hand SQL: a hand-written DuckDB query of the two spec rules, classifying each distinct
                   address once with Python's `ipaddress` and joining back;
- scan, duckdb / python: the whole `flowwarden scan` pipeline, alerts included;
- scan, duckdb / spark (`--engines duckdb,spark`): the same whole scan of the --records file on
                   both engines for each `--scan-rules` set (Spark in local[*]; its session start
                   is reported, not counted), every alert compared.

alerts:
- scan to JSONL:   `flowwarden scan FILE -o alerts.jsonl` as the CLI runs it (`run_stateless`,
                   the duckdb engine), for each `--scan-rules` set (spec: the two seed rules;
                   pack: the built-in pack; pack-tuned or tuned: the pack with the tuned rules in
                   place of the spec rules);
- hand alerts:     the reference, one DuckDB query computing the seed rules' alerts over the
                   same file (IP classes per distinct address from Python's `ipaddress`, titles
                   as dedup keys, 60-minute windows, count, first/last event time, the first
                   record as sample, 13 of its fields) and writing them as JSON lines; each
                   scan's time is divided by its time (issue 14's target for the seed rules:
                   within 2x);
- hand full:       the same query writing what a scan's alert line holds (`HAND_FULL_ALERTS`:
                   the first three records whole as samples, the first one's alert context, the
                   alert id, the rules' metadata): the same work in DuckDB's own JSON, each
                   scan's time divided by its time too.
                   `--no-references` leaves both out: the scans alone (peak RSS at 30M records,
                   where hand full's every record in memory would not fit).

rare (matches under 1% of records):
- rare matches:    the tuned pack's whole scan to JSONL over clean traffic (`generate_flows(...,
                   clean=True)`: no attacks), records/s (issue 14's target: >= 8M/s on 2 cores);
- rare, read only: the same scan's phase-1 read alone (`narrowed(read(...))`, no rules), the
                   part of the scan no rule work can remove;
- rare, one query: the scan's own condition query (every rule's verdict) run by DuckDB over the
                   Parquet file itself, its reader and threads, each distinct address classified
                   once and joined back (`child_rare_query`): no record checks, no alerts, the
                   ceiling of what a scan built on that query can do (its matches must be the
                   scan's);
- rare, phases timed (`--phases`): the same scan once more, with the wall and CPU time of its
                   phases (`SCAN_PHASES`: Parquet phase 1, IP classification, condition query,
                   alert function queries, samples, phase 2, the picks, the alerts collected
                   from the groups, delivery) printed below the table; with `--parts alerts`,
                   the same for one more JSONL scan of each `--scan-rules` set.

outputs (`--parts outputs`, not by default):
- sink, query:     a scan, then its alerts written to each `--outputs` sink (jsonl, store, ocsf,
                   ocsf-parquet, lake: the Security Lake layout) as `deliver` writes them, from
                   the scan's alert tables; the sink's own time is the `delivery s` column;
- sink, walked (`--walked`): the same with the alerts handed over as a plain sequence, walked
                   as `Alert` objects one by one (how the sinks worked before).

state (`--parts state`, not by default):
- state, duckdb:   each --scan-rules set's scan to JSONL with a new `--state` file
                   (`run_checkpointed`): its groups saved to the state, its alerts through the
                   outbox; with `--parts alerts` too, its time and peak RSS against the plain
                   scan's, and a check that its alerts and JSONL size are the plain scan's;
- s.stor, s.ocsf, s.lake (with `--outputs` naming them): the same `--state` scan with its
                   alerts to that sink instead (a store apart from the state, OCSF JSON or the
                   Security Lake layout under `--output-dir`): the whole run, delivery included.

It checks that the match comparisons agree on which records match and the Spark scans on every
alert, then prints records/s, alerts, peak RSS and the ratios. `--repeat N` runs every
measurement N times, in N passes over all of them (a busy spell of a shared machine then falls
on every row alike), and reports each row's medians (of peak RSS, the highest run's), its
fastest and slowest run (`runs s`), and whether every run found the same records, matches and
alerts; the ratios are of the medians. Run:
`python benchmarks/engine.py --records 10000000` (add `--engines duckdb,spark` for the Spark
comparison, `--engines duckdb,python,spark` for everything; `--scan-rules spec,pack,pack-tuned`
for the JSONL scans of every rule set; `--parts rare` for the rare-match rows alone).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

# The flow generator is test code (tests/flowgen, not in the wheel): make the repository root
# importable so that this script runs from a checkout, wherever it is started from.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC_RULES = ("AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.InboundPortWhitelist")
MAX_SAMPLES = 3  # samples per alert: the scans' default (``--max-samples``)
SEED = 42


def generate(workdir: Path, records: int, reuse: bool, text: bool = True,
             clean: bool = False) -> dict[str, Path]:
    """The generated files (Parquet, and gzip text when ``text``); ``clean``: no attacks."""
    from tests.flowgen.generate import generate_flows, write_parquet, write_text

    stem = f"flows-clean-{records}" if clean else f"flows-{records}"
    paths = {"parquet": workdir / f"{stem}.parquet", "text": workdir / f"{stem}.log.gz"}
    if not (reuse and paths["parquet"].exists()):
        write_parquet(generate_flows(records, SEED, clean=clean), str(paths["parquet"]))
    if text and not (reuse and paths["text"].exists()):
        write_text(generate_flows(records, SEED, clean=clean), str(paths["text"]))
    return paths


def load_rules(which: str) -> tuple[Any, list[Any]]:
    from flowwarden.rules.loader import load_pack, resolve_pack_paths

    if which == "pack-tuned":  # `--pack tuned`: the tuned rules replace the spec rules
        pack = load_pack(resolve_pack_paths(["tuned"]))
        if len(pack.replaced) != len(SPEC_RULES):
            raise RuntimeError(f"the tuned pack should replace {SPEC_RULES}: {pack.replaced}")
        return pack, pack.active_rules()
    pack = load_pack(resolve_pack_paths([]))
    rules = pack.active_rules(SPEC_RULES if which == "spec" else ())
    return pack, rules


class Tally:
    """Matches per rule as (count, sum of positions): enough to tell two match sets apart."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}

    def add(self, rule_id: str, positions: Any) -> None:
        """Count ``positions`` (a list or NumPy array of ints; summed vectorized, so the tally
        costs every engine the same little)."""
        entry = self.counts.setdefault(rule_id, [0, 0])
        entry[0] += len(positions)
        entry[1] += int(np.sum(np.asarray(positions, dtype=np.int64)))


def child_match_duckdb(path: str, which: str) -> dict[str, Any]:
    from flowwarden.engine.local.vectorized import evaluate_batch
    from flowwarden.engine.loop import narrowed
    from flowwarden.engine.scan import Scanner
    from flowwarden.logs import read

    pack, rules = load_rules(which)
    scanner = Scanner(pack, rules, "duckdb")  # compiles the rules; reads as a scan's phase 1
    compiled = scanner.compiled
    by_id = {r.id: r for r in rules}
    tally, offset, python_rows = Tally(), 0, 0
    for item in narrowed(read([path]), scanner.columns()):
        verdicts = evaluate_batch(compiled, item.batch, item.log_type)
        for rule_id, verdict in verdicts.items():
            decided = verdict.match.astype(np.int64) + offset
            if len(verdict.python):
                python_rows += len(verdict.python)
                taken = item.full_rows(verdict.python).to_pylist()
                rule = by_id[rule_id]
                decided = np.append(decided, [
                    offset + int(i) for i, rec in zip(verdict.python, taken, strict=True)
                    if rule.function("rule")(pack.event(rec)) is True])
            tally.add(rule_id, decided)
        offset += item.batch.num_rows
    return {"records": offset, "matches": tally.counts, "python_rows": python_rows}


def child_match_python(path: str, which: str) -> dict[str, Any]:
    from flowwarden.logs import read

    pack, rules = load_rules(which)
    tally, offset = Tally(), 0
    for item in read([path]):
        hits: dict[str, list[int]] = {r.id: [] for r in rules}
        for index, record in enumerate(item.batch.to_pylist()):
            event = pack.event(record)
            for rule in rules:
                try:
                    if rule.function("rule")(event) is True:
                        hits[rule.id].append(offset + index)
                except Exception:  # noqa: BLE001, S112 - an error is not a match
                    continue
        for rule_id, positions in hits.items():
            tally.add(rule_id, positions)
        offset += item.batch.num_rows
    return {"records": offset, "matches": tally.counts}


def hand_verdicts(records: bool = False) -> str:
    """The seed rules' verdicts per record, by hand: CTEs ``f`` (records and their positions;
    with ``records``, each whole record as a struct too, column ``record``) and ``c`` (with
    ``dns`` and ``inbound`` flags); ``classes`` is ``address_classes``'s table."""
    record = ", p AS record" if records else ""
    return f"""
WITH f AS (
  SELECT row_number() OVER () - 1 AS pos{record}, *
  FROM read_parquet($path) p
)""" + _HAND_CLASSES


_HAND_CLASSES = """, c AS (
  SELECT f.*,
         dstport IN (53, 5353) AND NOT s.is_global AND NOT r.is_private
           AND dstaddr IS NOT NULL AND dstaddr NOT IN ('1.1.1.1', '8.8.8.8') AS dns,
         dstport IS NOT NULL AND dstport <> 0 AND dstport NOT IN (80, 443)
           AND s.is_global AND NOT d.is_global AS inbound
  FROM f
  JOIN classes s ON s.addr = coalesce(nullif(f.srcaddr, ''), '0.0.0.0/32')
  JOIN classes d ON d.addr = coalesce(nullif(f.dstaddr, ''), '1.0.0.0/32')
  JOIN classes r ON r.addr = coalesce(nullif(f.dstaddr, ''), '192.168.0.1/32')
)"""

HAND_SQL = hand_verdicts() + """
SELECT count(*) FILTER (WHERE dns), sum(pos) FILTER (WHERE dns),
       count(*) FILTER (WHERE inbound), sum(pos) FILTER (WHERE inbound)
FROM c
"""


def address_classes(con: Any, path: str) -> None:
    """Register table ``classes``: each distinct address of the two spec rules (with their
    fallbacks) classified once by Python's ``ipaddress``."""
    import pyarrow as pa

    distinct = con.execute(
        "SELECT DISTINCT a FROM (SELECT coalesce(nullif(srcaddr, ''), '0.0.0.0/32') AS a "
        "FROM read_parquet($path) UNION SELECT coalesce(nullif(dstaddr, ''), '1.0.0.0/32') "
        "FROM read_parquet($path) UNION SELECT coalesce(nullif(dstaddr, ''), '192.168.0.1/32') "
        "FROM read_parquet($path))", {"path": path}).fetchall()
    networks = [ipaddress.ip_network(addr) for (addr,) in distinct]
    con.register("classes", pa.table({
        "addr": [addr for (addr,) in distinct], "is_global": [n.is_global for n in networks],
        "is_private": [n.is_private for n in networks]}))


def child_hand_sql(path: str, which: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    address_classes(con, path)
    dns, dns_pos, inbound, inbound_pos = con.execute(HAND_SQL, {"path": path}).fetchone()
    records = con.execute("SELECT count(*) FROM read_parquet($path)", {"path": path}).fetchone()[0]
    return {"records": records, "matches": {
        "AWS.VPC.UnapprovedOutboundDNS": [dns, int(dns_pos or 0)],
        "AWS.VPC.InboundPortWhitelist": [inbound, int(inbound_pos or 0)]}}


def child_scan(path: str, which: str, engine: str) -> dict[str, Any]:
    from flowwarden.engine.scan import Scanner
    from flowwarden.logs import read

    pack, rules = load_rules(which)
    if engine == "spark":
        from flowwarden.engine.spark.session import spark_scan, spark_session

        started = time.perf_counter()
        session = spark_session("local[*]", {"spark.ui.enabled": "false"})
        session.sparkContext.setLogLevel("ERROR")
        setup = time.perf_counter() - started  # JVM start: not part of the scan's time
        result = spark_scan(pack, rules, [path], spark=session)
        session.stop()
    else:
        setup = 0.0
        result = Scanner(pack, rules, engine).scan(read([path]))
    return {"records": result.records, "alerts": len(result.alerts), "setup": setup,
            "matches": {k: [v, None] for k, v in result.matches.items()},
            "alert_digest": alert_digest(result.alerts),
            "alert_ids": sorted(a.id for a in result.alerts)[:1000]}


def alert_digest(alerts: list[Any]) -> str:
    """One hash of every alert's id, counts and title, in order: equal digests, same alerts."""
    digest = hashlib.sha256()
    for a in alerts:
        digest.update(json.dumps([a.id, a.event_count, a.unique_count, a.title]).encode())
    return digest.hexdigest()


# The seed rules' matches with their titles, after ``hand_verdicts``: CTE ``m``.
_HAND_MATCHES = """, m AS (
  SELECT 'AWS.VPC.UnapprovedOutboundDNS' AS rule_id,
         'Unapproved outbound DNS traffic from [' || coalesce(srcaddr, 'None') || '] to ['
           || coalesce(dstaddr, 'None') || ']:' || coalesce(CAST(dstport AS VARCHAR), 'None')
           AS title, * FROM c WHERE dns
  UNION ALL
  SELECT 'AWS.VPC.InboundPortWhitelist',
         'Inbound traffic from [' || coalesce(srcaddr, 'None') || '] to non-allowlisted port ['
           || coalesce(CAST(dstport AS VARCHAR), 'None') || '] on ['
           || coalesce(dstaddr, 'None') || ']', * FROM c WHERE inbound
)"""

HAND_ALERTS = "COPY (" + hand_verdicts() + _HAND_MATCHES + """
SELECT rule_id, title, title AS dedup, "start" // 3600 AS window, count(*) AS event_count,
       min("start") AS first_event_time, max("start") AS last_event_time,
       arg_min(struct_pack(srcaddr, dstaddr, srcport, dstport, protocol, action, account_id,
                           interface_id, "start", "end", bytes, packets, log_status), pos)
         AS sample
FROM m GROUP BY ALL
) TO $out (FORMAT JSON)
"""

# The same alerts with what a scan's alert line holds: the first three records whole as the
# samples, the first one's alert context, the alert id, and the rule's metadata (table
# ``meta``, ``rule_meta``). What DuckDB writes itself differs in form only: times as its
# timestamps, keys of the samples as the Parquet columns, null fields kept.
HAND_FULL_ALERTS = "COPY (" + hand_verdicts(records=True) + _HAND_MATCHES + """, ranked AS (
  SELECT *, "start" // 3600 * 3600 AS window_s,
         row_number() OVER (PARTITION BY rule_id, title, "start" // 3600
                            ORDER BY "start", pos) AS rank
  FROM m
)
SELECT arg_min(struct_pack(account_id, action, bytes, destination_ip := dstaddr,
                           destination_port := dstport, end_time := to_timestamp("end"),
                           interface_id, log_status, packets, protocol, region,
                           source_ip := srcaddr, source_port := srcport,
                           start_time := to_timestamp("start"), vpc_id), rank) AS alert_context,
       title AS dedup, any_value(meta.description) AS description, NULL AS destinations,
       count(*) AS event_count, to_timestamp(min("start")) AS first_event_time,
       left(sha256(rule_id || chr(31) || title || chr(31)
                   || strftime(to_timestamp(window_s), '%Y-%m-%dT%H:%M:%S') || '+00:00'), 32)
         AS id,
       to_timestamp(max("start")) AS last_event_time,
       any_value(meta.log_types)::JSON AS log_types, any_value(meta.mitre)::JSON AS mitre,
       any_value(meta.reference) AS reference, rule_id, any_value(meta.rule_name) AS rule_name,
       any_value(meta.runbook) AS runbook,
       list(record ORDER BY rank) FILTER (WHERE rank <= $samples) AS samples,
       any_value(meta.severity) AS severity, any_value(meta.threshold) AS threshold, title,
       NULL AS unique_count, to_timestamp(window_s) AS window_start
FROM ranked JOIN meta USING (rule_id) GROUP BY rule_id, title, window_s
) TO $out (FORMAT JSON)
"""


def rule_meta(rules: list[Any]) -> Any:
    """The rules' metadata as an alert line carries it: table ``meta`` of ``HAND_FULL_ALERTS``."""
    import pyarrow as pa

    from flowwarden.alerts.model import mitre_entries

    return pa.table({
        "rule_id": [r.id for r in rules], "rule_name": [r.display_name or r.id for r in rules],
        "severity": [r.severity for r in rules], "description": [r.description for r in rules],
        "reference": [r.reference for r in rules], "runbook": [r.runbook for r in rules],
        "mitre": [json.dumps(mitre_entries(r.mitre)) for r in rules],
        "log_types": [json.dumps(list(r.log_types)) for r in rules],
        "threshold": [r.threshold for r in rules]})


def child_scan_jsonl(path: str, which: str, out: str, state: bool = False,
                     sink: str = "jsonl") -> dict[str, Any]:
    """``flowwarden scan PATH -o OUT`` as the CLI runs it, with the rule set ``which``; its
    setup (imports, loading the pack) is reported, not counted. With ``state``, ``--state``
    with a new state file beside OUT: its groups saved there, its alerts through the outbox.
    ``sink``: the alerts to another sink beside OUT instead (``STATE_SINKS``)."""
    started = time.perf_counter()
    from flowwarden.alerts.delivery import OutputSpec
    from flowwarden.runs.checkpoint import run_checkpointed, run_stateless

    pack, rules = load_rules(which)
    setup = time.perf_counter() - started
    folder = os.path.dirname(out)
    outputs = {"jsonl": OutputSpec(output=out),
               "store": OutputSpec(store=os.path.join(folder, "alerts.duckdb")),
               "ocsf": OutputSpec("ocsf", output_dir=os.path.join(folder, "ocsf")),
               "lake": OutputSpec("ocsf-parquet", output_dir=os.path.join(folder, "lake"))}
    options: dict[str, Any] = {"engine": "duckdb", "rule_ids": [r.id for r in rules],
                               "outputs": outputs[sink]}
    state_file = os.path.join(folder, "state.duckdb")
    result = (run_checkpointed(pack, [path], state_file, **options) if state
              else run_stateless(pack, [path], **options))
    found = {"records": result.scan.records, "alerts": len(result.alerts), "setup": setup,
             "matches": {k: [v, None] for k, v in result.scan.matches.items()}}
    if state:
        found["state_mb"] = os.path.getsize(state_file) / 1e6
    return found


# The sinks of a --state run besides its JSONL (--parts state --outputs): a Parquet file
# cannot be appended to, so ocsf-parquet is the lake layout there.
STATE_SINKS = ("store", "ocsf", "lake")


OUTPUTS = ("jsonl", "store", "ocsf", "ocsf-parquet", "lake")


class Walked:
    """A scan's alerts as a plain sequence: sinks walk them as ``Alert`` objects, one by one,
    as they did before sinks read the alert tables (``--walked``); what else the alerts offer
    (their JSON lines, a digest's identities) is passed through."""

    def __init__(self, alerts: Any) -> None:
        self.alerts = alerts

    def __len__(self) -> int:
        return len(self.alerts)

    def __iter__(self) -> Any:
        return iter(self.alerts)

    def __getitem__(self, index: Any) -> Any:
        return self.alerts[index]

    def __getattr__(self, name: str) -> Any:
        if name == "grouper":  # not ``tablequery.QueriedAlerts``
            raise AttributeError(name)
        return getattr(self.alerts, name)


def child_output(path: str, which: str, out: str, *, sink: str, walked: bool) -> dict[str, Any]:
    """A scan of PATH (its alerts in DuckDB), then its alerts written to one ``--outputs`` sink
    next to ``out`` as ``deliver`` writes them, the sink's time reported as ``delivery``;
    ``walked``: the alerts handed over as a plain sequence, walked one by one."""
    started = time.perf_counter()
    from flowwarden.alerts.delivery import STORE_CHUNK
    from flowwarden.alerts.formats import ALERT_FORMATS
    from flowwarden.alerts.formats.securitylake import write_security_lake
    from flowwarden.alerts.store import AlertStore, upsert_alert_rows, upsert_alerts
    from flowwarden.alerts.tablequery import QueriedAlerts
    from flowwarden.alerts.tablestore import store_rows
    from flowwarden.engine.scan import Scanner
    from flowwarden.logs import read
    from flowwarden.util.iterables import chunks

    pack, rules = load_rules(which)
    setup = time.perf_counter() - started
    scan = Scanner(pack, rules, "duckdb").scan(read([path]))
    alerts = Walked(scan.alerts) if walked else scan.alerts
    folder = Path(out).parent
    began = time.perf_counter()
    if sink == "store":
        store = AlertStore(folder / "alerts.duckdb")
        store.con.execute("BEGIN TRANSACTION")
        if walked:
            for chunk in chunks(alerts, STORE_CHUNK):
                upsert_alerts(store.con, chunk)
        else:
            assert isinstance(scan.alerts, QueriedAlerts)
            upsert_alert_rows(store.con, store_rows(scan.alerts))
        store.con.execute("COMMIT")
        store.close()
    elif sink == "lake":
        write_security_lake(alerts, str(folder / "lake"), name="bench")
    else:
        name = {"jsonl": out, "ocsf": out, "ocsf-parquet": str(folder / "alerts.parquet")}[sink]
        with open(name, "wb") as handle:
            ALERT_FORMATS[sink].write(alerts, handle)
    return {"records": scan.records, "alerts": len(scan.alerts), "setup": setup,
            "delivery": time.perf_counter() - began}


def child_hand_alerts(path: str, which: str, out: str, *, full: bool = False
                      ) -> dict[str, Any]:
    """The seed rules' alerts by one hand-written DuckDB query, written as JSON lines (the
    import of duckdb and loading the rules' metadata are reported as setup, not counted);
    ``full``: with what a scan's alert line holds (``HAND_FULL_ALERTS``)."""
    started = time.perf_counter()
    import duckdb

    meta = rule_meta(load_rules("spec")[1]) if full else None
    setup = time.perf_counter() - started
    con = duckdb.connect()
    address_classes(con, path)
    if meta is not None:
        con.register("meta", meta)
        con.execute(HAND_FULL_ALERTS, {"path": path, "out": out, "samples": MAX_SAMPLES})
    else:
        con.execute(HAND_ALERTS, {"path": path, "out": out})
    records = con.execute("SELECT count(*) FROM read_parquet($path)", {"path": path}).fetchone()
    with open(out, "rb") as handle:
        alerts = sum(1 for _ in handle)
    return {"records": records[0] if records else 0, "alerts": alerts, "setup": setup}


def child_read_only(path: str, which: str) -> dict[str, Any]:
    """The phase-1 read of a scan with the rule set ``which``, and nothing else (imports and
    compiling the rules are setup)."""
    started = time.perf_counter()
    from flowwarden.engine.loop import narrowed
    from flowwarden.engine.scan import Scanner
    from flowwarden.logs import read

    pack, rules = load_rules(which)
    columns = Scanner(pack, rules, "duckdb").columns()
    setup = time.perf_counter() - started
    records = sum(item.batch.num_rows for item in narrowed(read([path]), columns))
    return {"records": records, "setup": setup}


def child_rare_query(path: str, which: str) -> dict[str, Any]:
    """The ceiling of a rare-match scan: the scan's own condition query (every rule's verdict,
    as ``compile_pack`` renders it) run by DuckDB over the Parquet file itself (its reader,
    its threads), each distinct address classified once by flowwarden's classifier and joined
    back, the rows with any verdict but NO_MATCH handed out. No record checks, no alerts: what
    one query does of the scan's work (imports, compiling the rules are setup)."""
    started = time.perf_counter()
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flowwarden.engine.loop import narrowed
    from flowwarden.engine.scan import Scanner
    from flowwarden.logs import read
    from flowwarden.logs.fields import LOG_TYPE, field_for

    pack, rules = load_rules(which)
    scanner = Scanner(pack, rules, "duckdb")
    compiled = scanner.compiled
    first = next(iter(narrowed(read([path]), scanner.columns())))  # the scan's batch schema
    query = compiled.query(first.log_type, first.batch.schema)
    parquet = pq.read_schema(path)
    setup = time.perf_counter() - started
    con = duckdb.connect()
    by_name = {field_for(name).panther: name for name in parquet.names}

    def column(key: str) -> str:
        if key == "p_log_type":
            return f"'{LOG_TYPE}'"
        dtype = parquet.field(by_name[key]).type
        cast = "::BIGINT" if pa.types.is_integer(dtype) else ""
        return f'"{by_name[key]}"{cast}'

    addresses = sorted({probe.keys[0] for probe in query.probes})
    union = " UNION ".join(f"SELECT {column(key)} AS a FROM read_parquet($path)"
                           for key in addresses)
    distinct = con.sql(f"SELECT a FROM ({union}) WHERE a IS NOT NULL",
                       params={"path": path}).to_arrow_table().column(0).combine_chunks()
    selected = [f'{column(i.keys[0])} AS "{i.alias}"' for i in query.columns]
    joins = []
    for n, p in enumerate(query.probes):
        codes = compiled.evaluator.classifier.classify_distinct(distinct, p.probe)
        con.register(f"k{n}", pa.table({"a": distinct, "c": pa.array(codes)}))
        selected.append(f'coalesce(k{n}.c, {p.probe.classify(None)}) AS "{p.alias}"')
        joins.append(f"LEFT JOIN k{n} ON k{n}.a = {column(p.keys[0])}")
    verdicts = query.select("rows")
    assert verdicts is not None
    slots = [f"r{i}" for i in range(len(query.slots))]
    found = con.sql(
        f"WITH rows AS (SELECT {', '.join(selected)} FROM read_parquet($path) {' '.join(joins)}) "
        f"SELECT * FROM ({verdicts}) WHERE {' OR '.join(f'{r} <> 0' for r in slots)}",
        params={"path": path}).to_arrow_table()
    records = pq.ParquetFile(path).metadata.num_rows
    codes = {name: found.column(slot).to_numpy() for name, slot in zip(query.slots, slots,
                                                                         strict=True)}
    return {"records": records, "setup": setup,
            "matches": {name: [int(np.count_nonzero(c == 1)), None] for name, c in codes.items()},
            "python_rows": int(sum(np.count_nonzero(c == 2) for c in codes.values()))}


class PhaseClock:
    """Wall and CPU seconds (of the thread that ran them) spent in chosen functions, by phase:
    each function is replaced by a timed wrapper for the duration of one measurement."""

    def __init__(self) -> None:
        self.spent: dict[str, list[float]] = {}

    def add(self, phase: str, wall: float, cpu: float) -> None:
        entry = self.spent.setdefault(phase, [0.0, 0.0])
        entry[0] += wall
        entry[1] += cpu

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        """Time every call of ``owner.name``."""
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(phase, time.perf_counter() - wall, time.thread_time() - cpu)

        setattr(owner, name, timed)

    def wrap_iterator(self, owner: Any, name: str, phase: str) -> None:
        """Time producing each item of the iterator ``owner.name(...)`` returns."""
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            items = iter(original(*args, **kwargs))
            while True:
                wall, cpu = time.perf_counter(), time.thread_time()
                item = next(items, StopIteration)
                self.add(phase, time.perf_counter() - wall, time.thread_time() - cpu)
                if item is StopIteration:
                    return
                yield item

        setattr(owner, name, timed)


# (phase, module, function, whether it returns an iterator) of a duckdb scan of AWS Parquet.
SCAN_PHASES = (
    ("Parquet read (prefetch thread)", "flowwarden.logs.formats.vpcflow_parquet",
     "_projected_parts", True),  # phase 1, decoded in the reader's thread
    # the reader's own name for it: the JSONL writer waits in ``ahead`` too (for its lines)
    ("waiting for phase-1 batches", "flowwarden.logs.formats.vpcflow_parquet", "ahead", True),
    ("IP classification (_inputs)", "flowwarden.engine.local.vectorized",
     "BatchEvaluator._inputs", False),
    ("condition query (_run)", "flowwarden.engine.local.vectorized", "BatchEvaluator._run", False),
    ("key/alert function queries", "flowwarden.engine.local.vectorized",
     "BatchEvaluator.alert_table", False),
    ("phase 2 (complete rows)", "flowwarden.logs.formats.vpcflow_parquet", "_complete", False),
    ("samples as JSON (samples)", "flowwarden.engine.local.vectorized", "BatchEvaluator.samples",
     False),
    ("matches to groups (wanted)", "flowwarden.alerts.groupstore", "SqlGrouper.wanted", False),
    ("picks held (add_rendered)", "flowwarden.alerts.groupstore", "SqlGrouper.add_rendered",
     False),
    ("picks written (end_batch)", "flowwarden.alerts.groupstore", "SqlGrouper.end_batch", False),
    ("alerts from the groups (collect)", "flowwarden.alerts.groupstore", "SqlGrouper.collect",
     False),
    ("alert delivery (JSONL)", "flowwarden.runs.checkpoint", "deliver", False),
)


def child_phases(path: str, which: str, out: str) -> dict[str, Any]:
    """``child_scan_jsonl`` with the time of each of ``SCAN_PHASES`` measured (the wrappers
    cost a few microseconds a call: a few hundred calls a scan). A phase whose function is
    gone (renamed since) is left out."""
    import importlib

    clock = PhaseClock()
    for phase, module_name, qualified, iterator in SCAN_PHASES:
        owner: Any = importlib.import_module(module_name)
        *parents, name = qualified.split(".")
        for parent in parents:
            owner = getattr(owner, parent, None)
        if owner is None or not hasattr(owner, name):
            continue
        (clock.wrap_iterator if iterator else clock.wrap)(owner, name, phase)
    main_started = time.thread_time()
    result = child_scan_jsonl(path, which, out)
    result["phases"] = clock.spent
    result["main_cpu"] = time.thread_time() - main_started  # the main thread's alone
    return result


Child = Callable[[str, str, str], dict[str, Any]]
CHILDREN: dict[str, Child] = {
    "match-duckdb": lambda p, w, _: child_match_duckdb(p, w),
    "match-python": lambda p, w, _: child_match_python(p, w),
    "match-handsql": lambda p, w, _: child_hand_sql(p, w),
    "scan-duckdb": lambda p, w, _: child_scan(p, w, "duckdb"),
    "scan-python": lambda p, w, _: child_scan(p, w, "python"),
    "scan-spark": lambda p, w, _: child_scan(p, w, "spark"),
    "scan-jsonl": child_scan_jsonl,
    "scan-state": partial(child_scan_jsonl, state=True),
    **{f"state-{sink}": partial(child_scan_jsonl, state=True, sink=sink) for sink in STATE_SINKS},
    "hand-alerts": child_hand_alerts,
    "hand-full": lambda p, w, o: child_hand_alerts(p, w, o, full=True),
    "read-only": lambda p, w, _: child_read_only(p, w),
    "rare-query": lambda p, w, _: child_rare_query(p, w),
    "phases": child_phases,
    **{f"{kind}-{sink}": partial(child_output, sink=sink, walked=kind == "walked")
       for kind in ("output", "walked") for sink in OUTPUTS},
}


def run_child(mode: str, path: Path, which: str) -> dict[str, Any]:
    """Run one measurement in a fresh process; returns its result, seconds and peak RSS (and
    the size of the JSON lines it wrote, for the modes that write alerts)."""
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile("w+") as report:
        out = os.path.join(folder, "alerts.jsonl")
        cmd = [sys.executable, __file__, "--child", mode, "--path", str(path), "--which", which,
               "--out", out]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=report)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} failed with exit code {proc.returncode}")
        report.seek(0)
        result: dict[str, Any] = json.loads(report.read())
        result["rss_mb"] = usage.ru_maxrss / 1024
        result["cpu"] = usage.ru_utime + usage.ru_stime  # the whole process, every thread
        result["wall"] = time.perf_counter() - start
        if os.path.exists(out):
            result["jsonl_mb"] = os.path.getsize(out) / 1e6
    return result


def child_main(mode: str, path: str, which: str, out: str) -> None:
    from flowwarden.util.allocator import choose_arrow_pool

    choose_arrow_pool()  # what the `flowwarden` command does first
    start = time.perf_counter()
    result = CHILDREN[mode](path, which, out)
    result["seconds"] = time.perf_counter() - start - result.get("setup", 0.0)
    print(json.dumps(result))


def agree(a: dict[str, Any], b: dict[str, Any], rules: tuple[str, ...]) -> bool:
    return all(a["matches"].get(r, [0, 0])[:2] == b["matches"].get(r, [0, 0])[:2] for r in rules)


ENGINES = ("duckdb", "python", "spark")
RULE_SETS = ("spec", "pack", "pack-tuned")
RULE_SET_ALIASES = {"tuned": "pack-tuned"}
PARTS = ("engines", "alerts", "rare", "outputs", "state")
RARE_RULES = "pack-tuned"
Row = tuple[str, str, str, dict[str, Any]]  # (what, engine, rules, the child's result)


def comma_list(text: str, allowed: tuple[str, ...], aliases: dict[str, str] | None = None
               ) -> list[str]:
    """A comma-separated option as a list of ``allowed`` values (``aliases`` resolved)."""
    values = [(aliases or {}).get(v.strip(), v.strip()) for v in text.split(",") if v.strip()]
    wrong = [v for v in values if v not in allowed]
    if wrong or not values:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated, of {', '.join(allowed)}")
    return list(dict.fromkeys(values))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--python-records", type=int, default=300_000,
                        help="records for the per-event Python runs (compared by records/s)")
    parser.add_argument("--engines", default="duckdb,python",
                        help="comma-separated, of duckdb, python, spark. With python: the match "
                        "and scan comparisons with per-event Python; with spark: a whole scan of "
                        "the --records file by duckdb and by spark per --scan-rules set, alerts "
                        "compared")
    parser.add_argument("--scan-rules", default="pack",
                        type=lambda t: comma_list(t, RULE_SETS, RULE_SET_ALIASES),
                        help="comma-separated rule sets of the JSONL and spark scans, of spec, "
                        "pack, pack-tuned (or tuned: the pack with the tuned rules in place of "
                        "the spec rules)")
    parser.add_argument("--parts", default=",".join(PARTS[:3]),
                        type=lambda t: comma_list(t, PARTS),
                        help="comma-separated, of engines (the --engines comparisons), alerts "
                        "(scans to JSONL vs the hand-written alert query), rare (the tuned pack "
                        "on clean traffic), outputs (scans to each --outputs sink; not by "
                        "default), state (each --scan-rules set scanned with a new --state: "
                        "groups saved, alerts through the outbox; not by default)")
    parser.add_argument("--no-references", action="store_true",
                        help="with --parts alerts: the scans alone, without the hand-written "
                        "queries (hand full holds every record: 12.6 GB at 10M records), e.g. "
                        "for the scans' peak RSS at 30M")
    parser.add_argument("--outputs", default=[], type=lambda t: comma_list(t, OUTPUTS),
                        help="the sinks of --parts outputs (default all): jsonl, store, ocsf, "
                        "ocsf-parquet, lake (the Security Lake layout), each one's time shown; "
                        "with --parts state, its store, ocsf and lake get a --state run each")
    parser.add_argument("--walked", action="store_true",
                        help="with --outputs: each sink also fed Alert objects one by one (how "
                        "every sink but JSONL worked before it read the alert tables)")
    parser.add_argument("--phases", action="store_true",
                        help="with rare: one more rare-match scan, timing its phases (Parquet "
                        "read, IP classification, condition query, alert functions, samples, "
                        "phase 2, picks, collect, delivery); with alerts: the same for one more "
                        "scan of each --scan-rules set")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every measurement N times, in N passes over all of them (so "
                        "that a busy spell of the machine falls on every row alike), and report "
                        "each row's medians (peak RSS: the highest) with the fastest and slowest "
                        "run")
    parser.add_argument("--workdir", default="/tmp/flowwarden-bench")
    parser.add_argument("--reuse", action="store_true", help="reuse generated files")
    parser.add_argument("--child"), parser.add_argument("--path"), parser.add_argument("--which")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        return args
    args.engines = args.engines.split(",")
    if not set(args.engines) <= set(ENGINES) or "duckdb" not in args.engines:
        parser.error(f"--engines: duckdb plus any of {', '.join(ENGINES[1:])}")
    if args.repeat < 1:
        parser.error("--repeat: a whole number of at least 1")
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child_main(args.child, args.path, args.which, args.out)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    passes = []
    for number in range(args.repeat):
        if number:
            args.reuse = True  # the first pass made the files
        passes.append(measured_rows(args, workdir))
    report(combined(passes), args)


def measured_rows(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """One pass: every measurement of the chosen --parts, each in a process of its own."""
    rows: list[Row] = []
    if "engines" in args.parts:
        rows += engine_rows(args, workdir)
    if "alerts" in args.parts:
        rows += alert_rows(args, workdir)
    if "rare" in args.parts:
        rows += rare_rows(args, workdir)
    if "outputs" in args.parts:
        rows += output_rows(args, workdir)
    if "state" in args.parts:
        path = generate(workdir, args.records, args.reuse, text=False)["parquet"]
        for which in args.scan_rules:
            rows.append(("state", "duckdb", which, run_child("scan-state", path, which)))
            rows += [(f"s.{sink}"[:6], "duckdb", which, run_child(f"state-{sink}", path, which))
                     for sink in args.outputs if sink in STATE_SINKS]
    return rows


# What a run measures (each row reports the median of its runs; of peak RSS, the highest: a
# limit must hold in every run) and what it found (the same in every run of a row, or the row
# is flagged).
TIMED = ("seconds", "cpu", "wall", "setup", "delivery", "main_cpu")
PEAKS = ("rss_mb",)
FOUND = ("records", "alerts", "matches", "alert_ids", "alert_digest", "python_rows")


def combined(passes: list[list[Row]]) -> list[Row]:
    """The rows of one or more passes, each with the median of its runs' timings (and of each
    timed phase's), the highest of their peak RSS, its fastest and slowest ``seconds``
    (``spread``), and whether every run found the same (``same``).

    >>> first = [("jsonl", "duckdb", "spec", {"seconds": 3.0, "rss_mb": 9.0, "alerts": 7})]
    >>> second = [("jsonl", "duckdb", "spec", {"seconds": 1.0, "rss_mb": 5.0, "alerts": 7})]
    >>> third = [("jsonl", "duckdb", "spec", {"seconds": 2.0, "rss_mb": 4.0, "alerts": 7})]
    >>> row = combined([first, second, third])[0][3]
    >>> row["seconds"], row["rss_mb"], row["spread"], row["same"]
    (2.0, 9.0, (1.0, 3.0), True)
    """
    if len(passes) == 1:
        return passes[0]
    rows: list[Row] = []
    for runs in zip(*passes, strict=True):
        what, engine, which, row = runs[0]
        results = [run[3] for run in runs]
        row = dict(row)
        for names, pick in ((TIMED, statistics.median), (PEAKS, max)):
            for name in names:
                if name in row:
                    row[name] = pick(r[name] for r in results)
        if "phases" in row:
            row["phases"] = {phase: [statistics.median(r["phases"][phase][i] for r in results)
                                     for i in (0, 1)] for phase in row["phases"]}
        seconds = [r["seconds"] for r in results]
        row["spread"] = (min(seconds), max(seconds))
        row["same"] = all(r.get(name) == row.get(name) for r in results for name in FOUND)
        rows.append((what, engine, which, row))
    return rows


def engine_rows(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """The --engines comparisons: matches and scans against per-event Python, and Spark."""
    rows: list[Row] = []
    python = "python" in args.engines
    big = generate(workdir, args.records, args.reuse, text=python)
    if python:
        small = generate(workdir, args.python_records, args.reuse, text=False)
        for which in ("spec", "pack"):
            rows.append(("match", "duckdb", which, run_child("match-duckdb", big["parquet"], which)))
            rows.append(("match", "python", which,
                         run_child("match-python", small["parquet"], which)))
            rows.append(("match", "duckdb@small", which,
                         run_child("match-duckdb", small["parquet"], which)))
        rows.append(("match", "hand SQL", "spec",
                     run_child("match-handsql", big["parquet"], "spec")))
        rows.append(("match", "duckdb text.gz", "spec",
                     run_child("match-duckdb", big["text"], "spec")))
        rows.append(("scan", "duckdb@small", "pack",
                     run_child("scan-duckdb", small["parquet"], "pack")))
        rows.append(("scan", "python", "pack", run_child("scan-python", small["parquet"], "pack")))
    if "spark" in args.engines:
        for which in args.scan_rules:
            for engine in ("duckdb", "spark"):
                rows.append(("scan", engine, which,
                             run_child(f"scan-{engine}", big["parquet"], which)))
    return rows


def alert_rows(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Each --scan-rules set scanned to JSONL, then the hand-written alert query, same file."""
    path = generate(workdir, args.records, args.reuse, text=False)["parquet"]
    rows: list[Row] = [("jsonl", "duckdb", which, run_child("scan-jsonl", path, which))
                       for which in args.scan_rules]
    if args.phases:
        rows += [("jsonl", "phases timed", which, run_child("phases", path, which))
                 for which in args.scan_rules]
    if not args.no_references:
        rows.append(("jsonl", "hand alerts", "spec", run_child("hand-alerts", path, "spec")))
        rows.append(("jsonl", "hand full", "spec", run_child("hand-full", path, "spec")))
    return rows


def output_rows(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Each --scan-rules set scanned, its alerts written to each --outputs sink (from the
    alert tables, and with --walked one by one too)."""
    path = generate(workdir, args.records, args.reuse, text=False)["parquet"]
    rows: list[Row] = []
    for sink in args.outputs or OUTPUTS:
        for which in args.scan_rules:
            rows.append((sink[:6], "query", which, run_child(f"output-{sink}", path, which)))
            if args.walked:
                rows.append((sink[:6], "walked", which, run_child(f"walked-{sink}", path, which)))
    return rows


def rare_rows(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """The tuned pack's scan to JSONL over clean traffic, its phase-1 read alone, and its
    condition query alone over the file (``child_rare_query``)."""
    path = generate(workdir, args.records, args.reuse, text=False, clean=True)["parquet"]
    rows: list[Row] = [
        ("rare", "duckdb", RARE_RULES, run_child("scan-jsonl", path, RARE_RULES)),
        ("rare", "read only", RARE_RULES, run_child("read-only", path, RARE_RULES)),
        ("rare", "one query", RARE_RULES, run_child("rare-query", path, RARE_RULES))]
    if args.phases:
        rows.append(("rare", "phases timed", RARE_RULES, run_child("phases", path, RARE_RULES)))
    return rows


def report(rows: list[Row], args: argparse.Namespace) -> None:
    print_table(rows)
    get = {(w, e, s): r for w, e, s, r in rows}
    print()
    checks: dict[str, bool] = {}
    if args.repeat > 1:
        print(f"Medians of {args.repeat} runs of each row, one run of every row per pass "
              "(peak RSS: the highest run's).")
        checks.update({f"{w} {e} {s}: every run found the same (records, matches, alerts)":
                       r["same"] for w, e, s, r in rows})
    if ("match", "python", "spec") in get:
        checks.update(python_ratios(get))
    for which in args.scan_rules:
        if ("scan", "spark", which) in get:
            checks.update(spark_ratios(get, which))
    if ("jsonl", "duckdb", args.scan_rules[0]) in get:
        alert_ratios(get, args.scan_rules)
        for which in args.scan_rules:
            timed = get.get(("jsonl", "phases timed", which))
            if timed is not None:
                print_phases(f"{which} scan to JSONL", timed)
    if ("rare", "duckdb", RARE_RULES) in get:
        checks.update(rare_ratios(get))
    for which in args.scan_rules:
        plain, state = get.get(("jsonl", "duckdb", which)), get.get(("state", "duckdb", which))
        if plain is not None and state is not None:
            print(f"--state, {which}: {state['seconds'] / plain['seconds']:.2f}x the plain "
                  f"scan's time, {state['rss_mb'] / plain['rss_mb']:.2f}x its peak RSS, a "
                  f"state file of {state['state_mb']:,.0f} MB")
            checks[f"--state, {which}: the plain scan's alerts and JSONL size"] = (
                state["alerts"] == plain["alerts"] and state["jsonl_mb"] == plain["jsonl_mb"])
    for name, ok in checks.items():
        print(f"{'OK  ' if ok else 'FAIL'} {name}")
    if not all(checks.values()):
        raise SystemExit(1)


def print_table(rows: list[Row]) -> None:
    """One line per measurement; seconds and records/s leave out the setup (imports, loading
    the pack, Spark's session start), shown apart; CPU s is the whole process's (setup and
    every thread included: on a shared machine, steadier than the seconds)."""
    spread = any("spread" in r for *_, r in rows)
    print(f"\n{'what':<6} {'engine':<15} {'rules':<10} {'records':>11} {'seconds':>8} "
          f"{'setup s':>7} {'CPU s':>7} {'records/s':>12} {'alerts':>9} {'JSONL MB':>8} "
          f"{'peak RSS MB':>11} {'delivery s':>10}" + (f" {'runs s':>13}" if spread else ""))
    for what, engine, which, r in rows:
        alerts = f"{r['alerts']:,}" if "alerts" in r else ""
        jsonl = f"{r['jsonl_mb']:,.0f}" if "jsonl_mb" in r else ""
        setup = f"{r['setup']:.2f}" if "setup" in r else ""
        delivery = f"{r['delivery']:.2f}" if "delivery" in r else ""
        runs = f" {r['spread'][0]:>6.2f}-{r['spread'][1]:<6.2f}" if "spread" in r else ""
        print(f"{what:<6} {engine:<15} {which:<10} {r['records']:>11,} {r['seconds']:>8.2f} "
              f"{setup:>7} {r['cpu']:>7.2f} {rate(r):>12,.0f} {alerts:>9} {jsonl:>8} "
              f"{r['rss_mb']:>11.0f} {delivery:>10}{runs}")


def rate(r: dict[str, Any]) -> float:
    return float(r["records"] / r["seconds"])


def python_ratios(get: dict[tuple[str, str, str], dict[str, Any]]) -> dict[str, bool]:
    for which in ("spec", "pack"):
        speedup = rate(get[("match", "duckdb", which)]) / rate(get[("match", "python", which)])
        print(f"{which}: duckdb engine / per-event python = {speedup:,.0f}x (records/s)")
    hand = rate(get[("match", "hand SQL", "spec")]) / rate(get[("match", "duckdb", "spec")])
    print(f"spec: hand-written SQL / duckdb engine = {hand:.2f}x (time ratio; target <= 1.5)")
    scan_ratio = rate(get[("scan", "duckdb@small", "pack")]) / rate(get[("scan", "python", "pack")])
    print(f"pack scan with alerts: duckdb / python = {scan_ratio:.1f}x (records/s)")
    return {
        "hand SQL == duckdb (spec, full file)": agree(
            get[("match", "hand SQL", "spec")], get[("match", "duckdb", "spec")], SPEC_RULES),
        "python == duckdb (spec, small file)": agree(
            get[("match", "python", "spec")], get[("match", "duckdb@small", "spec")],
            SPEC_RULES),
        "python == duckdb (pack, small file)": agree(
            get[("match", "python", "pack")], get[("match", "duckdb@small", "pack")],
            tuple(get[("match", "python", "pack")]["matches"])),
        "scan alerts duckdb == python": get[("scan", "duckdb@small", "pack")]["alert_ids"]
        == get[("scan", "python", "pack")]["alert_ids"],
    }


def spark_ratios(get: dict[tuple[str, str, str], dict[str, Any]], which: str) -> dict[str, bool]:
    duck, spark = (get[("scan", e, which)] for e in ("duckdb", "spark"))
    print(f"{which} scan with alerts: spark time / duckdb time = "
          f"{spark['seconds'] / duck['seconds']:.2f} (spark session start "
          f"{spark['setup']:.1f} s, not counted)")
    same = (duck["alert_digest"] == spark["alert_digest"] and duck["alerts"] == spark["alerts"]
            and duck["matches"] == spark["matches"])
    return {f"{which} scan alerts duckdb == spark (every alert: id, counts, title)": same}


def alert_ratios(get: dict[tuple[str, str, str], dict[str, Any]], rule_sets: list[str]) -> None:
    for reference in ("hand alerts", "hand full"):
        hand = get.get(("jsonl", reference, "spec"))
        if hand is None:
            continue
        for which in rule_sets:
            scan = get[("jsonl", "duckdb", which)]
            target = " (target <= 2)" if which == "spec" else ""
            print(f"{which} scan to JSONL / {reference} query: time "
                  f"{scan['seconds'] / hand['seconds']:.1f}x{target}, CPU "
                  f"{scan['cpu'] / hand['cpu']:.1f}x, peak RSS "
                  f"{scan['rss_mb'] / hand['rss_mb']:.2f}x (scan {scan['rss_mb']:,.0f} MB, "
                  f"target < 2048), JSONL {scan['jsonl_mb'] / hand['jsonl_mb']:.1f}x"
                  + ("" if which != "spec" else
                     f", same number of alerts: {scan['alerts'] == hand['alerts']}"))


def rare_ratios(get: dict[tuple[str, str, str], dict[str, Any]]) -> dict[str, bool]:
    scan = get[("rare", "duckdb", RARE_RULES)]
    matches = sum(count for count, _ in scan["matches"].values())
    print(f"rare matches: {RARE_RULES} on clean traffic, {matches:,} matches "
          f"({matches / max(scan['records'], 1):.2%} of records), {rate(scan):,.0f} records/s "
          f"(target >= 8,000,000 on 2 cores)")
    read_only = get.get(("rare", "read only", RARE_RULES))
    if read_only is not None:
        print(f"rare matches: the phase-1 read alone takes "
              f"{read_only['seconds'] / scan['seconds']:.0%} of the scan's time "
              f"({rate(read_only):,.0f} records/s)")
    checks = {}
    query = get.get(("rare", "one query", RARE_RULES))
    if query is not None:
        print(f"rare matches: the scan's condition query alone, DuckDB reading the file, "
              f"{rate(query):,.0f} records/s; the scan takes "
              f"{scan['seconds'] / query['seconds']:.1f}x its time")
        if not query["python_rows"]:  # else Python decides some of the scan's matches
            checks["rare matches: scan == one query"] = all(
                scan["matches"].get(rule, [0])[0] == count
                for rule, (count, _) in query["matches"].items())
    timed = get.get(("rare", "phases timed", RARE_RULES))
    if timed is not None:
        print_phases("rare-match scan", timed)
    return checks


def print_phases(title: str, timed: dict[str, Any]) -> None:
    """Where a scan's time went: each phase's wall and CPU seconds (CPU of the thread that ran
    it; pyarrow's and DuckDB's own threads are not counted) and share of the scan's time."""
    print(f"\n{title} by phase ({timed['records']:,} records, {timed['seconds']:.2f} s)")
    print(f"{'phase':<34} {'wall s':>7} {'thread CPU s':>12} {'of the scan':>11}")
    for phase, (wall, cpu) in timed["phases"].items():
        print(f"{phase:<34} {wall:>7.2f} {cpu:>12.2f} {wall / timed['seconds']:>11.0%}")
    main_thread = sum(wall for phase, (wall, _) in timed["phases"].items()
                      if "prefetch thread" not in phase)
    print(f"{'rest of the main thread':<34} {timed['seconds'] - main_thread:>7.2f} "
          f"{'':>12} {(timed['seconds'] - main_thread) / timed['seconds']:>11.0%}")
    print(f"CPU: {timed['main_cpu']:.2f} s in the main thread, {timed['cpu']:.2f} s in the whole "
          f"process (its other threads: Parquet decoding, DuckDB, the prefetch thread)")


if __name__ == "__main__":
    main()
