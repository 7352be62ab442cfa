"""DuckDB against Spark on N generated flow records: seconds, records/s, and alert agreement.

    python benchmarks/engine_spark.py                      # 10M records, local[*]
    python benchmarks/engine_spark.py --records 1000000 --master local[2]
    python benchmarks/engine_spark.py --skip-rule AWS.VPC.InboundPortWhitelist

The dataset is written once (AWS Parquet layout) under ``--data`` and reused. ``time_spark``
and ``time_duckdb`` are what ``benchmarks/engine.py --engines duckdb,spark`` calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowwarden.alerts.model import Alert
from flowwarden.engine.scan import Scanner
from flowwarden.logs import read
from flowwarden.logs.generate import generate_flows, write_parquet
from flowwarden.rules.loader import Pack, load_pack, resolve_pack_paths
from flowwarden.rules.rule import Rule

SEED = 42


def dataset(records: int, root: Path) -> str:
    """The generated flow log Parquet file for ``records`` (written on first use)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"flows-{records}-{SEED}.parquet"
    if not path.exists():
        partial = path.with_suffix(".tmp")
        write_parquet(generate_flows(records, seed=SEED), str(partial))
        partial.rename(path)
    return str(path)


def time_duckdb(parquet_path: str, pack: Pack,
                rules: Sequence[Rule] | None = None) -> tuple[float, list[Alert]]:
    """Seconds for a duckdb-engine scan of ``parquet_path`` (default: the pack's active rules)."""
    started = time.perf_counter()
    chosen = pack.active_rules() if rules is None else list(rules)
    result = Scanner(pack, chosen, "duckdb").scan(read([parquet_path]))
    return time.perf_counter() - started, result.alerts


def time_spark(parquet_path: str, pack: Pack, *, master: str = "local[*]", spark: Any = None,
               rules: Sequence[Rule] | None = None) -> tuple[float, list[Alert]]:
    """Seconds for a Spark scan (session start excluded: pass ``spark`` or one is made first)."""
    from flowwarden.engine.spark import spark_scan, spark_session

    session = spark or spark_session(master, {"spark.ui.enabled": "false"})
    chosen = pack.active_rules() if rules is None else list(rules)
    started = time.perf_counter()
    result = spark_scan(pack, chosen, [parquet_path], spark=session)
    return time.perf_counter() - started, result.alerts


def agree(a: Sequence[Alert], b: Sequence[Alert]) -> bool:
    """Same alerts: ids, event and unique counts, titles, in the same order."""
    def key(alerts: Sequence[Alert]) -> list[tuple[Any, ...]]:
        return [(x.id, x.event_count, x.unique_count, x.title) for x in alerts]

    return key(a) == key(b)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--data", type=Path, default=Path(".bench-data"))
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--skip-rule", action="append", default=[], metavar="RULE_ID",
                        help="Leave this active rule out (repeatable).")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    pack = load_pack(resolve_pack_paths([]))
    rules = [r for r in pack.active_rules() if r.id not in args.skip_rule]
    print(f"rules: {', '.join(r.id for r in rules)}", flush=True)
    path = dataset(args.records, args.data)
    rows: dict[str, tuple[float, list[Alert]]] = {}
    for engine in args.engines.split(","):
        if engine == "spark":
            from flowwarden.engine.spark import spark_session

            started = time.perf_counter()
            session = spark_session(args.master, {"spark.ui.enabled": "false"})
            session.sparkContext.setLogLevel("ERROR")
            print(f"spark session start: {time.perf_counter() - started:.1f} s", flush=True)
            rows[engine] = time_spark(path, pack, spark=session, rules=rules)
        else:
            rows[engine] = time_duckdb(path, pack, rules)
        seconds, alerts = rows[engine]
        print(f"{engine:8} {args.records:>12,} records {seconds:8.1f} s "
              f"{args.records / seconds:>12,.0f} records/s {len(alerts):>10,} alerts", flush=True)
    results = list(rows.values())
    same = all(agree(results[0][1], other[1]) for other in results[1:])
    print("alerts agree" if same else "ALERTS DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
