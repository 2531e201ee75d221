"""The Spark engine's PostgreSQL output (``load.state.Engine``): executors COPY their rows into unlogged tables of a
staging schema of the run's own; each user's latest event is found with the local engine's rule 3
(``transform.records.latest_of``); then the load's one transaction runs the merge SQL on those rows and drops the
schema (``load/pipeline.py`` drives it). The session and the inputs: ``engines/spark_session.py``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pyspark import StorageLevel

from musicstream.config import mask
from musicstream.db.connection import Database
from musicstream.db.sqlfiles import statements
from musicstream.engines.spark_session import (
    STAGE_PREFIX,
    check_executors,
    discover_all,
    fold_counts,
    is_local,
    jvm_peak_rss_mb,
    latest_users,
    partitioned_inputs,
    session,
)
from musicstream.engines.tasks import (
    aws_environment,
    stage_partition,
    stage_users,
)
from musicstream.errors import ConfigError
from musicstream.extract.files import InputFile
from musicstream.faults import point
from musicstream.load.staging import create_staging
from musicstream.load.state import RunState, Staged


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

    def __init__(self, db: Database, master: str | None, repair: bool = True) -> None:
        self.db = db
        self.repair = repair  # rule 6's repair of names
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
        staged = partitioned_inputs(self.spark, files, known, full, self.repair).mapPartitionsWithIndex(parse)
        staged.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            facts = staged.filter(lambda row: row[0] != "user").collect()
            latest = latest_users(staged.filter(lambda row: row[0] == "user").map(lambda row: (row[1:9], row[9])))
            latest.mapPartitionsWithIndex(functools.partial(stage_users, conninfo=self.conninfo, schema=schema)).sum()
        finally:
            staged.unpersist()
        manifest = fold_counts(result, facts, {f.path: f for f in files})
        run.progress.advance(sum(f.size for f in files))
        path = sql.SQL("{}, public").format(sql.Identifier(schema)).as_string(conn)
        conn.execute("SELECT set_config('search_path', %s, true)", (path,))
        # The merge reads the staged rows over many statements: a late (speculative or zombie) task attempt must
        # not rewrite its partition meanwhile. SHARE mode waits for any writer still running, then keeps them out.
        tables = [
            sql.Identifier(schema, t)
            for t in ("stage_songs", "stage_plays", "stage_users", "stage_rejects", "stage_repairs")
        ]
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
        schema, self.schema = self.schema, None
        try:
            with self.db.connect(autocommit=True) as admin:
                admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        except Exception:
            pass
