"""Report benchmark: `flowwarden report` over an alert store of millions of alerts.

Generates an alert store (the `alerts` table of `flowwarden/alerts/store.py`, plus a few
`scan_files` rows) entirely in DuckDB SQL (`INSERT ... SELECT ... FROM range(n)`), shaped like a
10M-record scan's: 6 rules with a skewed mix, a few hundred thousand distinct source addresses
(power-law, so the top-5 lists mean something), an `alert_context` like the built-in rules'
`flow_context` and 3 raw VPC flow samples per alert. Then it times `build_report` over it, each
run in its own subprocess so that the peak RSS printed (VmHWM) is the report's alone, and prints
a table with the targets (report under 5 MB, written in under 10 s).

    python benchmarks/report.py                         # 4.4M alerts, store in a temporary folder
    python benchmarks/report.py --alerts 4400000 --workdir /tmp/fw-report --keep
    python benchmarks/report.py --workdir /tmp/fw-report --reuse --keep   # re-time a kept store
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run from a checkout, wherever it is started from.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingest import peak_rss_kib  # noqa: E402 - the same measurement as the ingest benchmark

from flowwarden.logic.render.sqltext import sql_literal  # noqa: E402

ALERTS = 4_400_000
LIMITS = (50,)
TARGET_MB, TARGET_SECONDS = 5.0, 10.0
STORE_NAME = "alerts.duckdb"
DISTINCT_SOURCES = 300_000

# (rule id, name, severity, share of the alerts in percent, threshold, MITRE, title template);
# the generator gives rules 1 and 2 admin and DNS ports, rule 4 (PortScan) many events and
# ports, and rule 5 (SKIPDATA) no addresses: its alerts are the ones whose top-address lookup
# falls back to the samples.
RULES = (
    ("AWS.VPC.InboundPortWhitelist", "VPC Flow Logs Inbound Port Allowlist", "High", 80, 1,
     ("TA0011", "Command and Control", "T1571", "Non-Standard Port"),
     "Inbound traffic from [{sip}] to non-allowlisted port [{dport}] on [{dip}]"),
    ("AWS.VPC.InboundAdminPort", "VPC Flow Logs Inbound Admin Port", "High", 8, 1,
     ("TA0001", "Initial Access", "T1133", "External Remote Services"),
     "Inbound admin port [{dport}] from [{sip}] to [{dip}]"),
    ("AWS.VPC.UnapprovedOutboundDNS", "VPC Flow Logs Unapproved Outbound DNS", "Medium", 6, 1,
     ("TA0011", "Command and Control", "T1071.004", "Application Layer Protocol: DNS"),
     "DNS request from [{sip}] to unapproved resolver [{dip}]"),
    ("AWS.VPC.SSHAcceptedFromInternet", "VPC Flow Logs SSH Accepted From Internet", "Critical", 3,
     1, ("TA0001", "Initial Access", "T1021.004", "Remote Services: SSH"),
     "SSH accepted from [{sip}] on [{dip}]"),
    ("AWS.VPC.PortScan", "VPC Flow Logs Port Scan", "Medium", 2, 10,
     ("TA0007", "Discovery", "T1046", "Network Service Discovery"),
     "Port scan from [{sip}] against [{dip}]"),
    ("AWS.VPC.SkipDataLogStatus", "VPC Flow Logs Skipped Records (SKIPDATA)", "Info", 1, 1,
     ("TA0005", "Defense Evasion", "T1562", "Impair Defenses"),
     "Flow log records skipped on interface [{eni}]"),
)
PORTSCAN, SKIPDATA = 4, 5
assert sum(rule[3] for rule in RULES) == 100


def _template(text: str) -> str:
    """A title template as a DuckDB `format` call over the generator's columns (`{sip}`...)."""
    names = re.findall(r"\{(\w+)\}", text)
    fmt = re.sub(r"\{\w+\}", "{}", text)
    return f"format({sql_literal(fmt)}, {', '.join(names)})"


def _rule_choice() -> str:
    """SQL giving each row a rule index with the RULES shares."""
    cases, upto = [], 0
    for index, rule in enumerate(RULES[:-1]):
        upto += rule[3]
        cases.append(f"WHEN hash(i, 0) % 100 < {upto} THEN {index}")
    return f"CASE {' '.join(cases)} ELSE {len(RULES) - 1} END"


def generate_store(path: Path, alerts: int) -> None:
    """Write an alert store of `alerts` alerts (and 8 scan_files rows) at `path`."""
    import duckdb

    from flowwarden.alerts.store import AlertStore

    AlertStore(path).close()  # the real schema
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        rules = []
        for index, (rule_id, name, severity, _, threshold, mitre, _) in enumerate(RULES):
            tactic_id, tactic, technique_id, technique = mitre
            mitre_json = json.dumps([{"tactic": tactic, "tactic_id": tactic_id,
                                      "technique": technique, "technique_id": technique_id}])
            rules.append((index, rule_id, name, severity, threshold, mitre_json,
                          f"{name}: what happened and why it matters.",
                          f"Investigate [{rule_id}] alerts: check the source, then the target.",
                          f"https://docs.aws.amazon.com/vpc/latest/userguide/{index}.html"))
        con.execute("CREATE TEMP TABLE bench_rules (idx INT, rule_id VARCHAR, rule_name VARCHAR, "
                    "severity VARCHAR, threshold INT, mitre VARCHAR, description VARCHAR, "
                    "runbook VARCHAR, reference VARCHAR)")
        con.executemany("INSERT INTO bench_rules VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rules)
        titles = " ".join(f"WHEN {i} THEN {_template(r[6])}" for i, r in enumerate(RULES))
        con.execute(_sample_macro())
        con.execute(f"""
        INSERT INTO alerts
        WITH base AS (
            SELECT i,
                {_rule_choice()} AS rule,
                -- power law over {DISTINCT_SOURCES} source addresses: a few very busy ones
                floor({DISTINCT_SOURCES} * pow((hash(i, 1) % 1000000) / 1e6, 3))::BIGINT AS x,
                hash(i, 2) % 65536 AS d,
                32768 + hash(i, 4) % 28000 AS sport,
                to_timestamp(1704067200 + (hash(i, 5) % 86400000) / 1000.0) AS first,
                hash(i, 6) % 64 AS eni_n
            FROM range({int(alerts)}) t(i)
        ), shaped AS (
            SELECT *,
                format('{{}}.{{}}.{{}}.{{}}', 20 + x // 65536, (x // 256) % 256, x % 256,
                       1 + (x * 37) % 254) AS sip,
                format('10.0.{{}}.{{}}', d // 256, d % 256) AS dip,
                CASE rule WHEN 0 THEN 1024 + hash(i, 3) % 64000
                          WHEN 1 THEN [22, 3389][(1 + hash(i, 3) % 2)::BIGINT]
                          WHEN 2 THEN [53, 5353][(1 + hash(i, 3) % 2)::BIGINT]
                          WHEN 3 THEN 22 WHEN {PORTSCAN} THEN 1024 + hash(i, 3) % 64000 END AS dport,
                CASE WHEN rule = {PORTSCAN} THEN 10 + hash(i, 7) % 60 ELSE 1 END AS events,
                format('eni-{{}}', md5(eni_n::VARCHAR)[:17]) AS eni
            FROM base
        )
        SELECT
            md5(i::VARCHAR) AS id, r.rule_id, r.rule_name,
            CASE rule {titles} END AS title,
            r.severity,
            CASE WHEN rule = {SKIPDATA} THEN format('123456789012:{{}}', eni)
                 ELSE format('{{}}->{{}}:{{}}', sip, dip, dport) END AS dedup,
            date_trunc('hour', first) AS window_start, first AS first_event_time,
            first + to_seconds(events) AS last_event_time, events AS event_count,
            CASE WHEN rule = {PORTSCAN} THEN events END AS unique_count, r.threshold,
            r.mitre::JSON, r.runbook, r.reference, r.description,
            '["AWS.VPCFlow", "OCSF.NetworkActivity"]'::JSON AS log_types,
            CASE WHEN rule = {SKIPDATA} THEN json_object(
                    'account_id', '123456789012', 'action', NULL, 'bytes', NULL,
                    'destination_ip', NULL, 'destination_port', NULL,
                    'end_time', strftime(first + INTERVAL 43 SECOND, '%Y-%m-%dT%H:%M:%S+00:00'),
                    'interface_id', eni, 'log_status', 'SKIPDATA', 'packets', NULL,
                    'protocol', NULL, 'region', 'us-east-1', 'source_ip', NULL,
                    'source_port', NULL,
                    'start_time', strftime(first, '%Y-%m-%dT%H:%M:%S+00:00'),
                    'vpc_id', 'vpc-0a1b2c3d4e5f60718')
                 ELSE json_object(
                    'account_id', '123456789012', 'action', 'ACCEPT', 'bytes', 40 + d % 1400,
                    'destination_ip', dip, 'destination_port', dport,
                    'end_time', strftime(first + INTERVAL 48 SECOND, '%Y-%m-%dT%H:%M:%S+00:00'),
                    'interface_id', eni, 'log_status', 'OK', 'packets', 1 + d % 9,
                    'protocol', CASE WHEN rule = 2 THEN 17 ELSE 6 END, 'region', 'us-east-1',
                    'source_ip', sip, 'source_port', sport,
                    'start_time', strftime(first, '%Y-%m-%dT%H:%M:%S+00:00'),
                    'vpc_id', 'vpc-0a1b2c3d4e5f60718') END AS alert_context,
            NULL::JSON AS destinations,
            json_array(bench_sample(i, 0, rule = {SKIPDATA}, first, sip, dip, dport, sport, eni),
                       bench_sample(i, 1, rule = {SKIPDATA}, first, sip, dip,
                                    CASE WHEN rule = {PORTSCAN} THEN 1024 + hash(i, 8) % 64000
                                         ELSE dport END, sport, eni),
                       bench_sample(i, 2, rule = {SKIPDATA}, first, sip, dip,
                                    CASE WHEN rule = {PORTSCAN} THEN 1024 + hash(i, 9) % 64000
                                         ELSE dport END, sport, eni)) AS samples
        FROM shaped JOIN bench_rules r ON r.idx = shaped.rule
        """)
        con.execute("""
        INSERT INTO scan_files
        SELECT 'bench-scan', format('s3://flow-logs/AWSLogs/123456789012/vpcflowlogs/us-east-1/'
                                    '2024/01/01/fl-bench_{:04x}.log.gz', i),
               'AWS.VPCFlow', 1250000, 1250000 - i, i,
               coalesce((SELECT json_group_array(json_object('line', 1000 * (j + 1),
                                                             'reason', 'too few fields'))
                         FROM range(i) r(j)), '[]')
        FROM range(8) t(i)
        """)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _sample_macro() -> str:
    """`bench_sample(...)`: one raw VPC flow record as the scan keeps it in `samples`."""
    return """
    CREATE OR REPLACE TEMP MACRO bench_sample(i, k, skip, first, sip, dip, dport, sport, eni) AS
    CASE WHEN skip THEN json_object(
        'account', '123456789012', 'end', strftime(first + INTERVAL 43 SECOND,
                                                   '%Y-%m-%dT%H:%M:%S+00:00'),
        'instanceId', 'i-' || md5(eni)[:17], 'interfaceId', eni,
        'p_any_ip_addresses', []::VARCHAR[],
        'p_event_time', strftime(first, '%Y-%m-%dT%H:%M:%S+00:00'),
        'p_log_type', 'AWS.VPCFlow', 'p_parse_time', '2024-01-02T03:04:05.123456+00:00',
        'p_source_file', format('s3://flow-logs/AWSLogs/123456789012/vpcflowlogs/us-east-1/'
                                '2024/01/01/fl-bench_{:04x}.log.gz', i % 8),
        'region', 'us-east-1', 'start', strftime(first, '%Y-%m-%dT%H:%M:%S+00:00'),
        'status', 'SKIPDATA', 'subNetId', 'subnet-' || (i % 7), 'version', 5,
        'vpcId', 'vpc-0a1b2c3d4e5f60718')
    ELSE json_object(
        'account', '123456789012', 'action', 'ACCEPT', 'bytes', 40 + (i + k) % 1400,
        'dstAddr', dip, 'dstPort', dport,
        'end', strftime(first + to_seconds(48 + k), '%Y-%m-%dT%H:%M:%S+00:00'),
        'flowDirection', 'ingress', 'instanceId', 'i-' || md5(eni)[:17], 'interfaceId', eni,
        'p_any_ip_addresses', [sip, dip],
        'p_event_time', strftime(first + to_seconds(k), '%Y-%m-%dT%H:%M:%S+00:00'),
        'p_log_type', 'AWS.VPCFlow', 'p_parse_time', '2024-01-02T03:04:05.123456+00:00',
        'p_source_file', format('s3://flow-logs/AWSLogs/123456789012/vpcflowlogs/us-east-1/'
                                '2024/01/01/fl-bench_{:04x}.log.gz', i % 8),
        'packets', 1 + (i + k) % 9, 'pktDstAddr', dip, 'pktSrcAddr', sip, 'protocol', 6,
        'region', 'us-east-1', 'srcAddr', sip, 'srcPort', sport,
        'start', strftime(first + to_seconds(k), '%Y-%m-%dT%H:%M:%S+00:00'), 'status', 'OK',
        'subNetId', 'subnet-' || (i % 7), 'tcpFlags', 2, 'trafficType', 'IPv4', 'version', 5,
        'vpcId', 'vpc-0a1b2c3d4e5f60718')
    END
    """


def child(store: str, out: str, limit: int) -> None:
    """Write the report and print JSON: seconds, CPU seconds, bytes, peak and baseline RSS."""
    from flowwarden.pages import build_report

    baseline = peak_rss_kib()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    path = build_report(store, out, limit=limit)
    seconds = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "seconds": seconds,
        "cpu_seconds": used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime,
        "bytes": path.stat().st_size, "peak_kib": peak_rss_kib(), "baseline_kib": baseline,
    }))


def measure(store: Path, out: Path, limit: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(store), str(out), str(limit)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=ALERTS, help="alerts to generate")
    parser.add_argument("--limit", type=int, action="append",
                        help=f"alerts embedded per rule; repeat to compare (default {LIMITS[0]})")
    parser.add_argument("--repeat", type=int, default=3,
                        help="reports written per limit (the machine may be shared: the spread "
                             "shows how much)")
    parser.add_argument("--workdir", help="where to write the store (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the store and reports")
    parser.add_argument("--reuse", action="store_true",
                        help=f"time the {STORE_NAME} already in --workdir (no generation)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="flowwarden-report-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / STORE_NAME
    try:
        if not args.reuse:
            store.unlink(missing_ok=True)
            started = time.perf_counter()
            generate_store(store, args.alerts)
            print(f"generated {args.alerts:,} alerts in {time.perf_counter() - started:.0f} s")
        import duckdb

        with duckdb.connect(str(store), read_only=True) as con:
            row = con.execute("SELECT count(*), count(DISTINCT rule_id), count(DISTINCT "
                              "alert_context->>'$.source_ip') FROM alerts").fetchone()
        assert row is not None
        alerts, rules, sources = (int(v) for v in row)
        print(f"store: {alerts:,} alerts, {rules} rules, {sources:,} distinct source addresses, "
              f"{store.stat().st_size / 1e6:,.0f} MB")
        header = (f"{'alerts':>10} {'per rule':>8} {'run':>3} {'report MB':>9} {'seconds':>7} "
                  f"{'CPU s':>6} {'peak RSS MB':>11} {'after import':>12} {'targets':>8}")
        print(header)
        print("-" * len(header))
        for limit in args.limit or LIMITS:
            for run in range(1, args.repeat + 1):
                result = measure(store, workdir / f"report-{limit}.html", limit)
                megabytes = result["bytes"] / 1e6
                ok = megabytes < TARGET_MB and result["seconds"] < TARGET_SECONDS
                print(f"{alerts:>10,} {limit:>8} {run:>3} {megabytes:>9.2f} "
                      f"{result['seconds']:>7.2f} {result['cpu_seconds']:>6.1f} "
                      f"{result['peak_kib'] / 1024:>11.0f} {result['baseline_kib'] / 1024:>12.0f} "
                      f"{'met' if ok else 'MISSED':>8}", flush=True)
        print(f"Targets: report under {TARGET_MB:.0f} MB, written in under {TARGET_SECONDS:.0f} s "
              "(wall time of build_report, in a process of its own). CPU s is that process's "
              "user + system time, which a busy machine distorts less than wall time. Peak RSS "
              "is its high-water mark (VmHWM); 'after import' is the mark before the report.")
    finally:
        if not args.keep:
            if args.workdir:
                store.unlink(missing_ok=True)
                for path in workdir.glob("report-*.html"):
                    path.unlink()
            else:
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
