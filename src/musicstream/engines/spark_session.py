"""What the Spark engine's two outputs share: the Spark session, the check of a cluster's executors, the input
files (local paths, ``s3://`` through fsspec, Hadoop URIs such as ``s3a://`` and ``hdfs://`` through the JVM's
Hadoop FileSystem API) spread over tasks, and the fold of what the tasks counted.

Executors read whole files with the local engine's parser (``engines/tasks.py``), so records and rejects are those
of the local engine. With ``engines/spark.py`` (the PostgreSQL output) and ``engines/lake.py`` (the Parquet lake),
the only modules that import PySpark, after ``engines.require_spark`` has checked it is there.
"""

from __future__ import annotations

import heapq
import os
import re
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pyspark import RDD
from pyspark.sql import SparkSession

from musicstream.engines.tasks import (
    Source,
    Unit,
)
from musicstream.errors import EngineError, InputError
from musicstream.extract.files import HADOOP_SCHEMES, InputFile, discover, in_hidden_folder, kind_of_path
from musicstream.load.stats import LoadResult
from musicstream.memory import peak_rss_mb
from musicstream.transform.records import latest_of

DEFAULT_MASTER = "local[2]"
HADOOP_SPECIAL = ",{}[]*?\\"  # characters Spark's binaryFiles reads as list separators or glob patterns
SONGS_PER_UNIT = 256
STAGE_PREFIX = "musicstream_stage_"
USER_EVENT_SCHEMA = (  # UserEvent's fields, typed for Spark
    "ts bigint, session_id int, item_in_session int, user_id int, first_name string, last_name string, "
    "gender string, tier string"
)
HADOOP_AWS_HINT = (
    "s3a:// needs Hadoop's S3A connector (hadoop-aws and its AWS SDK bundle) on the Spark classpath: EMR, "
    "Dataproc and Databricks ship it; elsewhere add the jars that match your Spark's Hadoop version to "
    "$SPARK_HOME/jars or pass them with spark-submit --jars. Without a cluster, s3:// URLs are read through fsspec"
)
_LOG4J = """rootLogger.level = error
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def session(master: str | None = None) -> SparkSession:
    """The Spark session: the active one when there is one, else a new one (``local[2]`` by default) with UTC
    as its time zone and quiet logs. Executors in local mode run this very Python."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return _utc(active)
    if master is None and "PYSPARK_GATEWAY_PORT" in os.environ:  # run by spark-submit: its --master and --conf
        return _utc(SparkSession.builder.appName("musicstream").getOrCreate())
    master = master or DEFAULT_MASTER
    builder = (
        SparkSession.builder.master(master)
        .appName("musicstream")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.datetimeRebaseModeInWrite", "CORRECTED")
        .config("spark.sql.parquet.int96RebaseModeInWrite", "CORRECTED")
    )
    log4j = Path(tempfile.gettempdir(), "musicstream-log4j2.properties")
    log4j.write_text(_LOG4J, encoding="utf-8")
    builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
    if is_local(master):
        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
        threads = re.fullmatch(r"local\[(\*|\d+)(?:,\d+)?\]", master)  # local[N] or local[N,retries]
        cores = threads.group(1) if threads else "1"
        cores = str(os.cpu_count() or 2) if cores == "*" else cores
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", str(2 * int(cores)))
            .config("spark.driver.memory", os.environ.get("MUSICSTREAM_SPARK_DRIVER_MEMORY", "2g"))
        )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
            spark = builder.getOrCreate()
    except Exception as exc:
        raise EngineError(f"Spark did not start (master {master}): {exc}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


PROBE_TIMEOUT = float(os.environ.get("MUSICSTREAM_SPARK_PROBE_TIMEOUT", "120"))  # seconds for executors to answer
CLUSTER_HINT = (
    "Install musicstream (the same version) into the Python every executor runs, on every node, or ship a packed "
    "environment: spark-submit --archives musicstream-env.tar.gz#env --conf spark.pyspark.python=./env/bin/python "
    '(docs/scale-out.md, "Running on a cluster")'
)


def _probe(expected: str, conninfo: str | None) -> Any:
    """A task that imports nothing of musicstream to run (it is pickled by value), and reports what the
    executor's Python has: musicstream and its dependencies, their versions, and whether the database answers."""

    def probe(index: int, _items: Any) -> Any:
        import importlib
        import socket
        import sys as executor_sys

        found: dict[str, Any] = {"host": socket.gethostname(), "python": executor_sys.executable, "missing": []}
        for module in ("musicstream", "psycopg", "orjson", "polars"):
            try:
                imported = importlib.import_module(module)
            except Exception as exc:  # any reason an import or a connection fails is worth reporting
                found["missing"].append(f"{module} ({type(exc).__name__}: {exc})")
                continue
            if module == "musicstream":
                found["version"] = getattr(imported, "__version__", "?")
        if conninfo and not found["missing"]:
            try:
                import psycopg as executor_psycopg

                executor_psycopg.connect(conninfo, connect_timeout=10, application_name="musicstream-probe").close()
            except Exception as exc:  # any reason an import or a connection fails is worth reporting
                found["database"] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        yield found

    return probe


def check_executors(spark: SparkSession, conninfo: str | None = None) -> None:
    """On a cluster, before any work: a tiny job on the executors checks that their Python has musicstream (this
    version) and its dependencies, and, with ``conninfo``, reaches the database. Raises EngineError saying what to
    install where (or what to fix) instead of Spark's four failed task attempts and a worker's traceback."""
    import threading

    from musicstream import __version__
    from musicstream.config import mask_error

    sc = spark.sparkContext
    tasks = max(2, 2 * sc.defaultParallelism)
    group = f"musicstream-probe-{uuid.uuid4().hex[:8]}"
    timer = threading.Timer(PROBE_TIMEOUT, sc.cancelJobGroup, args=(group,))
    sc.setJobGroup(group, "musicstream: check the executors", interruptOnCancel=True)
    timer.start()
    try:
        answers = sc.parallelize(range(tasks), tasks).mapPartitionsWithIndex(_probe(__version__, conninfo)).collect()
    except Exception as exc:
        if not timer.is_alive():
            raise EngineError(
                f"no Spark executor answered within {PROBE_TIMEOUT:.0f} s (master {sc.master}): check that the "
                "workers are up and have the cores and memory this application asks for "
                "(MUSICSTREAM_SPARK_PROBE_TIMEOUT sets the wait)"
            ) from None
        text = mask_error(exc).strip()
        first = next(
            (line for line in reversed(text.splitlines()) if "Error" in line), text.splitlines()[0] if text else ""
        )
        raise EngineError(f"the Spark executors could not run a Python task: {first.strip()}. {CLUSTER_HINT}") from None
    finally:
        timer.cancel()
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    for answer in answers:
        where = f"on {answer['host']}, Python {answer['python']}"
        if answer["missing"]:
            raise EngineError(f"the Spark executors cannot import {answer['missing'][0]} ({where}). {CLUSTER_HINT}")
        if answer.get("version") != __version__:
            raise EngineError(
                f"the Spark executors have musicstream {answer.get('version')}, the driver {__version__} ({where}): "
                f"install the same version everywhere. {CLUSTER_HINT}"
            )
        if "database" in answer:
            raise EngineError(
                f"the Spark executors cannot reach the database ({where}): {mask_error(answer['database'])}. "
                "Executors connect to the --database-url themselves: give a host name and port they can reach "
                "(not localhost, unless every worker runs on this machine), and allow them in pg_hba.conf"
            )


def _utc(spark: SparkSession) -> SparkSession:
    """Timestamps and ``timetb`` are UTC (rule 4) whatever session the caller or spark-submit configured."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


def jvm_of(spark: SparkSession) -> Any:
    jvm = spark.sparkContext._jvm
    if jvm is None:  # pragma: no cover - only on a stopped session
        raise EngineError("the Spark session has stopped; run the command again")
    return jvm


def _is_hadoop(path: str | Path) -> bool:
    """A URI for Hadoop's FileSystem API: s3a://, hdfs://, … and file: (as Hadoop writes file URIs)."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):/", str(path)) if isinstance(path, str) else None
    return match is not None and match.group(1).lower() in (*HADOOP_SCHEMES, "file")


def _hadoop_files(spark: SparkSession, url: str) -> list[InputFile]:
    """The input files under a Hadoop URI, listed by the JVM's Hadoop FileSystem API."""
    jvm = jvm_of(spark)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    root = jvm.org.apache.hadoop.fs.Path(url)
    try:
        fs = root.getFileSystem(conf)
        if not fs.exists(root):
            raise InputError(f"input path not found: {url}")
        listing = fs.listFiles(root, True)
        prefix = str(fs.makeQualified(root).toString()).rstrip("/")
        found: list[InputFile] = []
        while listing.hasNext():
            status = listing.next()
            path = status.getPath()
            name = str(path.getName())
            text = str(path.toString())
            if not name.lower().endswith((".json", ".json.gz")) or name.startswith("."):
                continue
            if in_hidden_folder(text[len(prefix) :] if text.startswith(prefix) else text.split(":", 1)[1]):
                continue
            kind = kind_of_path(Path(text.split(":", 1)[1])) or "log"
            found.append(InputFile(text, kind, int(status.getLen())))
        return found
    except InputError:
        raise
    except Exception as exc:
        message = str(exc)
        if "S3AFileSystem" in message or 'scheme "s3a"' in message:
            raise EngineError(f"cannot read {url}: {HADOOP_AWS_HINT}") from None
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        raise InputError(f"cannot list {url} through Hadoop: {first}") from None


def discover_all(spark: SparkSession, paths: Sequence[str | Path]) -> list[InputFile]:
    """Every input file: Hadoop URIs listed through the JVM, the rest as the local engine lists them."""
    found = {f.path: f for f in discover([p for p in paths if not _is_hadoop(p)])} if paths else {}
    for given in paths:
        if _is_hadoop(given):
            found.update((f.path, f) for f in _hadoop_files(spark, str(given)))
    return sorted(found.values(), key=lambda f: (f.kind != "song", f.path))


def _bins(units: list[Unit], slots: int) -> list[list[Unit]]:
    """Units spread over ``slots`` bins of about equal bytes (largest first, each to the lightest bin)."""
    slots = max(1, min(slots, len(units)))
    heap = [(0, i) for i in range(slots)]
    bins: list[list[Unit]] = [[] for _ in range(slots)]
    for unit in sorted(units, key=lambda u: -sum(s.size for s in u.sources)):
        load, i = heapq.heappop(heap)
        bins[i].append(unit)
        heapq.heappush(heap, (load + sum(s.size for s in unit.sources) + 1, i))
    return [b for b in bins if b]


def partitioned_inputs(
    spark: SparkSession, files: Sequence[InputFile], known: dict[str, tuple[int, str]], full: bool, repair: bool = True
) -> Any:
    """An RDD whose partitions hold the work: bins of units for local and fsspec files, (unit, bytes) pairs
    for files on Hadoop file systems (read by Spark's binaryFiles); ``repair``: rule 6's repair of names."""
    sc = spark.sparkContext

    def source(f: InputFile) -> Source:
        size, digest = known.get(f.path, (-1, ""))
        return Source(f.path, f.kind, f.size, digest if not full and size == f.size else None)

    plain = [f for f in files if not _is_hadoop(f.path)]
    hadoop = [f for f in files if _is_hadoop(f.path)]
    units = [Unit("log", (source(f),), repair) for f in plain if f.kind == "log"]
    songs = [source(f) for f in plain if f.kind == "song"]
    units += [Unit("song", tuple(songs[i : i + SONGS_PER_UNIT]), repair) for i in range(0, len(songs), SONGS_PER_UNIT)]
    slots = 2 * sc.defaultParallelism
    rdd = sc.parallelize(_bins(units, slots), max(1, min(slots, len(units)))) if units else sc.emptyRDD()
    if hadoop:
        by_path = {f.path: Unit(f.kind, (source(f),), repair) for f in hadoop}
        awkward = [p for p in by_path if any(c in p for c in HADOOP_SPECIAL)]
        if awkward:
            raise InputError(
                f"cannot read {awkward[0]} through Hadoop: its reader splits a list of paths at commas and expands "
                "{} [] * ? as patterns. Rename the file, or give its folder as a local path or an s3:// URL"
            )
        blobs = sc.binaryFiles(",".join(by_path), minPartitions=slots)
        rdd = rdd.union(blobs.map(lambda pair: (by_path[pair[0]], pair[1])))
    return rdd


def fold_counts(
    result: LoadResult, facts: Iterable[tuple[Any, ...]], files: dict[str, InputFile]
) -> list[tuple[str, str, int, str, int, int]]:
    """Add the executors' per-file facts and counts to the run's result; returns the manifest rows."""
    manifest: list[tuple[str, str, int, str, int, int]] = []
    for row in facts:
        if row[0] == "count":
            _, skipped, logged_out, peak = row
            result.records_skipped += skipped
            result.logged_out += logged_out
            result.peak_rss_mb = max(result.peak_rss_mb, peak)
            continue
        _, path, kind, size, digest, records, rejects, unchanged = row
        if unchanged:
            result.files_skipped += 1
            continue
        result.add_file(kind, files[path].size if path in files else size, records, rejects)
        if digest is not None:  # a file that could not be read is not in the manifest: it is retried
            manifest.append((path, kind, size, digest, records, rejects))
    return manifest


def latest_users(events: RDD[tuple[tuple[Any, ...], str]]) -> RDD[tuple[Any, ...]]:
    """Rule 3 over the run's files: from each file's latest event of each user (a UserEvent's fields, and the file's
    path), each user's latest event, by the one definition the local engine also keeps (``latest_of``)."""
    return events.map(lambda event: (event[0][3], event)).reduceByKey(latest_of).map(lambda pair: pair[1][0])


def jvm_peak_rss_mb(spark: SparkSession) -> float:
    """The Spark JVM's peak resident memory (VmHWM) when it runs on this machine (local mode), else 0."""
    try:
        pid = int(jvm_of(spark).java.lang.ProcessHandle.current().pid())
    except Exception:  # a remote driver, a stopped gateway: nothing to read here
        return 0.0
    return peak_rss_mb(pid)
