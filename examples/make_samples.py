"""Regenerate the bundled sample flow logs (seeded, so the files never change).

    python examples/make_samples.py                  # rewrite examples/data
    python examples/make_samples.py --out /tmp/x     # write them elsewhere, e.g. to compare
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The flow generator is test code (tests/flowgen, not in the wheel): make the repository root
# importable so that this script runs from a checkout, wherever it is started from.
sys.path.insert(0, str(HERE.parent))
V5_FIELDS = ["version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "action", "log-status", "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr", "region", "flow-direction"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "data",
                        help="the folder to write the AWSLogs/ tree into (default: examples/data)")
    args = parser.parse_args(argv)
    from tests.flowgen.generate import generate_flows, write_text

    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    folder = args.out / "AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/05/01"
    folder.mkdir(parents=True, exist_ok=True)
    for part, minute in enumerate((0, 5)):
        stamp = (start + timedelta(minutes=minute)).strftime("%Y%m%dT%H%MZ")
        name = f"123456789012_vpcflowlogs_us-east-1_fl-0a1b2c3d_{stamp}_{part:08x}.log.gz"
        batches = generate_flows(5000, seed=7 + part, start=start + timedelta(minutes=minute),
                                 duration=timedelta(minutes=5))
        write_text(batches, str(folder / name), gzip=True, fields=V5_FIELDS)


if __name__ == "__main__":
    main()
