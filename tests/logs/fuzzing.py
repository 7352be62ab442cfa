"""Seeded mutation of the sample inputs in ``tests/fixtures/samples``, for every reader, and the
check each mutant must pass through both local engines: no exception escapes (a one-line
``FlowwardenError`` is allowed: the CLI reports it with exit 2), ``read == parsed + rejected``
per file, the scan saw exactly the records parsed and not filtered, and both engines agree.

Used by ``tests/logs/test_fuzz.py`` (a few seconds per reader) and ``benchmarks/fuzz.py``
(a larger campaign with a table of figures).
"""

from __future__ import annotations

import gzip
import io
import json
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flowwarden.engine.scan import Scanner
from flowwarden.errors import FlowwardenError
from flowwarden.logs import DEFAULT_OPTIONS, ReadOptions, read
from flowwarden.rules.loader import Pack
from tests.conftest import SAMPLES

# Values that broke, or nearly broke, a reader once: numbers out of range or in other digits,
# whitespace the two text paths could split differently, JSON that nests or overflows.
TOKENS = [
    "-0", "-1", "+5", "0", "65535", "65536", "70000", "256", "9" * 18, "9" * 19, "9" * 40,
    "300000000000000", "9300000000000000", "253402300800000", "253402300799", "1e300", "1e30",
    "NaN", "Infinity", "-Infinity", "٣٤", "²³", "１２", "-", "", "ACCEPT", "REJECT", "MAYBE",
    "\u00a0", "\u2028", "\x0b", "\x0c", "\r", "\t", "\x00", "\ufeff", "\x85", "é", "\udcff",
    "version", "srcaddr", "{", "}", "[", "]", '"', "\\", "{}", "[]",
]
JSON_VALUES: list[Any] = [
    None, True, False, 0, -1, 22, 65536, 2**63, 2**64 + 1, 10**40, 1e300, -1e300, 1e30, 0.5,
    22.0, 1418530010, 300000000000000, 9300000000000000, 253402300800000, "٣٤", "²³", "-0",
    "-", "", "x" * 300, "2024-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:00:00+01:00", [], {}, [1, "a", None], {"a": {"b": [1, 2]}},
]
DEEP = "[" * 5000 + "]" * 5000


@dataclass
class Outcome:
    """What one reader's campaign found."""

    reader: str
    tried: int = 0
    crashes: int = 0
    violations: int = 0
    errors: int = 0  # one-line FlowwardenErrors (allowed: exit 2)
    records: int = 0
    rejected: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(problem)


# -- mutations of text ----------------------------------------------------------------------
def mutate_line(line: str, rng: random.Random) -> str:
    """One random change to a line: a token replaced, a character inserted, part cut."""
    choice = rng.randrange(6)
    tokens = line.split(" ")
    if choice == 0 and tokens:
        tokens[rng.randrange(len(tokens))] = rng.choice(TOKENS)
        return " ".join(tokens)
    if choice == 1:
        at = rng.randrange(len(line) + 1)
        return line[:at] + rng.choice(TOKENS) + line[at:]
    if choice == 2 and line:
        at = rng.randrange(len(line))
        return line[:at] + line[at + 1:]
    if choice == 3:
        return line[:rng.randrange(len(line) + 1)]
    if choice == 4:
        return line + " " + rng.choice(TOKENS)
    return line.replace(" ", rng.choice([" ", "  ", "\t", "\u00a0", "\r"]), 1)


def mutate_text(lines: list[str], rng: random.Random) -> bytes:
    """Lines with a few changed, repeated, dropped or shuffled, joined by one line ending."""
    out = list(lines)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(5)
        index = rng.randrange(len(out))
        if op <= 2:
            out[index] = mutate_line(out[index], rng)
        elif op == 3:
            out.insert(index, out[rng.randrange(len(out))])
        elif len(out) > 1:
            del out[index]
    ending = rng.choice(["\n", "\n", "\n", "\r\n", "\r"])
    data = ending.join(out) + (ending if rng.random() < 0.9 else "")
    if rng.random() < 0.1:
        data = "\ufeff" + data
    return data.encode("utf-8", "surrogateescape" if rng.random() < 0.5 else "replace")


def mutate_json_value(obj: Any, rng: random.Random, depth: int = 0) -> Any:
    """``obj`` (parsed JSON) with one value somewhere replaced by an awkward one."""
    if isinstance(obj, dict) and obj and depth < 6 and rng.random() < 0.8:
        key = rng.choice(list(obj))
        obj = dict(obj)
        obj[key] = mutate_json_value(obj[key], rng, depth + 1)
        return obj
    if isinstance(obj, list) and obj and depth < 6 and rng.random() < 0.8:
        obj = list(obj)
        index = rng.randrange(len(obj))
        obj[index] = mutate_json_value(obj[index], rng, depth + 1)
        return obj
    return rng.choice(JSON_VALUES)


def mutate_json_lines(lines: list[str], rng: random.Random) -> bytes:
    """JSON lines with values replaced, some lines broken or nested deep, some text mutated."""
    out = list(lines)
    for _ in range(rng.randrange(1, 4)):
        index = rng.randrange(len(out))
        op = rng.randrange(8)
        if op <= 3:
            try:
                out[index] = json.dumps(mutate_json_value(json.loads(out[index]), rng))
            except (ValueError, RecursionError):
                out[index] = mutate_line(out[index], rng)
        elif op == 4:
            out[index] = out[index][:-1] + ', "deep": ' + DEEP + "}"
        elif op == 5:
            out.insert(index, rng.choice(["oops", "[1, 2]", "{", "", "\"x\""]))
        else:
            out[index] = mutate_line(out[index], rng)
    data = "\n".join(out) + "\n"
    if rng.random() < 0.1:
        data = "\ufeff" + data
    return data.encode("utf-8", "surrogateescape")


# -- the inputs of each reader ----------------------------------------------------------------
def _lines(path: Path) -> list[str]:
    return [x for x in path.read_text().splitlines() if x.strip()]


def text_seed() -> list[str]:
    return _lines(SAMPLES / "s3-text/awsdocs_default_v2_examples.log")


def custom_text_seed() -> list[str]:
    return _lines(SAMPLES / "s3-text/awsdocs_v5_service_path_direction.log")


def ocsf_seed() -> list[str]:
    return _lines(SAMPLES / "ocsf/vpcflow_ocsf_1.1.0.jsonl")[:12]


def panther_seed() -> list[str]:
    """Flow records and OCSF events as Panther JSON lines (what a Panther export holds)."""
    out = []
    rows = [r for item in read([str(SAMPLES / "s3-text/awsdocs_default_v2_examples.log")])
            for r in item.batch.to_pylist()]
    for row in rows:
        line = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()
                if v is not None and k not in ("p_parse_time", "p_source_file")}
        out.append(json.dumps(line))
    for event in ocsf_seed()[:4]:
        out.append(json.dumps({**json.loads(event), "p_log_type": "OCSF.NetworkActivity"}))
    out.append(json.dumps({"p_log_type": "Custom.Thing", "p_event_time": "2024-01-01T00:00:00Z",
                           "n": 1, "s": "x"}))
    return out


def cloudwatch_seed() -> list[str]:
    return _lines(SAMPLES / "cloudwatch/otel_valid_vpc_flow_cw.json") * 2


def text_input(rng: random.Random) -> bytes:
    seed = text_seed() if rng.random() < 0.7 else custom_text_seed()
    return mutate_text(seed, rng)


def gzip_input(rng: random.Random) -> bytes:
    packed = gzip.compress(text_input(rng))
    if rng.random() < 0.15:  # truncated or corrupt in the middle
        cut = rng.randrange(10, len(packed))
        packed = packed[:cut] if rng.random() < 0.5 else packed[:cut] + b"\x00" * 8
    return packed


def cloudwatch_input(rng: random.Random) -> bytes:
    payloads = cloudwatch_seed()
    data = mutate_json_lines(payloads, rng)
    if rng.random() < 0.2:  # one payload with events that are not objects
        payload = json.loads(payloads[0])
        payload["logEvents"] = [1, "x", None, *payload["logEvents"]]
        data += json.dumps(payload).encode() + b"\n"
    if rng.random() < 0.2:
        data = gzip.compress(data)
    return data


def ocsf_json_input(rng: random.Random) -> bytes:
    return mutate_json_lines(ocsf_seed(), rng)


def panther_input(rng: random.Random) -> bytes:
    return mutate_json_lines(panther_seed(), rng)


AWKWARD: dict[str, list[Any]] = {
    "int": [-1, 0, 65536, 70000, 2**40, 9 * 10**18, -(2**63)],
    "float": [float("nan"), float("inf"), -float("inf"), 1e30, -1.0, 22.5, 22.0],
    "str": ["٣٤", "²³", "-0", "9" * 19, "-", "None", "", "abc", "1e3", " 22"],
    "uint": [0, 2**64 - 1, 65536, 2**63 + 5],
    "time": [-1, 0, 253402300800, 9 * 10**18 // 10**6],
}


def mutate_table(table: pa.Table, rng: random.Random) -> pa.Table:
    """A copy of ``table`` with one or two columns retyped and given awkward values."""
    for _ in range(rng.randrange(1, 3)):
        index = rng.randrange(table.num_columns)
        name = table.schema.field(index).name
        column = table.column(index)
        kind = rng.choice(list(AWKWARD))
        if pa.types.is_timestamp(column.type):  # a mutant time may be beyond Python's
            column = column.cast(pa.int64())
        row = rng.randrange(len(column))
        if kind == "int":
            new = _cast_or_nulls(column, pa.int64())
        elif kind == "float":
            new = _cast_or_nulls(column, pa.float64())
        elif kind == "str":
            new = _cast_or_nulls(column, pa.string())
        elif kind == "uint":
            new = _cast_or_nulls(column, pa.uint64())
        else:
            new = _cast_or_nulls(column, pa.int64()).cast(pa.timestamp("s"))
        cells = new.to_pylist() if kind != "time" else new.cast(pa.int64()).to_pylist()
        cells[row] = rng.choice(AWKWARD[kind])
        typed = pa.array(cells, pa.int64()).cast(pa.timestamp("s")) if kind == "time" \
            else pa.array(cells, new.type)
        table = table.set_column(index, name, typed)
    return table


def _cast_or_nulls(column: pa.ChunkedArray, type_: pa.DataType) -> pa.Array:
    try:
        return column.combine_chunks().cast(type_, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.nulls(len(column), type_)


def parquet_input(table: pa.Table, rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(mutate_table(table, rng), buffer, row_group_size=rng.choice([2, 3, 100]))
    data = buffer.getvalue()
    if rng.random() < 0.1:  # a corrupt page somewhere between the magic bytes
        at = rng.randrange(4, max(len(data) - 8, 5))
        data = data[:at] + bytes(rng.randrange(256) for _ in range(16)) + data[at + 16:]
    return data


def flow_parquet_input(rng: random.Random) -> bytes:
    name = rng.choice(["synthetic_v8_aws_doc_types.parquet", "flowlogs_reader_tests_flows.parquet"])
    return parquet_input(pq.read_table(SAMPLES / "parquet" / name), rng)


def ocsf_parquet_input(rng: random.Random) -> bytes:
    paths = sorted((SAMPLES / "ocsf/aws").rglob("*.parquet"))
    return parquet_input(pq.read_table(rng.choice(paths)), rng)


READERS: dict[str, tuple[str, Callable[[random.Random], bytes]]] = {
    "text": (".log", text_input),
    "gzip text": (".log.gz", gzip_input),
    "cloudwatch": (".json", cloudwatch_input),
    "ocsf json": (".jsonl", ocsf_json_input),
    "ocsf parquet": (".parquet", ocsf_parquet_input),
    "panther json": (".jsonl", panther_input),
    "flow parquet": (".parquet", flow_parquet_input),
}


# -- the check ---------------------------------------------------------------------------------
def scan_stats(pack: Pack, engine: str, path: Path,
               options: ReadOptions) -> tuple[dict[str, Any], dict[str, int], int]:
    """(per-file stats, rule matches, records scanned) of one scan of ``path``."""
    reader = read([str(path)], options)
    result = Scanner(pack, pack.active_rules(), engine).scan(reader)
    stats = reader.stats.to_json()
    for entry in stats["files"]:
        entry.pop("fingerprint", None)
        # The engines read in batches of different sizes: the order of rejections may differ.
        entry["rejections"].sort(key=lambda r: (r["line"] is not None, r["line"] or 0,
                                                r["reason"]))
    return stats, dict(result.matches), result.records


def _corrupt(stats: dict[str, Any]) -> bool:
    """Whether a read met bytes Parquet cannot decode: a projected read (the duckdb engine's)
    never decodes the columns it does not need, so only the engine reading them all sees those
    (documented in ``flowwarden.logs.parquet``); the engines may then differ."""
    return any(r["reason"].startswith("Parquet read failed")
               for entry in stats["files"] for r in entry["rejections"])


def problems(pack: Pack, path: Path, options: ReadOptions) -> tuple[list[str], dict[str, int]]:
    """What is wrong with reading ``path`` through both engines (empty: nothing; a one-line
    error is listed as ``error: ...``, which is allowed), and the read's totals."""
    found: list[str] = []
    seen: list[tuple[dict[str, Any], dict[str, int], int]] = []
    for engine in ("duckdb", "python"):
        try:
            seen.append(scan_stats(pack, engine, path, options))
        except FlowwardenError as exc:
            found.append(f"error ({engine}): {exc}")
            seen.append(({"error": engine}, {}, 0))
        except Exception:  # any other exception escaping is the bug being looked for
            found.append(f"crash ({engine}): {traceback.format_exc(limit=-6)}")
            return found, {}
    for stats, _, records in seen:
        if "error" in stats:
            continue
        for entry in stats["files"]:
            if entry["read"] != entry["parsed"] + entry["rejected"]:
                found.append(f"violation: read != parsed + rejected: {entry}")
            if not 0 <= entry["filtered"] <= entry["parsed"]:
                found.append(f"violation: filtered outside 0..parsed: {entry}")
        totals = stats["totals"]
        if records != totals["parsed"] - totals["filtered"]:
            found.append(f"violation: scanned {records} records, parsed {totals['parsed']} "
                         f"- filtered {totals['filtered']}")
    if "error" not in seen[0][0] and "error" not in seen[1][0] and seen[0] != seen[1] \
            and not any(_corrupt(stats) for stats, _, _ in seen):
        found.append(f"violation: the engines disagree: {seen[0]} != {seen[1]}")
    return found, next((s["totals"] for s, _, _ in seen if "error" not in s), {})


def random_options(rng: random.Random) -> ReadOptions:
    """Small and large batches, sometimes a since/until window (records then filtered),
    sometimes a line bound most lines exceed."""
    window = rng.random() < 0.3
    return ReadOptions(batch_size=rng.choice([2, 7, 4096]),
                       since=datetime(2015, 1, 1) if window else None,
                       until=datetime(2019, 1, 1) if window and rng.random() < 0.5 else None,
                       max_line_bytes=rng.choice([120, 300]) if rng.random() < 0.15
                       else DEFAULT_OPTIONS.max_line_bytes)


def campaign(pack: Pack, name: str, count: int, seed: int, workdir: Path,
             options: ReadOptions | None = None) -> Outcome:
    """``count`` mutants of reader ``name``'s inputs, each checked by ``problems``."""
    suffix, make = READERS[name]
    outcome = Outcome(name)
    rng = random.Random(f"{name}:{seed}")
    for number in range(count):
        path = workdir / f"{name.replace(' ', '-')}-{number}{suffix}"
        path.write_bytes(make(rng))
        found, totals = problems(pack, path, options or random_options(rng))
        outcome.tried += 1
        outcome.records += totals.get("read", 0)
        outcome.rejected += totals.get("rejected", 0)
        outcome.crashes += sum(p.startswith("crash") for p in found)
        outcome.violations += sum(p.startswith("violation") for p in found)
        outcome.errors += sum(p.startswith("error") for p in found)
        for problem in found:
            if not problem.startswith("error"):
                outcome.note(f"{path.name}: {problem}")
        if outcome.crashes + outcome.violations == 0 or not found:
            path.unlink()
    return outcome
