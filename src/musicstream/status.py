"""What the database holds: schema version, row counts, recent runs (``musicstream status``)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from musicstream.db.bulk import WATCH_LOCK, lock_holders
from musicstream.db.schema import STAR_TABLES, current_version, latest_version, settle


def database_status(conn: psycopg.Connection[Any], runs: int = 5) -> dict[str, Any]:
    version = current_version(conn)
    status: dict[str, Any] = {
        "schema_version": version,
        "schema_latest": latest_version(),
        "server_version": conn.info.server_version,
        "tables": {},
        "recent_runs": [],
    }
    if version == 0:
        return status
    if version == latest_version():
        settle(conn)  # what a load that died deferred is back before the counts are read
    for table in STAR_TABLES:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        status["tables"][table] = int(row[0]) if row else 0
    extra = conn.execute(
        """
        SELECT (SELECT count(*) FROM tracks WHERE is_inferred), (SELECT count(*) FROM artists WHERE is_inferred),
               (SELECT count(*) FROM loaded_files), (SELECT count(*) FROM rejects)
        """
    ).fetchone()
    assert extra is not None
    status["inferred_tracks"], status["inferred_artists"], status["files_loaded"], status["rejects"] = map(int, extra)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT run_id, started_at, finished_at, status, files_read, files_skipped, records_read,
                   records_loaded, records_skipped, duplicates, rejects, rows_added, error
            FROM etl_runs ORDER BY run_id DESC LIMIT %s
            """,
            (runs,),
        )
        status["recent_runs"] = cur.fetchall()
    status["watcher"] = watcher_status(conn)
    return status


def watcher_status(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    """The watcher (``musicstream watch``) of this database: whether it runs (it holds the watcher lock), its
    process, its last batch, its lag (how long the oldest file waiting has waited, 0 when none waits) and the
    files waiting, as it last wrote them. None when no watcher ever ran here."""
    exists = conn.execute("SELECT to_regclass('public.watcher') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT pid, host, backend_pid, paths, started_at, seen_at, state, files_waiting, bytes_waiting,
                      CASE WHEN files_waiting > 0 AND oldest_waiting IS NOT NULL
                           THEN round(greatest(extract(epoch FROM now() - oldest_waiting), 0), 1) ELSE 0 END
                        AS lag_seconds,
                      oldest_waiting, last_run_id, last_batch_at, last_batch_files,
                      round(last_batch_lag::numeric, 2) AS last_batch_lag, batches, stopped_at
               FROM watcher"""
        ).fetchone()
    if row is None:
        return None
    row["running"] = row.pop("backend_pid") in lock_holders(conn, WATCH_LOCK)
    if not row["running"] and row["state"] != "stopped":
        row["state"] = "gone"  # it stopped without saying so (killed, or its database connection was lost)
    return row
