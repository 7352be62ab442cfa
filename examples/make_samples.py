"""Regenerate the bundled sample flow logs (seeded, so the files never change)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.flowgen.generate import generate_flows, write_text

HERE = Path(__file__).resolve().parent
V5_FIELDS = ["version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "action", "log-status", "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr", "region", "flow-direction"]


def main() -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    folder = HERE / "data/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/05/01"
    folder.mkdir(parents=True, exist_ok=True)
    for part, minute in enumerate((0, 5)):
        stamp = (start + timedelta(minutes=minute)).strftime("%Y%m%dT%H%MZ")
        name = f"123456789012_vpcflowlogs_us-east-1_fl-0a1b2c3d_{stamp}_{part:08x}.log.gz"
        batches = generate_flows(5000, seed=7 + part, start=start + timedelta(minutes=minute),
                                 duration=timedelta(minutes=5))
        write_text(batches, str(folder / name), gzip=True, fields=V5_FIELDS)


if __name__ == "__main__":
    main()
