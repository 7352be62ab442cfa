"""Engines behind one protocol, found by name in one registry.

An engine runs a set of rules over inputs and returns a ``ScanOutcome``. The local engines
(``duckdb``, ``python``) also hand out a ``Scanner`` that takes batches one at a time
(``batchwise``), which checkpointed runs, ``watch`` and ``backtest`` feed through the one scan
loop; ``spark`` scans whole inputs on a cluster. Adding an engine is one class and one registry
entry.

>>> sorted(ENGINES)
['duckdb', 'python', 'spark']
>>> engine_named("duckdb").batchwise, engine_named("spark").batchwise
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowwarden.alerts.grouping import Grouper
from flowwarden.engine.scan import Scanner, ScanResult
from flowwarden.errors import UsageError
from flowwarden.logs import ReadOptions, ScanStats, read
from flowwarden.rules.loader import Pack
from flowwarden.rules.rule import Rule

Progress = Callable[[int], None]


@dataclass
class ScanOutcome:
    """What a scan found, with the per-input statistics where the engine keeps them."""

    result: ScanResult
    stats: ScanStats | None
    rules: list[Rule] = field(default_factory=list)
    engine: str = ""


class Engine(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def batchwise(self) -> bool:
        """Hands out Scanners: checkpointed runs, watch and backtest can use it."""

    @property
    def file_stats(self) -> bool:
        """Keeps read/parsed/rejected counts per input (--stats, --strict)."""

    def scan(self, pack: Pack, rules: Sequence[Rule], sources: Sequence[str],
             options: ReadOptions, *, max_samples: int = 3,
             progress: Progress | None = None, findings: bool = False) -> ScanOutcome:
        """Run ``rules`` over every input ``sources`` name. ``findings``: the alerts will be
        written as OCSF findings (an engine that makes its alerts elsewhere makes them there
        too; one whose alerts stay in DuckDB tables has them queried)."""

    def scanner(self, pack: Pack, rules: Sequence[Rule], *, max_samples: int = 3,
                grouper: Grouper | None = None) -> Scanner:
        """A scanner of batches for the scan loop (only for batchwise engines)."""


@dataclass(frozen=True)
class LocalEngine:
    """``duckdb`` or ``python``: batch by batch in this process, through the scan loop."""

    name: str
    batchwise: bool = True
    file_stats: bool = True

    def scanner(self, pack: Pack, rules: Sequence[Rule], *, max_samples: int = 3,
                grouper: Grouper | None = None) -> Scanner:
        return Scanner(pack, rules, self.name, max_samples, grouper)

    def scan(self, pack: Pack, rules: Sequence[Rule], sources: Sequence[str],
             options: ReadOptions, *, max_samples: int = 3,
             progress: Progress | None = None, findings: bool = False) -> ScanOutcome:
        scanner = self.scanner(pack, rules, max_samples=max_samples)
        reader = read(list(sources), options)
        result = scanner.scan(reader, progress)
        return ScanOutcome(result, reader.stats, list(rules), self.name)


@dataclass(frozen=True)
class SparkEngine:
    """The same rules on a Spark cluster (``flowwarden.engine.spark``)."""

    master: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)
    verbose: bool = False  # show Spark's own output (JVM, log4j, Ivy)
    name: str = "spark"
    batchwise: bool = False
    file_stats: bool = False

    def scanner(self, pack: Pack, rules: Sequence[Rule], *, max_samples: int = 3,
                grouper: Grouper | None = None) -> Scanner:
        raise not_batchwise(self)

    def scan(self, pack: Pack, rules: Sequence[Rule], sources: Sequence[str],
             options: ReadOptions, *, max_samples: int = 3,
             progress: Progress | None = None, findings: bool = False) -> ScanOutcome:
        from flowwarden.engine.spark.session import spark_scan

        result = spark_scan(pack, rules, sources, master=self.master, options=options,
                            max_samples=max_samples, pack_paths=pack.paths or None,
                            conf=self.conf, verbose=self.verbose, findings=findings)
        return ScanOutcome(result, None, list(rules), self.name)


def _local(name: str) -> Callable[..., Engine]:
    def make(**settings: Any) -> Engine:
        if settings:
            options = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(settings))
            raise UsageError(f"{options}: settings of --engine spark, not of --engine {name}")
        return LocalEngine(name)

    return make


ENGINES: dict[str, Callable[..., Engine]] = {
    "duckdb": _local("duckdb"),
    "python": _local("python"),
    "spark": SparkEngine,
}
ENGINE_HELP = {
    "duckdb": "compiled conditions in one DuckDB query per batch, Python only where needed",
    "python": "every rule on every event, as Panther does (the reference)",
    "spark": "the same on a Spark cluster (pip install 'flowwarden[spark]', Java 17)",
}


def engine_named(name: str, **settings: Any) -> Engine:
    """The engine called ``name``, set up with ``settings`` (only those it takes)."""
    factory = ENGINES.get(name)
    if factory is None:
        raise UsageError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
    return factory(**settings)


def batchwise_engine(engine: str | Engine, what: str = "--state, watch and backtest") -> Engine:
    """``engine`` (or the engine it names) if it scans batch by batch, else a UsageError."""
    chosen = engine_named(engine) if isinstance(engine, str) else engine
    if not chosen.batchwise:
        raise not_batchwise(chosen, what)
    return chosen


def batchwise_engines() -> list[str]:
    """The names of the engines that scan batch by batch in this process."""
    return [name for name, make in ENGINES.items() if make().batchwise]


def not_batchwise(engine: Engine, what: str = "--state, watch and backtest") -> UsageError:
    names = ", ".join(batchwise_engines())
    return UsageError(f"--engine {engine.name} scans whole inputs at once; {what} need an engine "
                      f"that scans batch by batch ({names})")
