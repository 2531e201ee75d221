"""What operators ask of a database between loads: what a run did, why records were rejected, which files to read
again, and read-only SQL. Each returns plain rows; the CLI prints them (``musicstream runs | rejects | forget |
sql``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from musicstream.db.schema import require_schema
from musicstream.db.sqlfiles import named_statements
from musicstream.errors import ConfigError


def _ops() -> dict[str, str]:
    return named_statements("ops/ops")


def runs(conn: psycopg.Connection[Any], limit: int) -> list[dict[str, Any]]:
    require_schema(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_ops()["runs"], {"limit": limit}).fetchall()


def run_detail(conn: psycopg.Connection[Any], run_id: int) -> dict[str, Any]:
    """One run: its record, the files it read (run_files: also those a later run read again), its rejects' reasons."""
    require_schema(conn)
    statements = _ops()
    with conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute(statements["run"], {"run_id": run_id}).fetchone()
        if run is None:
            last = conn.execute("SELECT max(run_id) FROM etl_runs").fetchone()
            known = f"runs are numbered 1 to {last[0]}" if last and last[0] else "no run is recorded yet"
            raise ConfigError(f"there is no run {run_id}: {known} (musicstream runs lists them)")
        run["files"] = cur.execute(statements["run_files"], {"run_id": run_id}).fetchall()
        run["reject_reasons"] = cur.execute(statements["run_reasons"], {"run_id": run_id}).fetchall()
    return run


def rejects(conn: psycopg.Connection[Any], run_id: int | None, reason: str | None, limit: int) -> list[dict[str, Any]]:
    require_schema(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_ops()["rejects"], {"run_id": run_id, "reason": reason, "limit": limit}).fetchall()


def manifest_path(path: str | Path) -> str:
    """A path as the manifest names files: absolute with symlinks resolved (object-storage URLs as given)."""
    text = str(path)
    if "://" in text:
        return text
    return os.path.realpath(text)


def forget(conn: psycopg.Connection[Any], paths: Sequence[str | Path]) -> list[str]:
    """Drop files from the manifest so that the next load reads them again; returns the paths dropped. The rows
    they loaded stay: read again, their plays are duplicates (rule 2) and their songs upsert (rule 5)."""
    require_schema(conn)
    with conn.transaction():
        rows = conn.execute(_ops()["forget"], {"paths": [manifest_path(p) for p in paths]}).fetchall()
    return sorted(r[0] for r in rows)


def read_only_sql(conn: psycopg.Connection[Any], query: str, write: bool) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one SQL statement; in a read-only transaction unless ``write``. Returns column names and rows."""
    with conn.transaction():
        if not write:
            conn.execute("SET TRANSACTION READ ONLY")
        cur = conn.execute(query.encode())  # bytes: the text is the user's SQL, not a template with %s
        if cur.description is None:
            return ["rows affected"], [(cur.rowcount,)]
        return [c.name for c in cur.description], cur.fetchall()
