"""Alerts benchmark: the whole scan to a JSON-lines alert file vs a hand-written DuckDB query.

For N generated AWS Parquet records (``engine.generate``: realistic address cardinality), each in
its own process so that peak RSS is that run's alone:

- scan:     ``flowwarden scan FILE -o alerts.jsonl`` as the CLI runs it (``run_stateless``, the
            duckdb engine) with the rule set ``--scan-rules`` (spec: the two seed rules; pack:
            the built-in pack; pack-tuned);
- hand SQL: one DuckDB query computing the seed rules' alerts (IP classes per distinct address
            from Python's ``ipaddress``, titles as dedup keys, 60-minute windows, count,
            first/last event time, the first record as sample) and writing them as JSON lines.

Prints records/s, alerts, peak RSS and the time ratio. Run:
``python benchmarks/alerts.py --records 1000000 --scan-rules spec``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine.py's generator and rule sets

HAND_ALERTS = """
COPY (
WITH f AS (
  SELECT row_number() OVER () - 1 AS pos, *
  FROM read_parquet($path)
), c AS (
  SELECT f.*,
         dstport IN (53, 5353) AND NOT s.is_global AND NOT r.is_private
           AND dstaddr IS NOT NULL AND dstaddr NOT IN ('1.1.1.1', '8.8.8.8') AS dns,
         dstport IS NOT NULL AND dstport <> 0 AND dstport NOT IN (80, 443)
           AND s.is_global AND NOT d.is_global AS inbound
  FROM f
  JOIN classes s ON s.addr = coalesce(nullif(f.srcaddr, ''), '0.0.0.0/32')
  JOIN classes d ON d.addr = coalesce(nullif(f.dstaddr, ''), '1.0.0.0/32')
  JOIN classes r ON r.addr = coalesce(nullif(f.dstaddr, ''), '192.168.0.1/32')
), m AS (
  SELECT 'AWS.VPC.UnapprovedOutboundDNS' AS rule_id,
         'Outbound DNS query from [' || coalesce(srcaddr, 'None') || '] to unapproved resolver ['
           || coalesce(dstaddr, 'None') || ']' AS title, * FROM c WHERE dns
  UNION ALL
  SELECT 'AWS.VPC.InboundPortWhitelist',
         'Inbound traffic from [' || coalesce(srcaddr, 'None') || '] to non-allowlisted port ['
           || coalesce(CAST(dstport AS VARCHAR), 'None') || '] on ['
           || coalesce(dstaddr, 'None') || ']', * FROM c WHERE inbound
)
SELECT rule_id, title, title AS dedup, "start" // 3600 AS window, count(*) AS event_count,
       min("start") AS first_event_time, max("start") AS last_event_time,
       arg_min(struct_pack(srcaddr, dstaddr, srcport, dstport, protocol, action, account_id,
                           interface_id, "start", "end", bytes, packets, log_status), pos)
         AS sample
FROM m GROUP BY ALL
) TO $out (FORMAT JSON)
"""


def child_scan(path: str, which: str, out: str) -> dict[str, Any]:
    from engine import load_rules

    from flowwarden.alerts.delivery import OutputSpec
    from flowwarden.runs.checkpoint import run_stateless

    pack, rules = load_rules(which)
    result = run_stateless(pack, [path], engine="duckdb", rule_ids=[r.id for r in rules],
                           outputs=OutputSpec(output=out))
    return {"records": result.scan.records, "alerts": len(result.alerts)}


def child_hand(path: str, which: str, out: str) -> dict[str, Any]:
    import duckdb
    from engine import address_classes

    con = duckdb.connect()
    address_classes(con, path)
    con.execute(HAND_ALERTS, {"path": path, "out": out})
    records = con.execute("SELECT count(*) FROM read_parquet($path)", {"path": path}).fetchone()
    with open(out, "rb") as handle:
        alerts = sum(1 for _ in handle)
    return {"records": records[0] if records else 0, "alerts": alerts}


CHILDREN = {"scan": child_scan, "hand": child_hand}


def run_child(mode: str, path: Path, which: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile("w+") as report:
        out = os.path.join(folder, "alerts.jsonl")
        cmd = [sys.executable, __file__, "--child", mode, "--path", str(path), "--which", which,
               "--out", out]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=report)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{mode} failed")
        report.seek(0)
        result: dict[str, Any] = json.loads(report.read())
        result["seconds"] = time.perf_counter() - start
        result["rss_mb"] = usage.ru_maxrss / 1024
        result["jsonl_mb"] = os.path.getsize(out) / 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--scan-rules", choices=("spec", "pack", "pack-tuned"), default="spec")
    parser.add_argument("--workdir", default="/tmp/flowwarden-bench")
    parser.add_argument("--reuse", action="store_true", help="reuse generated files")
    parser.add_argument("--child"), parser.add_argument("--path"), parser.add_argument("--which")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.path, args.which, args.out)))
        return
    from engine import generate

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = generate(workdir, args.records, args.reuse, text=False)["parquet"]
    rows = [("scan to JSONL", args.scan_rules, run_child("scan", path, args.scan_rules)),
            ("hand-written alert query to JSON", "spec", run_child("hand", path, "spec"))]
    print("| what | rules | records | seconds | records/s | alerts | JSONL MB | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for what, rules, r in rows:
        print(f"| {what} | {rules} | {r['records']:,} | {r['seconds']:.1f} | "
              f"{r['records'] / r['seconds']:,.0f} | {r['alerts']:,} | {r['jsonl_mb']:.0f} | "
              f"{r['rss_mb']:,.0f} |")
    print(f"scan time / hand-written query time = {rows[0][2]['seconds'] / rows[1][2]['seconds']:.1f}")


if __name__ == "__main__":
    main()
