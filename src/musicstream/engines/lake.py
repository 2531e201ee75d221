"""The Spark engine's Parquet output: Spark computes the whole star schema (``sql/spark/star.sql``, the rules'
second implementation) and publishes it as a new version of a Parquet lake, which readers find through its
``_CURRENT`` pointer. The session and the inputs: ``engines/spark_session.py``.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from musicstream.db.sqlfiles import named_statements
from musicstream.engines.spark_session import (
    USER_EVENT_SCHEMA,
    check_executors,
    discover_all,
    fold_counts,
    is_local,
    jvm_of,
    jvm_peak_rss_mb,
    latest_users,
    partitioned_inputs,
    session,
)
from musicstream.engines.tasks import (
    ROW_SCHEMA,
    aws_environment,
    row_partition,
)
from musicstream.faults import point
from musicstream.load.stats import LoadResult
from musicstream.memory import peak_rss_mb
from musicstream.transform.records import UserEvent

STAR_TABLES = ("trackplays", "users", "tracks", "artists", "timetb")


def write_parquet(
    paths: Sequence[str | Path], out: str, master: str | None = None, repair_names: bool = True
) -> LoadResult:
    """Compute the star schema of the files under ``paths`` with Spark and publish it as a new version of the
    Parquet lake at ``out`` (``_write``): ``trackplays`` partitioned by year and month, each dimension as one file,
    ``rejects``, and ``name_repairs`` (rule 6's repairs of names; ``repair_names`` off: names as given)."""
    started = time.monotonic()
    spark = session(master)
    if not is_local(str(spark.sparkContext.master)):
        check_executors(spark)
    files = discover_all(spark, paths)
    result = LoadResult(files_found=len(files))
    rows = spark.createDataFrame(
        partitioned_inputs(spark, files, {}, True, repair_names).mapPartitions(
            functools.partial(row_partition, env=aws_environment())
        ),
        ROW_SCHEMA,
        verifySchema=False,
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        small = rows.where(rows.kind.isin("file", "count")).select(*_FACT_COLUMNS).collect()
        fold_counts(result, [_fact(tuple(r)) for r in small], {f.path: f for f in files})
        for kind, view in (("play", "plays"), ("song", "songs"), ("repair", "repairs")):
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
        repaired = spark.sql("SELECT coalesce(sum(count), 0), count(*) FROM name_repairs").first()
        assert repaired is not None
        result.names_repaired, result.spellings_repaired = int(repaired[0]), int(repaired[1])
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
LAKE_TABLES = (*STAR_TABLES, "rejects", "name_repairs")


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
    tables["name_repairs"] = spark.table("name_repairs")
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
    jvm = jvm_of(spark)
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
    jvm = jvm_of(spark)
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
        jvm = jvm_of(spark)
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
