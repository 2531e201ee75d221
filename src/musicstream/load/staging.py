"""The staging tables a run merges from: defined once, in ``sql/load/staging.sql``.

The local engine creates them as temporary tables of the load's session; the Spark engine copies their
definitions (``CREATE TABLE … (LIKE …)``) into a schema its executors can write to. The column lists below are
the order in which both engines COPY rows into them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from musicstream.db.sqlfiles import statements

PLAY_COLUMNS = (
    "user_id, session_id, item_in_session, ts, tier, location, user_agent, "
    "song_title, artist_name, length_ms, title_key, artist_key"
)
SONG_COLUMNS = (
    "track_id, title, artist_id, artist_name, year, duration, location, latitude, longitude, title_key, artist_key"
)
USER_COLUMNS = "ts, session_id, item_in_session, user_id, first_name, last_name, gender, tier"
REPAIR_COLUMNS = "file, original, repaired, line, count"
TABLES = ("stage_songs", "stage_plays", "stage_users", "stage_rejects", "stage_mtimes", "stage_files", "stage_repairs")


def create_staging(conn: psycopg.Connection[Any]) -> None:
    """Create the staging tables as temporary tables, dropped when the current transaction ends."""
    for statement in statements("load/staging"):
        conn.execute(statement)  # our own trusted .sql file


def repairs_staged(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Rule 6's repairs in the staged rows: names repaired (each time a record held one), and distinct spellings."""
    row = conn.execute("SELECT coalesce(sum(count), 0), count(DISTINCT original) FROM stage_repairs").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
