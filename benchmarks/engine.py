"""Engine benchmark: compiled DuckDB conditions vs per-event Python vs a hand-written query.

Generates N realistic flow records (`tests.flowgen.generate`: private/public, DNS to approved
and rogue resolvers, inbound to common and odd ports, return flows, NODATA, IPv6) as AWS Parquet
and gzip text, then measures, each in its own process (so peak RSS is that run's alone):

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
                   both engines (Spark in local[*]; its session start is reported, not counted),
                   every alert compared.

It checks that all of them agree on which records match, then prints records/s, peak RSS and
the ratios. Run: `python benchmarks/engine.py --records 10000000` (add `--engines duckdb,spark`
for the Spark comparison, `--engines duckdb,python,spark` for everything).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# The flow generator is test code (tests/flowgen, not in the wheel): make the repository root
# importable so that this script runs from a checkout, wherever it is started from.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC_RULES = ("AWS.VPC.UnapprovedOutboundDNS", "AWS.VPC.InboundPortWhitelist")
SEED = 42


def generate(workdir: Path, records: int, reuse: bool, text: bool = True) -> dict[str, Path]:
    from tests.flowgen.generate import generate_flows, write_parquet, write_text

    paths = {"parquet": workdir / f"flows-{records}.parquet",
             "text": workdir / f"flows-{records}.log.gz"}
    if not (reuse and paths["parquet"].exists()):
        write_parquet(generate_flows(records, SEED), str(paths["parquet"]))
    if text and not (reuse and paths["text"].exists()):
        write_text(generate_flows(records, SEED), str(paths["text"]))
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


HAND_SQL = """
WITH f AS (
  SELECT row_number() OVER () - 1 AS pos, srcaddr, dstaddr, dstport
  FROM read_parquet($path)
), c AS (
  SELECT f.pos, f.dstaddr, f.dstport, s.is_global AS src_global,
         d.is_global AS dst_global, r.is_private AS resolver_private,
         dstport IN (53, 5353) AND NOT src_global AND NOT resolver_private
           AND dstaddr IS NOT NULL AND dstaddr NOT IN ('1.1.1.1', '8.8.8.8') AS dns,
         dstport IS NOT NULL AND dstport <> 0 AND dstport NOT IN (80, 443)
           AND src_global AND NOT dst_global AS inbound
  FROM f
  JOIN classes s ON s.addr = coalesce(nullif(f.srcaddr, ''), '0.0.0.0/32')
  JOIN classes d ON d.addr = coalesce(nullif(f.dstaddr, ''), '1.0.0.0/32')
  JOIN classes r ON r.addr = coalesce(nullif(f.dstaddr, ''), '192.168.0.1/32')
)
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


CHILDREN = {
    "match-duckdb": child_match_duckdb,
    "match-python": child_match_python,
    "match-handsql": child_hand_sql,
    "scan-duckdb": lambda p, w: child_scan(p, w, "duckdb"),
    "scan-python": lambda p, w: child_scan(p, w, "python"),
    "scan-spark": lambda p, w: child_scan(p, w, "spark"),
}


def run_child(mode: str, path: Path, which: str) -> dict[str, Any]:
    """Run one measurement in a fresh process; returns its result, seconds and peak RSS."""
    cmd = [sys.executable, __file__, "--child", mode, "--path", str(path), "--which", which]
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} failed with exit code {proc.returncode}")
        out.seek(0)
        result = json.loads(out.read())
    result["rss_mb"] = usage.ru_maxrss / 1024
    result["wall"] = time.perf_counter() - start
    return result


def child_main(mode: str, path: str, which: str) -> None:
    start = time.perf_counter()
    result = CHILDREN[mode](path, which)
    result["seconds"] = time.perf_counter() - start - result.get("setup", 0.0)
    print(json.dumps(result))


def agree(a: dict[str, Any], b: dict[str, Any], rules: tuple[str, ...]) -> bool:
    return all(a["matches"].get(r, [0, 0])[:2] == b["matches"].get(r, [0, 0])[:2] for r in rules)


ENGINES = ("duckdb", "python", "spark")
RULE_SETS = ("spec", "pack", "pack-tuned")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--python-records", type=int, default=300_000,
                        help="records for the per-event Python runs (compared by records/s)")
    parser.add_argument("--engines", default="duckdb,python",
                        help="comma-separated, of duckdb, python, spark. With python: the match "
                        "and scan comparisons with per-event Python; with spark: a whole scan of "
                        "the --records file by duckdb and by spark, alerts compared")
    parser.add_argument("--scan-rules", choices=RULE_SETS, default="pack",
                        help="rules of the duckdb/spark scans (pack-tuned: the pack with the "
                        "tuned rules in place of the spec rules)")
    parser.add_argument("--workdir", default="/tmp/flowwarden-bench")
    parser.add_argument("--reuse", action="store_true", help="reuse generated files")
    parser.add_argument("--child"), parser.add_argument("--path"), parser.add_argument("--which")
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.path, args.which)
        return
    engines = args.engines.split(",")
    if not set(engines) <= set(ENGINES) or "duckdb" not in engines:
        parser.error(f"--engines: duckdb plus any of {', '.join(ENGINES[1:])}")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    python = "python" in engines
    big = generate(workdir, args.records, args.reuse, text=python)
    rows: list[tuple[str, str, str, dict[str, Any]]] = []
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
    if "spark" in engines:
        for engine in ("duckdb", "spark"):
            rows.append(("scan", engine, args.scan_rules,
                         run_child(f"scan-{engine}", big["parquet"], args.scan_rules)))
    report(rows, args)


def report(rows: list[tuple[str, str, str, dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"\n{'what':<6} {'engine':<15} {'rules':<10} {'records':>11} {'seconds':>8} "
          f"{'records/s':>12} {'alerts':>9} {'peak RSS MB':>11}")
    rate = {}
    for what, engine, which, r in rows:
        rate[(what, engine, which)] = r["records"] / r["seconds"]
        alerts = f"{r['alerts']:,}" if "alerts" in r else ""
        print(f"{what:<6} {engine:<15} {which:<10} {r['records']:>11,} {r['seconds']:>8.2f} "
              f"{r['records'] / r['seconds']:>12,.0f} {alerts:>9} {r['rss_mb']:>11.0f}")
    get = {(w, e, s): r for w, e, s, r in rows}
    print()
    checks: dict[str, bool] = {}
    if ("match", "python", "spec") in get:
        for which in ("spec", "pack"):
            speedup = rate[("match", "duckdb", which)] / rate[("match", "python", which)]
            print(f"{which}: duckdb engine / per-event python = {speedup:,.0f}x (records/s)")
        hand = rate[("match", "hand SQL", "spec")] / rate[("match", "duckdb", "spec")]
        print(f"spec: hand-written SQL / duckdb engine = {hand:.2f}x (time ratio; target <= 1.5)")
        scan_ratio = rate[("scan", "duckdb@small", "pack")] / rate[("scan", "python", "pack")]
        print(f"pack scan with alerts: duckdb / python = {scan_ratio:.1f}x (records/s)")
        checks.update({
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
        })
    if ("scan", "spark", args.scan_rules) in get:
        duck, spark = (get[("scan", e, args.scan_rules)] for e in ("duckdb", "spark"))
        print(f"{args.scan_rules} scan with alerts: spark time / duckdb time = "
              f"{spark['seconds'] / duck['seconds']:.2f} (spark session start "
              f"{spark['setup']:.1f} s, not counted)")
        checks["scan alerts duckdb == spark (every alert: id, counts, title)"] = (
            duck["alert_digest"] == spark["alert_digest"] and duck["alerts"] == spark["alerts"]
            and duck["matches"] == spark["matches"])
    for name, ok in checks.items():
        print(f"{'OK  ' if ok else 'FAIL'} {name}")
    if not all(checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
