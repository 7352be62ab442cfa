"""Ingest benchmark: generate default-format flow records, write them as AWS text (.log.gz, split
into several files) and as AWS Parquet, then time ``flowwarden.logs.read`` over each input.

Each reading runs in its own subprocess so its peak RSS (``ru_maxrss``) is its own; reading one
text file and then all of them shows that memory stays flat as input grows (batches stream).

    python benchmarks/ingest.py                    # 10M records
    python benchmarks/ingest.py --records 1000000 --files 4 --workdir /tmp/fw-bench --keep
    python benchmarks/ingest.py --workdir /tmp/fw-bench --reuse --keep   # re-time kept inputs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The flow generator is test code (tests/flowgen, not in the wheel): make the repository root
# importable so that this script runs from a checkout, wherever it is started from.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RECORDS = 10_000_000
FILES = 8
SEED = 42
START = datetime(2024, 1, 1, tzinfo=UTC)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=RECORDS, help="records to generate")
    parser.add_argument("--files", type=int, default=FILES, help="number of .log.gz files")
    parser.add_argument("--workdir", help="where to write inputs (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated inputs")
    parser.add_argument("--batch-size", type=int, default=65536)
    parser.add_argument("--compresslevel", type=int, default=6, help="gzip level for text")
    parser.add_argument(
        "--reuse", action="store_true", help="read the inputs already in --workdir (no generation)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def generate(workdir: Path, records: int, files: int, level: int) -> dict[str, list[Path]]:
    """Write the inputs: ``files`` gzip text files and one Parquet file of the same records."""
    from tests.flowgen.generate import generate_flows, write_parquet, write_text

    per_file = -(-records // files)
    duration = timedelta(hours=files)
    text: list[Path] = []
    for index in range(files):
        count = min(per_file, records - index * per_file)
        if count <= 0:
            break
        stamp = START + timedelta(hours=index)
        path = (
            workdir
            / f"123456789012_vpcflowlogs_us-east-1_fl-bench_{stamp:%Y%m%dT%H%M}Z_{index:04x}.log.gz"
        )
        batches = generate_flows(count, SEED + index, start=stamp, duration=duration / files)
        write_text(batches, str(path), compresslevel=level)
        text.append(path)
    parquet = workdir / "123456789012_vpcflowlogs_us-east-1_fl-bench_20240101T0000Z_all.log.parquet"
    write_parquet(generate_flows(records, SEED, start=START, duration=duration), str(parquet))
    return {"text": text, "parquet": [parquet]}


def peak_rss_kib() -> int:
    """This process's peak RSS. Linux's VmHWM restarts at exec; ru_maxrss would also count the
    parent's memory at fork time, so it is only the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def generate_in_subprocess(
    workdir: Path, records: int, files: int, level: int
) -> dict[str, list[Path]]:
    """Generate in a child process, keeping this one small for the readers it starts."""
    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from ingest import generate;"
        "out = generate(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]));"
        "print(json.dumps({k: [str(p) for p in v] for k, v in out.items()}))"
    )
    here = str(Path(__file__).resolve().parent)
    args = [here, str(workdir), str(records), str(files), str(level)]
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return {k: [Path(p) for p in v] for k, v in json.loads(out.stdout).items()}


def child(paths: list[str], batch_size: int) -> None:
    """Read ``paths`` and print JSON: records, seconds, peak and baseline RSS (KiB)."""
    from flowwarden.logs import ReadOptions, read

    baseline = peak_rss_kib()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    reader = read(paths, ReadOptions(batch_size=batch_size))
    records = sum(item.batch.num_rows for item in reader)
    seconds = time.perf_counter() - started
    peak = peak_rss_kib()
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    totals = reader.stats.totals()
    print(
        json.dumps(
            {
                "records": records,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_kib": peak,
                "baseline_kib": baseline,
                "rejected": totals["rejected"],
            }
        )
    )


def measure(paths: list[Path], batch_size: int) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--batch-size",
        str(batch_size),
        "--child",
        *map(str, paths),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def size_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args.child, args.batch_size)
        return
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="flowwarden-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.reuse:
            inputs = {
                "text": sorted(workdir.glob("*_fl-bench_*.log.gz")),
                "parquet": sorted(workdir.glob("*_fl-bench_*.log.parquet")),
            }
        else:
            started = time.perf_counter()
            inputs = generate_in_subprocess(workdir, args.records, args.files, args.compresslevel)
            print(
                f"generated {args.records:,} records in {time.perf_counter() - started:.1f}s "
                f"into {workdir}"
            )
        cases = [
            ("text .log.gz, 1 file", inputs["text"][:1]),
            (f"text .log.gz, {len(inputs['text'])} files", inputs["text"]),
            ("parquet (gzip), 1 file", inputs["parquet"]),
        ]
        header = (
            f"{'input':<26} {'MB on disk':>10} {'records':>12} {'seconds':>8} "
            f"{'records/s':>11} {'rec/CPU-s':>11} {'peak RSS MB':>11} {'after import':>12}"
        )
        print(header)
        print("-" * len(header))
        for label, paths in cases:
            result = measure(paths, args.batch_size)
            rate = result["records"] / max(result["seconds"], 1e-9)
            per_cpu = result["records"] / max(result["cpu_seconds"], 1e-9)
            print(
                f"{label:<26} {size_mb(paths):>10.1f} {result['records']:>12,} "
                f"{result['seconds']:>8.2f} {rate:>11,.0f} {per_cpu:>11,.0f} "
                f"{result['peak_kib'] / 1024:>11.0f} {result['baseline_kib'] / 1024:>12.0f}"
            )
        print(
            "rec/CPU-s divides by the reader's own CPU time (user + system, all threads), which a "
            "busy machine distorts less than wall time. Peak RSS is each reading subprocess's own "
            "high-water mark (VmHWM); 'after import' is that mark before reading. A flat peak from "
            "1 file to all files (and from 1M to 10M records) means memory stays bounded."
        )
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not args.keep:
            for path in workdir.glob("*_fl-bench_*"):
                os.remove(path)


if __name__ == "__main__":
    main()
