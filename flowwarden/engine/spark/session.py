"""The Spark engine: the same rules over the same inputs give the same alerts as ``duckdb``.

Each input becomes a DataFrame of Panther-named records (``inputs``, converted by the local
reader's own Arrow code: ``arrow``), with ``p_enrichment`` where the pack's lookup tables select
into its log type (``enrichment``: the tables built on the driver, broadcast). Every rule's
condition is rendered into a verdict column per rule by the query the duckdb engine runs too
(``logic.render.query``, in the Spark dialect of ``logic.render.spark``); IP predicates read
probe codes an Arrow UDF computes with the running ``ipaddress`` module. Rows some rule matches,
or must ask Python about, go through ``mapInArrow`` to the rules' Python on the executors
(``rules``); dedup windows and thresholds are Spark aggregations (``alerts``). One Spark action
runs it all; counts come back through observations.

PySpark is optional (``pip install 'flowwarden[spark]'``); this module imports it lazily.

Cluster use. The executors need Python with flowwarden, its rules and pyarrow: build a wheel,
pack an environment holding it, and let Spark ship the archive (client mode shown; the
built-in packs travel inside the wheel)::

    pip wheel --no-deps -w dist .
    python -m venv fw && fw/bin/pip install dist/flowwarden-*.whl 'pyspark>=4.1' venv-pack
    fw/bin/venv-pack -o fw.tar.gz
    export PYSPARK_DRIVER_PYTHON=fw/bin/python PYSPARK_PYTHON=./environment/bin/python
    spark-submit --master spark://host:7077 --archives fw.tar.gz#environment \\
        --packages org.apache.hadoop:hadoop-aws:<Spark's Hadoop version> \\
        fw/lib/python3.11/site-packages/flowwarden/cli/__main__.py \\
        scan --engine spark s3a://bucket/AWSLogs/ --pack ./my-rules -o alerts.jsonl

Under ``spark-submit`` its ``--master`` and ``--conf`` rule (S3A credentials go in
``spark.hadoop.fs.s3a.*``); ``flowwarden scan --engine spark --master URL`` works too, given
the same environment variables and ``spark.archives``. Rule directories named with ``--pack``
are shipped to the executors with ``SparkContext.addFile`` when the master is not local.
``s3a://`` (and ``hdfs://``, ``gs://``, ``abfss://``) Parquet is listed and read by Spark;
``s3://`` objects of any format are listed on the driver and read with boto3 by the executors.

Spark's own output is quiet by default: a JVM this process starts writes its stdout and stderr
(startup banners, log4j lines, Ivy) to a log file in the temporary directory
(``flowwarden-spark-*.log``) instead of the terminal, and the session's log level is ERROR;
``verbose=True`` (``flowwarden scan --engine spark --verbose``) leaves both as Spark has them.

A local-mode JVM this process launches exits when it runs out of memory (its driver threads
would otherwise leave the job waiting); the scan then fails with an ``EngineError`` that names
``spark.driver.memory`` and the log (``watched_jvm``).

>>> from flowwarden.engine.spark.session import resolve_master
>>> resolve_master(None, environ={})
'local[*]'
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flowwarden.engine.scan import ScanResult
from flowwarden.errors import EngineError, UsageError
from flowwarden.logs.model import DEFAULT_OPTIONS, ReadOptions
from flowwarden.rules.loader import BUILTIN_PACKS, Pack
from flowwarden.rules.rule import Rule

# Settings the engine relies on: UTC session time (event times are UTC), case-sensitive
# column names (Panther's names are), and no cap on what the driver collects (alerts).
SESSION_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.caseSensitive": "true"}
START_CONF = {"spark.driver.maxResultSize": "0", "spark.ui.showConsoleProgress": "false"}
# Local mode runs the executors inside the driver's JVM: 1g (Spark's default) is too little to
# group a few hundred thousand alerts. Splits of at most 32 MB keep a few cores evenly busy on
# one large file (Spark's 128 MB gives 3 tasks for 260 MB on 2 cores: one runs alone).
# Only used when this process picks a local master; a user's conf overrides either.
# An OutOfMemoryError in one of the driver's own threads (the one fetching task results, say)
# leaves the job waiting forever, so the JVM exits on one instead and the scan fails
# (watched_jvm).
LOCAL_CONF = {"spark.driver.memory": "4g", "spark.sql.files.maxPartitionBytes": "32m",
              "spark.driver.extraJavaOptions": "-XX:+ExitOnOutOfMemoryError"}
MIN_PYSPARK = (4, 1)
EXIT_WAIT = 5.0  # seconds a JVM that dropped its connection is given to have exited
_jvm_logs: list[str] = []  # the log of each JVM this process launched, the running one last
QUIET_LOG_LEVEL = "ERROR"


def resolve_master(master: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """``master``; else None under ``spark-submit`` (its ``--master`` rules), else local[*]."""
    if master is not None:
        return master
    return None if "PYSPARK_GATEWAY_PORT" in environ else "local[*]"


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None,
                  app_name: str = "flowwarden", verbose: bool = False) -> Any:
    """A SparkSession for scans. In local mode the workers' Python is this interpreter unless
    ``PYSPARK_PYTHON`` says otherwise (they need pyarrow and flowwarden). Unless ``verbose``,
    Spark's own output goes to a log file (see the module's docstring)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    chosen = resolve_master(master)
    if chosen is not None:
        builder = builder.master(chosen)
    if chosen is not None and chosen.startswith("local"):
        # a cluster's executors cannot use this interpreter's path
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in session_conf(chosen, conf).items():
        builder = builder.config(key, value)
    return start_session(builder, verbose)


def start_session(builder: Any, verbose: bool = False) -> Any:
    """``builder.getOrCreate()``; unless ``verbose``, a JVM it launches writes its output to a
    log file, and the session logs only errors."""
    if verbose:
        return builder.getOrCreate()
    if _launches_jvm():
        _jvm_logs.append(spark_log_path())
        with jvm_output_to(_jvm_logs[-1]):
            session = builder.getOrCreate()
    else:
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel(QUIET_LOG_LEVEL)
    return session


@contextmanager
def watched_jvm(session: Any) -> Iterator[None]:
    """A failure inside becomes an ``EngineError`` when the JVM this process launched has
    stopped meanwhile: said with its exit status and log, and, where the log says it ran out
    of memory, the setting that gives it more. Other failures pass unchanged."""
    memory = session.sparkContext.getConf().get("spark.driver.memory", "1g")
    try:
        yield
    except Exception as error:
        # a JVM that is exiting closes its sockets before it has exited
        status = jvm_exit_status(wait=EXIT_WAIT if _lost_connection(error) else 0)
        if status is None:
            raise
        raise jvm_stopped(status, _jvm_logs[-1] if _jvm_logs else None, memory) from error


def _lost_connection(error: Exception) -> bool:
    from py4j.protocol import Py4JNetworkError

    return isinstance(error, ConnectionError | EOFError | Py4JNetworkError)


def jvm_exit_status(wait: float = 0) -> int | None:
    """The exit status of the JVM this process launched, once it has stopped, waiting up to
    ``wait`` seconds for that (else None)."""
    try:
        from pyspark import SparkContext
    except ImportError:
        return None
    process = getattr(getattr(SparkContext, "_gateway", None), "proc", None)
    if process is None:
        return None
    try:
        status: int = process.wait(wait)
    except subprocess.TimeoutExpired:
        return None
    return status


def jvm_stopped(status: int, log: str | None, memory: str) -> EngineError:
    """The error of a scan whose JVM stopped with ``status``, its output in ``log``.

    >>> str(jvm_stopped(1, None, "4g"))
    "Spark's JVM stopped during the scan (exit status 1)"
    """
    text = Path(log).read_text(errors="replace") if log and os.path.exists(log) else ""
    where = f"; its log: {log}" if log else ""
    if "java.lang.OutOfMemoryError" in text:
        return EngineError(
            f"Spark's JVM ran out of memory during the scan (spark.driver.memory={memory}) and "
            f"stopped; give it more with --spark-conf spark.driver.memory=<size>{where}")
    return EngineError(f"Spark's JVM stopped during the scan (exit status {status}){where}")


def _launches_jvm() -> bool:
    """Whether creating a session starts a JVM here (not under spark-submit, none running)."""
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        return False
    try:
        from pyspark import SparkContext
    except ImportError:
        return True
    return getattr(SparkContext, "_gateway", None) is None


def spark_log_path(directory: str | None = None) -> str:
    """A new file for Spark's output: ``flowwarden-spark-*.log`` in the temporary directory."""
    handle, path = tempfile.mkstemp(prefix="flowwarden-spark-", suffix=".log", dir=directory)
    os.close(handle)
    return path


@contextmanager
def jvm_output_to(path: str) -> Iterator[None]:
    """File descriptors 1 and 2 point at ``path`` meanwhile, so that a process started inside
    (the JVM) writes its stdout and stderr there for its whole life; this process's own are
    restored after."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def session_conf(master: str | None, conf: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings a new session gets: the engine's, local mode's, then ``conf`` (which wins).

    >>> session_conf("local[2]", {"spark.driver.memory": "8g"})["spark.driver.memory"]
    '8g'
    >>> "spark.driver.memory" in session_conf(None)  # spark-submit's settings rule
    False
    """
    local = LOCAL_CONF if master is not None and master.startswith("local") else {}
    return {**START_CONF, **local, **SESSION_CONF, **(conf or {})}


def spark_scan(pack: Pack, rules: Sequence[Rule], sources: Sequence[str], *,
               master: str | None = None, spark: Any = None,
               options: ReadOptions = DEFAULT_OPTIONS, max_samples: int = 3,
               pack_paths: Sequence[str] | None = None,
               conf: Mapping[str, str] | None = None, verbose: bool = False,
               findings: bool = False) -> ScanResult:
    """Scan ``sources`` with ``rules`` on Spark; the alerts equal the duckdb engine's.

    ``spark`` is a session to use (else one is made for ``master``, default local[*], with
    ``conf``). ``pack_paths`` are the ``--pack`` names or directories ``pack`` was loaded from
    (the executors load them again); by default they are inferred from the rules' files.
    A given session gets ``SESSION_CONF`` set (UTC session time, case-sensitive names).
    ``verbose`` shows Spark's own output when this call starts the session. ``findings``:
    the executors make the alerts' OCSF findings too (``ocsf.PreparedFindings``), for an
    OCSF output, rather than the driver one by one.
    """
    require_pyspark()
    from flowwarden.engine.spark.run import SparkScan

    session = spark or spark_session(master, conf, verbose=verbose)
    for key, value in SESSION_CONF.items():
        session.conf.set(key, value)
    spec = pack_spec(session, pack, rules, pack_paths)
    with watched_jvm(session):
        return SparkScan(session, pack, list(rules), spec, max_samples,
                         findings).run(sources, options)


def pack_spec(session: Any, pack: Pack, rules: Sequence[Rule],
              pack_paths: Sequence[str] | None) -> Any:
    """What executors load: built-in pack names as names, directories absolute or shipped."""
    from flowwarden.engine.spark.rules import SHIPPED, PackSpec

    paths = list(pack_paths) if pack_paths is not None else infer_pack_paths(pack, rules)
    builtin = {str(p.resolve()): name for name, p in BUILTIN_PACKS.items()}
    resolved = [p if p in BUILTIN_PACKS else builtin.get(str(Path(p).resolve()),
                                                         str(Path(p).resolve())) for p in paths]
    if not session.sparkContext.master.startswith("local"):
        resolved = [_ship(session, p) if p not in BUILTIN_PACKS else p for p in resolved]
        names = [p for p in resolved if p.startswith(SHIPPED)]
        if len(set(names)) != len(names):
            raise ValueError(f"rule directories to ship need distinct names: {names}")
    return PackSpec(tuple(resolved), pickle.dumps(pack.config))


def _ship(session: Any, path: str) -> str:
    from flowwarden.engine.spark.rules import SHIPPED

    session.sparkContext.addFile(path, recursive=True)
    return SHIPPED + Path(path).name


def infer_pack_paths(pack: Pack, rules: Sequence[Rule]) -> list[str]:
    """Built-in packs holding the rules, plus the common directory of the other rule and
    data-model files (pass ``pack_paths`` when helpers live elsewhere)."""
    builtin = {name: p.resolve() for name, p in BUILTIN_PACKS.items()}
    names: list[str] = []
    custom: list[str] = []
    files = [r.yaml_path for r in rules] + [m.path for m in pack.data_models.values()]
    for file in files:
        path = Path(file).resolve()
        owner = next((n for n, root in builtin.items() if path.is_relative_to(root)), None)
        if owner is None:
            custom.append(str(path.parent))
        elif owner not in names and file in {r.yaml_path for r in rules}:
            names.append(owner)
    return names + ([os.path.commonpath(custom)] if custom else [])


def require_pyspark(minimum: tuple[int, int] = MIN_PYSPARK) -> None:
    """Raise a UsageError unless PySpark ``minimum`` or newer is installed."""
    try:
        import pyspark
    except ImportError:
        raise UsageError("the spark engine needs PySpark: pip install 'flowwarden[spark]'") from None
    found = tuple(int(p) for p in re.findall(r"\d+", pyspark.__version__)[:2])
    if found < minimum:
        raise UsageError(f"the spark engine needs PySpark {'.'.join(map(str, minimum))} or newer "
                         f"(arrow_udf), found {pyspark.__version__}")
