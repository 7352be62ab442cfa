"""Enrichment benchmark (issue 18): a scan with lookup tables against the same scan without.

The target: 10M records with a 100k-row CIDR IOC table and a 1M-network mmdb cost at most 1.3x
the same scan without enrichment, with identical alerts from the duckdb, python and spark
engines.

Generated once under ``--workdir`` (``--reuse`` keeps them):

- flows: ``benchmarks/engine.py``'s generator, by default its clean traffic
  (``flows-clean-N.parquet``; ``--flows attack`` for ``flows-N.parquet``);
- ``iocs-100000.csv``: an IOC feed (``indicator,confidence,source``) of networks of mixed
  prefix lengths (hosts, /28 to /16), 20 of them holding addresses that a few flows use, so the
  scan has some matches (rare, as IOC hits are);
- ``asn-1000000.mmdb``: an ASN-style MaxMind DB (``autonomous_system_number``,
  ``autonomous_system_organization``) of one million /24 networks, among them the /24s of 20
  more such addresses, in the ASN the bench rule watches (written with ``mmdb-writer``: about
  a minute, once).

The pack: the built-in pack (its ``AWS.VPC.ThreatIntelMatch`` reads the ``threat_intel`` IOC
table) plus a small pack with a rule reading the mmdb's ASN (``Bench.AsnWatch``). By default the
built-in pack is ``pack-tuned`` on clean traffic, ``benchmarks/engine.py``'s rare-match scan:
the rules alert rarely, so the scan is fast and the enrichment's share of it shows most. (The
default pack alone alerts on a third of the generated records, ``--rules pack``: its scan is
then mostly alert grouping, tens of seconds per million records.) "Without
enrichment" is the same pack and rules with no lookup tables configured: the enrichment rules
then match nothing, and everything else runs as before, so the difference is the enrichment's
cost alone (loading the tables, matching, the wider batches the rules see).

A third scan, ``tables only``, has the tables but not the two enrichment rules: the cost of
the enrichment itself, apart from those rules' own Python on the records they match.

Each measured run is a child process (peak RSS is its own); ``seconds`` is building the scanner
(which loads the tables) plus the scan, not imports or loading the pack. ``enrich s`` is the
time inside ``Enricher.enrich`` (the per-batch matching), ``tables s`` the time to load them.
The three scans run in turn, ``--repeat`` rounds of them (the machine is shared and its load
drifts: a round's scans see much the same); the table shows each scan's median, and the ratio
checked is the median of the rounds' own with / without ratios. Then alerts are compared:
duckdb against python on ``--python-records`` records, duckdb against spark on the 1M file
with ``--spark``.
It fails (exit 1) when a check does: the 1.3x target, the other rules matching the same with
and without tables, the enrichment rules alerting, the engines' alerts agreeing.

Run: ``python benchmarks/enrichment.py --reuse`` (1M and 10M; ``--sizes 1000000`` for one).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.engine import alert_digest, generate  # noqa: E402  (after the path insert)

IOC_ROWS = 100_000
MMDB_NETWORKS = 1_000_000
IOC_TABLE, ASN_TABLE = "threat_intel", "asn"
SELECTORS = {"AWS.VPCFlow": ["srcAddr", "dstAddr"]}
ENRICHMENT_RULES = ("AWS.VPC.ThreatIntelMatch", "Bench.AsnWatch")
SEED = 18
ASN_RULE_YML = """AnalysisType: rule
RuleID: Bench.AsnWatch
Filename: asn_watch.py
Enabled: true
LogTypes: [AWS.VPCFlow]
Severity: Low
DedupPeriodMinutes: 60
"""
# Accepted flows with the watched ASN (the mmdb's ASNs are 64512 + n; 64512 holds the /24s of
# a few of the flows' addresses).
ASN_RULE_PY = '''
WATCHED = {64512}


def rule(event):
    if event.get("action") != "ACCEPT":
        return False
    return (event.deep_get("p_enrichment", "asn", "srcAddr", "autonomous_system_number")
            in WATCHED
            or event.deep_get("p_enrichment", "asn", "dstAddr", "autonomous_system_number")
            in WATCHED)


def title(event):
    side = "srcAddr" if event.deep_get("p_enrichment", "asn", "srcAddr",
                                       "autonomous_system_number") in WATCHED else "dstAddr"
    return f"Traffic with AS64512 ({event.deep_get('p_enrichment', 'asn', side, 'network')})"
'''
ASNS = 5000
# The scans compared: no tables; the tables and every rule; the tables without the two
# enrichment rules (the enrichment's own cost, without those rules' Python on their matches).
NONE, ENRICHED, TABLES_ONLY = "none", "2 tables", "tables only"
VARIANTS = (NONE, ENRICHED, TABLES_ONLY)


def public_v4(path: Path) -> list[int]:
    """Every public IPv4 address of a flows file, as sorted integers."""
    import duckdb

    rows = duckdb.connect().execute(
        "SELECT DISTINCT a FROM (SELECT srcaddr AS a FROM read_parquet($p) UNION ALL "
        "SELECT dstaddr FROM read_parquet($p)) WHERE a IS NOT NULL", {"p": str(path)}).fetchall()
    return sorted(int(ipaddress.ip_address(text)) for text in _global_v4(t for (t,) in rows))


def rare_addresses(path: Path, count: int) -> list[str]:
    """The ``count`` public IPv4 addresses that a flows file holds in the fewest records (about
    a hundred each in 1M): an indicator matches a few flows, not a tenth of them (which would
    time the rules' Python on matched records rather than the enrichment)."""
    import duckdb

    rows = duckdb.connect().execute(
        "SELECT a FROM (SELECT srcaddr AS a FROM read_parquet($p) UNION ALL "
        "SELECT dstaddr FROM read_parquet($p)) WHERE a IS NOT NULL GROUP BY a "
        "ORDER BY count(*), a", {"p": str(path)}).fetchall()
    found = _global_v4(t for (t,) in rows)
    return random.Random(SEED).sample(found[:count], min(count, len(found)))


def _global_v4(texts: Iterable[str]) -> list[str]:
    """The texts that are global IPv4 addresses, in their order."""
    found = []
    for text in texts:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address.version == 4 and address.is_global:
            found.append(text)
    return found


def write_iocs(path: Path, seen: list[str], rows: int, avoid: list[int]) -> None:
    """An IOC CSV: ``seen`` addresses (as hosts or their /28), the rest random public networks
    of mixed prefix lengths holding none of the addresses ``avoid`` (sorted): the feed matches
    the flows through ``seen`` alone."""
    import bisect

    rng = random.Random(SEED)
    lines = ["indicator,confidence,source"]
    for text in seen:
        length = rng.choice((32, 32, 28))
        network = ipaddress.ip_network(f"{text}/{length}", strict=False)
        lines.append(f"{network},{rng.randint(10, 100)},feed-{rng.randint(1, 5)}")
    lengths = (32,) * 12 + (28, 27, 26, 25, 24, 24, 24, 22, 20, 16)
    while len(lines) - 1 < rows:
        value = rng.randrange(1 << 24, 223 << 24)
        network = ipaddress.ip_network((value, rng.choice(lengths)), strict=False)
        first, last = int(network.network_address), int(network.broadcast_address)
        if network.is_global and bisect.bisect_left(avoid, first) == bisect.bisect_right(
                avoid, last):
            lines.append(f"{network},{rng.randint(10, 100)},feed-{rng.randint(1, 5)}")
    path.write_text("\n".join(lines) + "\n")


def write_mmdb(path: Path, seen: list[str], networks: int) -> None:
    """An ASN MaxMind DB of ``networks`` disjoint /24s, each with one of ``ASNS`` records:
    random ones, and the /24s of the ``seen`` addresses (in the watched ``WATCHED_ASN``)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    rng = random.Random(SEED)
    watched = {int(ipaddress.ip_address(text)) >> 8 for text in seen}
    prefixes = set(watched)
    while len(prefixes) < networks:
        prefixes.add(rng.randrange(1 << 16, 223 << 16))
    records = [{"autonomous_system_number": 64512 + n,
                "autonomous_system_organization": f"Bench Networks {n}"} for n in range(ASNS)]
    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-ASN")
    for prefix in sorted(prefixes):
        network = str(ipaddress.IPv4Network((prefix << 8, 24)))
        asn = 0 if prefix in watched else 1 + prefix % (ASNS - 1)
        writer.insert_network(IPSet([network]), records[asn])
    writer.to_db_file(str(path))


def tables(workdir: Path, reuse: bool) -> dict[str, Path]:
    """The IOC CSV and the mmdb, written once (matching a few addresses of the 1M clean flows)."""
    paths = {"iocs": workdir / f"iocs-{IOC_ROWS}.csv", "mmdb": workdir / f"asn-{MMDB_NETWORKS}.mmdb"}
    if reuse and all(p.exists() for p in paths.values()):
        return paths
    flows = generate(workdir, 1_000_000, reuse, text=False, clean=True)["parquet"]
    seen = rare_addresses(flows, 40)
    if not (reuse and paths["iocs"].exists()):
        write_iocs(paths["iocs"], seen[:20], IOC_ROWS, public_v4(flows))
    if not (reuse and paths["mmdb"].exists()):
        started = time.perf_counter()
        write_mmdb(paths["mmdb"], seen[20:], MMDB_NETWORKS)
        print(f"wrote {paths['mmdb']} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return paths


def load_pack(workdir: Path, enrich: bool, which: str) -> Any:
    """The built-in pack (``which``: pack, or pack-tuned as in ``benchmarks/engine.py``) plus the
    ASN rule's pack, with or without the lookup tables."""
    from flowwarden.config import parse_config
    from flowwarden.rules.loader import load_pack as load
    from flowwarden.rules.loader import resolve_pack_paths

    extra = workdir / "enrichment-pack"
    (extra / "rules").mkdir(parents=True, exist_ok=True)
    (extra / "rules" / "asn_watch.yml").write_text(ASN_RULE_YML)
    (extra / "rules" / "asn_watch.py").write_text(ASN_RULE_PY)
    paths = tables(workdir, reuse=True)
    settings: dict[str, Any] = {}
    if enrich:
        settings["lookup_tables"] = {
            IOC_TABLE: {"path": str(paths["iocs"]), "kind": "ioc-csv", "log_types": SELECTORS},
            ASN_TABLE: {"path": str(paths["mmdb"]), "kind": "mmdb", "log_types": SELECTORS}}
    config = parse_config(settings, str(workdir / "flowwarden.yaml"))
    return load([*resolve_pack_paths(["tuned"] if which == "pack-tuned" else []), extra], config)


def child_scan(path: str, workdir: str, engine: str, enrich: str, which: str
               ) -> dict[str, Any]:
    from flowwarden.engine.scan import Scanner
    from flowwarden.enrich.enricher import Enricher
    from flowwarden.logs import read

    pack = load_pack(Path(workdir), enrich != NONE, which)
    rules = [r for r in pack.active_rules()
             if enrich != TABLES_ONLY or r.id not in ENRICHMENT_RULES]
    spent = {"enrich": 0.0}
    enrich_batch = Enricher.enrich

    def timed(self: Enricher, batch: Any, log_type: str, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return enrich_batch(self, batch, log_type, *args)
        finally:
            spent["enrich"] += time.perf_counter() - started

    Enricher.enrich = timed  # type: ignore[method-assign]
    started = time.perf_counter()
    if engine == "spark":
        from flowwarden.engine.spark.session import spark_scan, spark_session

        session = spark_session("local[*]", {"spark.ui.enabled": "false"})
        session.sparkContext.setLogLevel("ERROR")
        setup = time.perf_counter() - started  # JVM start: not part of the scan's time
        started = time.perf_counter()
        result = spark_scan(pack, rules, [path], spark=session)
        session.stop()
        loaded = 0.0
    else:
        setup = 0.0
        scanner = Scanner(pack, rules, engine)
        loaded = time.perf_counter() - started
        result = scanner.scan(read([path]))
    seconds = time.perf_counter() - started
    return {"records": result.records, "alerts": len(result.alerts), "seconds": seconds,
            "setup": setup, "tables": loaded, "enrich": spent["enrich"],
            "matches": dict(result.matches), "alert_digest": alert_digest(list(result.alerts)),
            "alert_rules": sorted(a.rule_id for a in result.alerts)}


def run_child(path: Path, args: argparse.Namespace, engine: str, enrich: str = ENRICHED
              ) -> dict[str, Any]:
    """One scan in a fresh process: its result, CPU seconds and peak RSS."""
    with tempfile.TemporaryFile("w+") as report:
        cmd = [sys.executable, __file__, "--child", engine, "--path", str(path),
               "--workdir", args.workdir, "--rules", args.rules, "--enrich", enrich]
        proc = subprocess.Popen(cmd, stdout=report)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{engine} scan of {path} failed")
        report.seek(0)
        result: dict[str, Any] = json.loads(report.read())
    result["rss_mb"] = usage.ru_maxrss / 1024
    result["cpu"] = usage.ru_utime + usage.ru_stime
    return result


def median_runs(path: Path, args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], float]:
    """Each variant's duckdb scan of median seconds among ``--repeat`` (its other figures with
    it), the variants run in turn round after round (the machine's load drifts: each round's
    scans see much the same), and the median of the rounds' with / without time ratios. Every
    run of a variant must alert the same."""
    rounds = [{v: run_child(path, args, "duckdb", v) for v in VARIANTS} for _ in range(args.repeat)]
    chosen = {}
    for variant in VARIANTS:
        runs = sorted((r[variant] for r in rounds), key=lambda r: r["seconds"])
        if len({r["alert_digest"] for r in runs}) != 1:
            raise SystemExit(f"duckdb scans of {path} ({variant}) disagree between runs")
        chosen[variant] = {**runs[len(runs) // 2], "all_seconds": [r["seconds"] for r in runs],
                           "cpu": statistics.median(r["cpu"] for r in runs)}
    ratio = statistics.median(r[ENRICHED]["seconds"] / r[NONE]["seconds"] for r in rounds)
    return chosen, ratio


Row = tuple[str, str, dict[str, Any]]  # (engine, with or without, the child's result)


def print_table(rows: list[Row]) -> None:
    print(f"\n{'engine':<7} {'tables':<11} {'records':>11} {'seconds':>8} {'tables s':>8} "
          f"{'enrich s':>8} {'CPU s':>7} {'records/s':>12} {'alerts':>7} {'enr. alerts':>11} "
          f"{'peak RSS MB':>11}  runs (s)")
    for engine, which, r in rows:
        enriched = sum(1 for rule in r["alert_rules"] if rule in ENRICHMENT_RULES)
        shown = ", ".join(f"{s:.2f}" for s in r.get("all_seconds", [r["seconds"]]))
        print(f"{engine:<7} {which:<11} {r['records']:>11,} {r['seconds']:>8.2f} "
              f"{r['tables']:>8.2f} {r['enrich']:>8.2f} {r['cpu']:>7.2f} "
              f"{r['records'] / r['seconds']:>12,.0f} {r['alerts']:>7,} {enriched:>11,} "
              f"{r['rss_mb']:>11.0f}  {shown}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000",
                        help="comma-separated record counts of the timed duckdb scans")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the three scans (medians)")
    parser.add_argument("--python-records", type=int, default=20_000,
                        help="records of the duckdb/python alert comparison")
    parser.add_argument("--spark", action="store_true",
                        help="compare the 1M scan's alerts with the Spark engine's")
    parser.add_argument("--flows", choices=("clean", "attack"), default="clean",
                        help="the generator's traffic: clean (no attacks: the rules alert "
                        "rarely, so the enrichment's share shows most) or attack")
    parser.add_argument("--rules", choices=("pack", "pack-tuned"), default="pack-tuned",
                        help="the built-in rules: pack-tuned (the default pack with the tuned "
                        "rules in place of the two seed rules) or pack (the default pack alone: "
                        "its InboundPortWhitelist alerts on a third of the generated records)")
    parser.add_argument("--workdir", default="/tmp/flowwarden-bench")
    parser.add_argument("--reuse", action="store_true", help="reuse generated files")
    parser.add_argument("--child"), parser.add_argument("--path")
    parser.add_argument("--enrich", choices=VARIANTS, default=ENRICHED)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    workdir = Path(args.workdir)
    if args.child:
        print(json.dumps(child_scan(args.path, str(workdir), args.child, args.enrich,
                                    args.rules)))
        return
    workdir.mkdir(parents=True, exist_ok=True)
    tables(workdir, args.reuse)

    def flows(size: int) -> Path:
        return generate(workdir, size, args.reuse, text=False,
                        clean=args.flows == "clean")["parquet"]

    print(f"flows: {args.flows}, rules: {args.rules}", file=sys.stderr)
    checks: dict[str, bool] = {}
    rows: list[Row] = []
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        path = flows(size)
        medians, ratio = median_runs(path, args)
        plain, enriched, machinery = (medians[v] for v in VARIANTS)
        rows += [("duckdb", NONE, plain), ("duckdb", ENRICHED, enriched),
                 ("duckdb", TABLES_ONLY, machinery)]
        print(f"{size:,} records: with / without enrichment = {ratio:.2f}x time (median of "
              f"{args.repeat} rounds' ratios; medians "
              f"{enriched['seconds'] / plain['seconds']:.2f}x), "
              f"{enriched['cpu'] / plain['cpu']:.2f}x CPU; enrichment itself "
              f"{enriched['enrich']:.2f} s + tables {enriched['tables']:.2f} s (target <= 1.3x); "
              f"tables without the enrichment rules: "
              f"{machinery['seconds'] / plain['seconds']:.2f}x time, "
              f"{machinery['cpu'] / plain['cpu']:.2f}x CPU", file=sys.stderr)
        checks[f"{size:,}: with enrichment <= 1.3x without ({ratio:.2f}x)"] = ratio <= 1.3
        others = {k: v for k, v in enriched["matches"].items() if k not in ENRICHMENT_RULES}
        checks[f"{size:,}: other rules match the same with and without tables"] = \
            others == {k: v for k, v in plain["matches"].items() if k not in ENRICHMENT_RULES}
        checks[f"{size:,}: the enrichment rules alert"] = all(
            enriched["matches"].get(rule, 0) > 0 for rule in ENRICHMENT_RULES)
    small = flows(args.python_records)
    duck, python = (run_child(small, args, e) for e in ("duckdb", "python"))
    rows += [("duckdb", ENRICHED, duck), ("python", ENRICHED, python)]
    checks[f"{args.python_records:,}: alerts duckdb == python"] = (
        duck["alert_digest"] == python["alert_digest"] and duck["matches"] == python["matches"])
    if args.spark:
        path = flows(1_000_000)
        duck, spark = (run_child(path, args, e) for e in ("duckdb", "spark"))
        rows += [("duckdb", ENRICHED, duck), ("spark", ENRICHED, spark)]
        checks["1,000,000: alerts duckdb == spark"] = (
            duck["alert_digest"] == spark["alert_digest"] and duck["matches"] == spark["matches"])
    print_table(rows)
    print()
    for name, ok in checks.items():
        print(f"{'OK  ' if ok else 'FAIL'} {name}")
    if not all(checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
