"""Fuzz campaign: seeded mutations of the sample inputs of every reader (text, gzip text,
CloudWatch, OCSF JSON and Parquet, Panther JSON, flow log Parquet), each read through the duckdb
and the python engine. Counts crashes (an exception other than a one-line FlowwardenError) and
count violations (read != parsed + rejected, a scan that saw other than parsed - filtered
records, engines that disagree), and prints a table. Failing inputs are kept in --workdir.

    python benchmarks/fuzz.py                      # 1,000 inputs per reader
    python benchmarks/fuzz.py --inputs 200 --seed 7 --workdir /tmp/fw-fuzz
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# The mutators live with the tests (tests/logs/fuzzing.py, not in the wheel): make the
# repository root importable so that this script runs from a checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1000, help="mutated inputs per reader")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--workdir", help="where to write inputs (default: a temporary folder)")
    parser.add_argument("--reader", action="append", help="only this reader (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from flowwarden.rules.loader import load_pack, resolve_pack_paths
    from tests.logs.fuzzing import READERS, campaign

    args = parse_args(argv)
    pack = load_pack(resolve_pack_paths([]))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="flowwarden-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    names = args.reader or list(READERS)
    header = (f"{'reader':14} {'inputs tried':>12} {'crashes':>8} {'count violations':>17} "
              f"{'one-line errors':>16} {'records read':>12} {'rejected':>9} {'seconds':>8}")
    print(header)
    print("-" * len(header))
    totals = [0, 0, 0, 0, 0, 0]
    examples: list[str] = []
    for name in names:
        started = time.perf_counter()
        outcome = campaign(pack, name, args.inputs, args.seed, workdir)
        figures = [outcome.tried, outcome.crashes, outcome.violations, outcome.errors,
                   outcome.records, outcome.rejected]
        totals = [a + b for a, b in zip(totals, figures, strict=True)]
        examples += outcome.examples
        print(f"{name:14} {outcome.tried:>12,} {outcome.crashes:>8,} {outcome.violations:>17,} "
              f"{outcome.errors:>16,} {outcome.records:>12,} {outcome.rejected:>9,} "
              f"{time.perf_counter() - started:>8.1f}", flush=True)
    print("-" * len(header))
    print(f"{'all':14} {totals[0]:>12,} {totals[1]:>8,} {totals[2]:>17,} {totals[3]:>16,} "
          f"{totals[4]:>12,} {totals[5]:>9,}")
    print(f"seed {args.seed}; inputs that failed are kept in {workdir}")
    for example in examples[:10]:
        print(example[:2000])
    return 1 if totals[1] or totals[2] else 0


if __name__ == "__main__":
    raise SystemExit(main())
