"""The Spark engine: the one module that imports PySpark.

The driver lists the input files (local paths, ``s3://`` through fsspec, Hadoop URIs such as ``s3a://`` and
``hdfs://`` through the JVM's Hadoop FileSystem API) and spreads them over tasks. Executors read whole files
with the local engine's parser (``engines/tasks.py``), so records and rejects are those of the local engine.

- PostgreSQL output: executors COPY their rows into unlogged tables of a staging schema of the run's own;
  each user's latest event is found with the local engine's rule 3 (``transform.records.latest_of``); then the
  load's one transaction runs the local engine's merge SQL on those rows and drops the schema
  (``load/pipeline.py`` drives it, through ``SparkEngine``).
- Parquet output: Spark computes the whole star schema (``sql/spark/star.sql``) and writes a Parquet lake.
"""

from __future__ import annotations

import functools
import heapq
import os
import re
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pyspark import RDD, StorageLevel
from pyspark.sql import DataFrame, SparkSession

from musicstream.config import mask
from musicstream.db.connection import Database
from musicstream.db.sqlfiles import named_statements, statements
from musicstream.engines.tasks import (
    ROW_SCHEMA,
    Source,
    Unit,
    aws_environment,
    row_partition,
    stage_partition,
    stage_users,
)
from musicstream.errors import ConfigError, EngineError, InputError
from musicstream.extract.files import HADOOP_SCHEMES, InputFile, discover, in_hidden_folder, kind_of_path
from musicstream.faults import point
from musicstream.load.staging import create_staging
from musicstream.load.state import RunState, Staged
from musicstream.load.stats import LoadResult
from musicstream.memory import peak_rss_mb
from musicstream.transform.records import UserEvent, latest_of

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
    '(README, "Running on a cluster")'
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


def _jvm(spark: SparkSession) -> Any:
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
    jvm = _jvm(spark)
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


def _inputs(spark: SparkSession, files: Sequence[InputFile], known: dict[str, tuple[int, str]], full: bool) -> Any:
    """An RDD whose partitions hold the work: bins of units for local and fsspec files, (unit, bytes) pairs
    for files on Hadoop file systems (read by Spark's binaryFiles)."""
    sc = spark.sparkContext

    def source(f: InputFile) -> Source:
        size, digest = known.get(f.path, (-1, ""))
        return Source(f.path, f.kind, f.size, digest if not full and size == f.size else None)

    plain = [f for f in files if not _is_hadoop(f.path)]
    hadoop = [f for f in files if _is_hadoop(f.path)]
    units = [Unit("log", (source(f),)) for f in plain if f.kind == "log"]
    songs = [source(f) for f in plain if f.kind == "song"]
    units += [Unit("song", tuple(songs[i : i + SONGS_PER_UNIT])) for i in range(0, len(songs), SONGS_PER_UNIT)]
    slots = 2 * sc.defaultParallelism
    rdd = sc.parallelize(_bins(units, slots), max(1, min(slots, len(units)))) if units else sc.emptyRDD()
    if hadoop:
        by_path = {f.path: Unit(f.kind, (source(f),)) for f in hadoop}
        awkward = [p for p in by_path if any(c in p for c in HADOOP_SPECIAL)]
        if awkward:
            raise InputError(
                f"cannot read {awkward[0]} through Hadoop: its reader splits a list of paths at commas and expands "
                "{} [] * ? as patterns. Rename the file, or give its folder as a local path or an s3:// URL"
            )
        blobs = sc.binaryFiles(",".join(by_path), minPartitions=slots)
        rdd = rdd.union(blobs.map(lambda pair: (by_path[pair[0]], pair[1])))
    return rdd


# -- PostgreSQL output -------------------------------------------------------------------------------------------


def _conninfo_for(db: Database, master: str) -> str:
    """The database URL executors use; on a cluster it must be reachable over TCP."""
    conninfo = db.conninfo
    if is_local(master):
        return conninfo
    host = str(psycopg.conninfo.conninfo_to_dict(conninfo).get("host") or os.environ.get("PGHOST") or "")
    if db.settings.embedded or not host or host.startswith("/"):
        raise ConfigError(
            f"--master {master} runs executors on other machines: they need a database they can reach over TCP, "
            f"and {mask(conninfo)} is a Unix socket. Pass --database-url postgresql://user@host:5432/musicstreamdb "
            "(the embedded PostgreSQL is for local mode only)"
        )
    return conninfo


class SparkEngine:
    """The Spark engine (``load.state.Engine``): list the files, then stage them through Spark's executors."""

    name = "spark"

    def __init__(self, db: Database, master: str | None) -> None:
        self.db = db
        self.spark = session(master)
        self.master = str(self.spark.sparkContext.master)
        self.conninfo = _conninfo_for(db, self.master)
        self.schema: str | None = None
        if not is_local(self.master):
            check_executors(self.spark, self.conninfo)

    def discover(self, paths: Sequence[str | Path]) -> list[InputFile]:
        return discover_all(self.spark, paths)

    def _create_schema(self, run_id: int) -> str:
        schema = f"{STAGE_PREFIX}{run_id}"
        with self.db.connect(autocommit=True) as admin:
            # Under the load lock, any staging schema left is a killed run's: drop it.
            leftovers = admin.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (STAGE_PREFIX,)
            ).fetchall()
            for (name,) in leftovers:
                admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
            with admin.transaction():
                create_staging(admin)  # the one definition; the schema's tables copy it (LIKE)
                for statement in statements("spark/staging"):
                    admin.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))
        self.schema = schema
        return schema

    def stage(
        self, conn: psycopg.Connection[Any], run: RunState, files: Sequence[InputFile], full: bool, started_ns: int
    ) -> Staged:
        """Fill the run's staging schema through Spark, then point the transaction's search_path at it."""
        result = run.result
        known: dict[str, tuple[int, str]] = {
            path: (size, digest)
            for path, size, digest in conn.execute(
                "SELECT path, size_bytes, sha256 FROM loaded_files WHERE path = ANY(%s)", ([f.path for f in files],)
            )
        }
        schema = self._create_schema(result.run_id)
        point("staging-tables")
        run.progress.phase("reading with Spark")
        parse = functools.partial(stage_partition, conninfo=self.conninfo, schema=schema, env=aws_environment())
        staged = _inputs(self.spark, files, known, full).mapPartitionsWithIndex(parse)
        staged.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            facts = staged.filter(lambda row: row[0] != "user").collect()
            latest = latest_users(staged.filter(lambda row: row[0] == "user").map(lambda row: (row[1:9], row[9])))
            latest.mapPartitionsWithIndex(functools.partial(stage_users, conninfo=self.conninfo, schema=schema)).sum()
        finally:
            staged.unpersist()
        manifest = _fold(result, facts, {f.path: f for f in files})
        run.progress.advance(sum(f.size for f in files))
        path = sql.SQL("{}, public").format(sql.Identifier(schema)).as_string(conn)
        conn.execute("SELECT set_config('search_path', %s, true)", (path,))
        # The merge reads the staged rows over many statements: a late (speculative or zombie) task attempt must
        # not rewrite its partition meanwhile. SHARE mode waits for any writer still running, then keeps them out.
        tables = [sql.Identifier(schema, t) for t in ("stage_songs", "stage_plays", "stage_users", "stage_rejects")]
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.SQL(", ").join(tables)))
        with conn.cursor() as cur:
            with cur.copy("COPY stage_files (path, kind, size_bytes, sha256, records, rejects) FROM STDIN") as copy:
                for entry in manifest:
                    copy.write_row(entry)
            row = cur.execute(
                "SELECT (SELECT count(*) FROM stage_plays), (SELECT count(*) FROM stage_songs)"
            ).fetchone()
        assert row is not None
        result.peak_rss_mb = max(result.peak_rss_mb, jvm_peak_rss_mb(self.spark))
        return Staged(plays=int(row[0]), songs=int(row[1]))

    def before_commit(self, conn: psycopg.Connection[Any]) -> None:
        """Drop the staging schema in the load's own transaction: it goes exactly when the run commits."""
        if self.schema:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(self.schema)))

    def after_failure(self) -> None:
        if not self.schema:
            return
        try:
            with self.db.connect(autocommit=True) as admin:
                admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))
        except Exception:
            pass


def _fold(
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
        pid = int(_jvm(spark).java.lang.ProcessHandle.current().pid())
    except Exception:  # a remote driver, a stopped gateway: nothing to read here
        return 0.0
    return peak_rss_mb(pid)


# -- Parquet output ----------------------------------------------------------------------------------------------

STAR_TABLES = ("trackplays", "users", "tracks", "artists", "timetb")


def write_parquet(paths: Sequence[str | Path], out: str, master: str | None = None) -> LoadResult:
    """Compute the star schema of the files under ``paths`` with Spark and publish it as a new version of the
    Parquet lake at ``out`` (``_write``): ``trackplays`` partitioned by year and month, each dimension as one file,
    and ``rejects``."""
    started = time.monotonic()
    spark = session(master)
    if not is_local(str(spark.sparkContext.master)):
        check_executors(spark)
    files = discover_all(spark, paths)
    result = LoadResult(files_found=len(files))
    rows = spark.createDataFrame(
        _inputs(spark, files, {}, True).mapPartitions(functools.partial(row_partition, env=aws_environment())),
        ROW_SCHEMA,
        verifySchema=False,
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        small = rows.where(rows.kind.isin("file", "count")).select(*_FACT_COLUMNS).collect()
        _fold(result, [_fact(tuple(r)) for r in small], {f.path: f for f in files})
        for kind, view in (("play", "plays"), ("song", "songs")):
            rows.where(rows.kind == kind).createOrReplaceTempView(view)
        events = rows.where(rows.kind == "user").select(*UserEvent._fields, "path").rdd
        latest = latest_users(events.map(lambda row: (tuple(row[:-1]), row[-1])))
        spark.createDataFrame(latest, USER_EVENT_SCHEMA).createOrReplaceTempView("latest_users")
        for name, statement in named_statements("spark/star").items():
            spark.sql(statement)
            if name in ("catalog_tracks", "resolution", "facts"):  # each is read by several tables
                spark.table(name).persist(StorageLevel.MEMORY_AND_DISK)
        folder = _write(spark, out, rows)
        counts = {t: spark.read.parquet(f"{folder}/{t}").count() for t in STAR_TABLES}
        staged_plays = spark.table("plays").count()
        staged_songs = spark.table("songs").count()
        catalog = spark.table("catalog_tracks").count()
        result.records_loaded = counts["trackplays"] + catalog
        result.duplicates = (staged_plays - counts["trackplays"]) + (staged_songs - catalog)
        result.rows_added = counts
        result.status = "succeeded"
    finally:
        spark.catalog.clearCache()
        rows.unpersist()
    result.peak_rss_mb = round(max(result.peak_rss_mb, peak_rss_mb(), jvm_peak_rss_mb(spark)), 1)
    result.seconds = round(time.monotonic() - started, 3)
    return result


_FACT_COLUMNS = (
    "kind",
    "path",
    "file_kind",
    "size",
    "digest",
    "records",
    "rejects",
    "unchanged",
    "skipped",
    "logged_out",
    "peak_rss_mb",
)


def _fact(row: tuple[Any, ...]) -> tuple[Any, ...]:
    kind, path, file_kind, size, digest, records, rejects, unchanged, skipped, logged_out, peak = row
    if kind == "count":
        return ("count", skipped, logged_out, peak)
    return ("file", path, file_kind, size, digest, records, rejects, unchanged)


POINTER = "_CURRENT"
LAKE_TABLES = (*STAR_TABLES, "rejects")


def _write(spark: SparkSession, out: str, rows: DataFrame) -> str:
    """Write every table into a new version folder of the lake, then publish it: ``_CURRENT`` names it (written
    last, at once); then the versions before the previous one go. Returns the new version's folder.

    A reader that reads ``_CURRENT`` and then ``<lake>/<version>/<table>`` sees a complete version at any moment:
    the one before (until the pointer changes) or the new one (after). The previous version stays, so a reader
    who read the pointer just before it changed can finish."""
    target = out.rstrip("/")
    tables: dict[str, DataFrame] = {t: spark.table(t) for t in STAR_TABLES}
    tables["rejects"] = (
        rows.where(rows.kind == "reject").selectExpr("path AS file", "line", "reason", "raw").orderBy("file", "line")
    )
    version = f"v-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    folder = f"{target}/{version}"
    for name, frame in tables.items():
        if name == "trackplays":
            frame.repartition("year", "month").write.mode("overwrite").partitionBy("year", "month").parquet(
                f"{folder}/{name}"
            )
        else:
            frame.coalesce(1).write.mode("overwrite").parquet(f"{folder}/{name}")
        point(f"lake:written:{name}")
    point("lake:written")
    previous = current_version(spark, target)
    _publish(spark, target, version)
    point("lake:published")
    _clean(spark, target, keep={version, previous})
    return folder


def _filesystem(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm = _jvm(spark)
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def current_version(spark: SparkSession, lake: str) -> str | None:
    """The version ``_CURRENT`` names in the lake (None: none published yet)."""
    target = lake.rstrip("/")
    if "://" not in target and not target.startswith("file:"):
        return read_pointer(target)
    fs, pointer = _filesystem(spark, f"{target}/{POINTER}")
    if not fs.exists(pointer):
        return None
    stream = fs.open(pointer)
    try:
        return str(jvm_read_text(spark, stream)).strip() or None
    finally:
        stream.close()


def jvm_read_text(spark: SparkSession, stream: Any) -> str:
    jvm = _jvm(spark)
    return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))


def read_pointer(lake: str | Path) -> str | None:
    """The current version of a lake on a local file system (what readers do: read ``_CURRENT``)."""
    try:
        return Path(lake, POINTER).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _publish(spark: SparkSession, target: str, version: str) -> None:
    """Point ``_CURRENT`` at ``version`` in one step: on a local or HDFS file system a new file renamed over the
    old (atomic), on an object store one PUT of the small object (atomic there: readers get the old or the new)."""
    if "://" not in target and not target.startswith("file:"):
        fd, temporary = tempfile.mkstemp(prefix=f".{POINTER}-", dir=target)
        with os.fdopen(fd, "w", encoding="utf-8") as pointer:
            pointer.write(version + "\n")
            pointer.flush()
            os.fsync(pointer.fileno())
        os.replace(temporary, os.path.join(target, POINTER))
        return
    fs, pointer = _filesystem(spark, f"{target}/{POINTER}")
    if str(fs.getScheme()) in ("hdfs", "file", "viewfs"):
        jvm = _jvm(spark)
        temporary = jvm.org.apache.hadoop.fs.Path(f"{target}/.{POINTER}-{uuid.uuid4().hex[:8]}")
        _write_text(fs, temporary, version)
        context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(
            pointer.toUri(), spark.sparkContext._jsc.hadoopConfiguration()
        )
        rename = getattr(jvm.org.apache.hadoop.fs, "Options$Rename")
        gateway = spark.sparkContext._gateway
        assert gateway is not None
        options = gateway.new_array(rename, 1)
        options[0] = rename.OVERWRITE
        context.rename(temporary, pointer, options)
    else:
        _write_text(fs, pointer, version)


def _write_text(fs: Any, path: Any, text: str) -> None:
    stream = fs.create(path, True)
    try:
        stream.write(bytearray((text + "\n").encode("utf-8")))
    finally:
        stream.close()


def _clean(spark: SparkSession, target: str, keep: set[str | None]) -> None:
    """Remove the lake's versions other than ``keep``, unpublished ones of killed runs, a pointer file a killed
    publish left half-way, and the tables of the layout before versions (one folder per table at the top)."""
    fs, root = _filesystem(spark, target)
    for status in fs.listStatus(root):
        name = str(status.getPath().getName())
        old_layout = name in LAKE_TABLES or (name.startswith(".") and name[1:].split("-")[0] in LAKE_TABLES)
        stale_pointer = name.startswith(f".{POINTER}-")  # a publish killed between writing and renaming it
        if (name.startswith("v-") and name not in keep) or old_layout or stale_pointer:
            fs.delete(status.getPath(), True)
