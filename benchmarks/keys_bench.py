"""What the fact table's foreign keys cost, each way of keeping them (docs/schema.md, "Keys and types").

Loads a data set into a fresh embedded database, then times, on copies of the loaded tables, median of --runs:
the plays inserted with no keys, with the three keys enforced row by row, with the keys added afterwards (one
validation pass), with NOT ENFORCED keys plus an anti-join check (PostgreSQL 18), and one more day inserted onto
the others with and without the keys.

    python benchmarks/keys_bench.py --data benchmarks/data/1m
    musicstream generate /tmp/1m --events 1000000 --days 31 --users 5000 --songs 10000 --seed 11 && \\
        python benchmarks/keys_bench.py --data /tmp/1m
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from musicstream import run_load
from musicstream.config import Settings
from musicstream.db.connection import Database
from musicstream.db.schema import initialize

KEYS = [
    ("user_id", "k_users", "user_id"),
    ("track_id", "k_tracks", "track_id"),
    ("artist_id", "k_artists", "artist_id"),
]
ANTI_JOIN = """
SELECT count(*) FROM k_plays p
WHERE NOT EXISTS (SELECT 1 FROM k_users u WHERE u.user_id = p.user_id)
   OR NOT EXISTS (SELECT 1 FROM k_tracks t WHERE t.track_id = p.track_id)
   OR NOT EXISTS (SELECT 1 FROM k_artists a WHERE a.artist_id = p.artist_id)
"""


def _copies(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP TABLE IF EXISTS k_plays, k_users, k_tracks, k_artists, k_source CASCADE")
    for table, source, key in (("k_users", "users", "user_id"), ("k_tracks", "tracks", "track_id")):
        conn.execute(f"CREATE TABLE {table} AS SELECT * FROM {source}")  # noqa: S608 - constant names
        conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({key})")
    conn.execute("CREATE TABLE k_artists AS SELECT * FROM artists")
    conn.execute("ALTER TABLE k_artists ADD PRIMARY KEY (artist_id)")
    conn.execute("CREATE TABLE k_source AS SELECT * FROM trackplays ORDER BY trackplay_id")
    conn.execute("ANALYZE k_source")


def _empty_plays(conn: psycopg.Connection[Any], keys: str = "") -> None:
    conn.execute("DROP TABLE IF EXISTS k_plays")
    conn.execute("CREATE TABLE k_plays (LIKE trackplays INCLUDING DEFAULTS)")
    conn.execute(
        "ALTER TABLE k_plays ADD PRIMARY KEY (trackplay_id), ADD UNIQUE (user_id, session_id, item_in_session)"
    )
    if keys is not None and keys != "none":
        _add_keys(conn, keys)


def _add_keys(conn: psycopg.Connection[Any], extra: str = "") -> None:
    clauses = ", ".join(f"ADD FOREIGN KEY ({c}) REFERENCES {t} ({k}) {extra}" for c, t, k in KEYS)
    conn.execute(f"ALTER TABLE k_plays {clauses}")


def _timed(conn: psycopg.Connection[Any], step: Callable[[], Any]) -> float:
    with conn.transaction():
        started = time.perf_counter()
        step()
        return time.perf_counter() - started


def measure(conn: psycopg.Connection[Any], runs: int) -> dict[str, list[float]]:
    _copies(conn)
    row = conn.execute("SELECT max(start_time)::date, current_setting('server_version_num')::int FROM k_source")
    last_day, server = row.fetchone() or (None, 0)
    day = conn.execute("SELECT count(*) FROM k_source WHERE start_time >= %s", (last_day,)).fetchone()
    plays = conn.execute("SELECT count(*) FROM k_source").fetchone()
    assert day and plays
    first, more = f"first load, {plays[0]:,} plays", f"one more day, {day[0]:,} plays onto the others"
    insert_all = "INSERT INTO k_plays SELECT * FROM k_source"
    insert_day = "INSERT INTO k_plays SELECT * FROM k_source WHERE start_time >= %s"
    found: dict[str, list[float]] = {}

    def add(label: str, seconds: float) -> None:
        found.setdefault(label, []).append(seconds)

    for _ in range(runs):
        _empty_plays(conn, None)
        add(f"{first}: no keys", _timed(conn, lambda: conn.execute(insert_all)))
        add(f"{first}: then add the keys (one validation pass)", _timed(conn, lambda: _add_keys(conn)))
        _empty_plays(conn, "")
        add(f"{first}: keys enforced row by row", _timed(conn, lambda: conn.execute(insert_all)))
        if server >= 180000:
            _empty_plays(conn, "NOT ENFORCED")
            add(f"{first}: NOT ENFORCED keys", _timed(conn, lambda: conn.execute(insert_all)))
            add(f"{first}: NOT ENFORCED, then the anti-join check", _timed(conn, lambda: conn.execute(ANTI_JOIN)))
        _empty_plays(conn, None)
        conn.execute("INSERT INTO k_plays SELECT * FROM k_source WHERE start_time < %s", (last_day,))
        conn.execute("VACUUM ANALYZE k_plays")
        add(f"{more}: no keys", _timed(conn, lambda: conn.execute(insert_day, (last_day,))))
        conn.execute("DELETE FROM k_plays WHERE start_time >= %s", (last_day,))
        conn.execute("VACUUM ANALYZE k_plays")
        _add_keys(conn)
        add(f"{more}: keys enforced row by row", _timed(conn, lambda: conn.execute(insert_day, (last_day,))))
    conn.execute("DROP TABLE IF EXISTS k_plays, k_users, k_tracks, k_artists, k_source CASCADE")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="a folder with song_data/ and log_data/")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ms-keys-", dir="/tmp"))
    try:
        db = Database(Settings(database_url=None, home=home))
        initialize(db)
        loaded = run_load(db, [args.data])
        print(f"loaded {loaded.rows_added.get('trackplays', 0):,} plays in {loaded.seconds:.1f} s")
        with db.connect(autocommit=True) as conn:
            conn.execute("SET work_mem = '128MB'")
            found = measure(conn, args.runs)
            version = conn.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'}, median of {args.runs}:")
        for label, seconds in found.items():
            shown = ", ".join(f"{s:.2f}" for s in seconds)
            print(f"  {label:70s} {statistics.median(seconds):7.2f} s  ({shown})")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
