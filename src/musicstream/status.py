"""What the database holds: schema version, row counts, recent runs (``musicstream status``)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

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
    return status
