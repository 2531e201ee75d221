"""The Spark engine (real Spark in local mode, real PostgreSQL): the same files give the same tables, the same
rejects and the same run counts as the local engine; the Parquet lake equals a fresh PostgreSQL load."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import _fresh_database, rows
from musicstream.config import Settings
from musicstream.db.connection import Database
from musicstream.load import LoadOptions, LoadResult, run_load
from test_order_independence import snapshot

SPARK = LoadOptions(engine="spark")
COUNTS = ("files_read", "files_skipped", "records_read", "records_loaded", "records_skipped", "duplicates", "rejected")
_names = itertools.count()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One Spark session (local[2]) for every test here: starting one costs several seconds."""
    from musicstream.engines import require_spark

    require_spark()
    from musicstream.engines.spark import session

    spark = session("local[2]")
    yield spark
    spark.stop()


@pytest.fixture
def local_db(embedded: Database) -> Iterator[Database]:
    """A second fresh database, for the local engine's side of a comparison."""
    name = f"ms_spark_local_{next(_names)}"
    yield Database(Settings(database_url=_fresh_database(embedded, name), home=embedded.settings.home))
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bookkeeping(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "rejects": rows(db, "SELECT file, line, reason, raw FROM rejects ORDER BY file, line, reason"),
        "loaded_files": rows(
            db, "SELECT path, kind, size_bytes, sha256, records, rejects FROM loaded_files ORDER BY path"
        ),
        "staging_schemas": rows(db, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'musicstream_stage%%'"),
    }


def counts(result: LoadResult) -> dict[str, Any]:
    return {**{k: getattr(result, k) for k in COUNTS}, "rows_added": result.rows_added, "ok": result.reconciles}


def test_udacity_spark_equals_local(db: Database, local_db: Database, udacity: Path, spark: Any) -> None:
    with_spark = run_load(db, [udacity], SPARK)
    with_local = run_load(local_db, [udacity])
    assert with_spark.status == "succeeded"
    assert counts(with_spark) == counts(with_local)
    assert snapshot(db) == snapshot(local_db)
    assert bookkeeping(db) == bookkeeping(local_db)
    assert rows(db, "SELECT engine FROM etl_runs") == [("spark",)]
    # SEMANTICS.md's figures for the sample
    assert rows(db, "SELECT count(*) FROM trackplays") == [(6820,)]
    assert rows(db, "SELECT count(*) FILTER (WHERE tier = 'paid'), count(*) FROM users") == [(22, 97)]
    again = run_load(db, [udacity], SPARK)
    assert again.files_skipped == with_local.files_read and again.records_read == 0
    assert snapshot(db) == snapshot(local_db)
