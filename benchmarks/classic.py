"""The classic row-by-row loader, as the seed exercise's instructions describe it: the baseline to beat.

``pandas.read_json`` per file, one INSERT per row, one SELECT per play to find its song. Tables are the Sparkify
layout, in schema ``classic`` of the database given. Used only by the benchmark.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

DDL = """
DROP SCHEMA IF EXISTS classic CASCADE;
CREATE SCHEMA classic;
CREATE TABLE classic.songplays (songplay_id SERIAL PRIMARY KEY, start_time TIMESTAMP NOT NULL, user_id INT NOT NULL,
    level VARCHAR, song_id VARCHAR, artist_id VARCHAR, session_id INT, location VARCHAR, user_agent VARCHAR);
CREATE TABLE classic.users (user_id INT PRIMARY KEY, first_name VARCHAR, last_name VARCHAR, gender VARCHAR,
    level VARCHAR);
CREATE TABLE classic.songs (song_id VARCHAR PRIMARY KEY, title VARCHAR, artist_id VARCHAR, year INT,
    duration FLOAT);
CREATE TABLE classic.artists (artist_id VARCHAR PRIMARY KEY, name VARCHAR, location VARCHAR, latitude FLOAT,
    longitude FLOAT);
CREATE TABLE classic.time (start_time TIMESTAMP PRIMARY KEY, hour INT, day INT, week INT, month INT, year INT,
    weekday VARCHAR);
"""
SONG_INSERT = "INSERT INTO classic.songs VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
ARTIST_INSERT = "INSERT INTO classic.artists VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
TIME_INSERT = "INSERT INTO classic.time VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
USER_INSERT = (
    "INSERT INTO classic.users VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET level = excluded.level"
)
SONG_SELECT = (
    "SELECT s.song_id, a.artist_id FROM classic.songs s JOIN classic.artists a ON s.artist_id = a.artist_id "
    "WHERE s.title = %s AND a.name = %s AND s.duration = %s"
)
SONGPLAY_INSERT = (
    "INSERT INTO classic.songplays (start_time, user_id, level, song_id, artist_id, session_id, location, user_agent) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def _value(value: Any) -> Any:
    return None if pd.isna(value) else value.item() if hasattr(value, "item") else value


def process_song_file(cur: psycopg.Cursor[Any], path: Path) -> int:
    df = pd.read_json(path, lines=True)
    for _, row in df.iterrows():
        cur.execute(SONG_INSERT, [_value(row[c]) for c in ("song_id", "title", "artist_id", "year", "duration")])
        cur.execute(
            ARTIST_INSERT,
            [
                _value(row[c])
                for c in ("artist_id", "artist_name", "artist_location", "artist_latitude", "artist_longitude")
            ],
        )
    return len(df)


def process_log_file(cur: psycopg.Cursor[Any], path: Path) -> int:
    df = pd.read_json(path, lines=True)
    events = len(df)
    df = df[df["page"] == "NextSong"]
    times = pd.to_datetime(df["ts"], unit="ms")
    for t in times:
        cur.execute(TIME_INSERT, (t, t.hour, t.day, t.isocalendar()[1], t.month, t.year, t.day_name()))
    for _, row in df.iterrows():
        if row["userId"] == "":
            continue
        cur.execute(USER_INSERT, (int(row["userId"]), row["firstName"], row["lastName"], row["gender"], row["level"]))
    for (_, row), start in zip(df.iterrows(), times, strict=True):
        cur.execute(SONG_SELECT, (row["song"], row["artist"], float(row["length"])))
        found = cur.fetchone()
        song_id, artist_id = found if found else (None, None)
        cur.execute(
            SONGPLAY_INSERT,
            (
                start,
                int(row["userId"]),
                row["level"],
                song_id,
                artist_id,
                int(row["sessionId"]),
                row["location"],
                row["userAgent"],
            ),
        )
    return events


def run(conninfo: str, song_files: Sequence[Path], log_files: Sequence[Path]) -> int:
    """Load the files the classic way (autocommit, row by row); returns the number of log events read."""
    events = 0
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(DDL)
        for path in song_files:
            process_song_file(cur, path)
        for path in log_files:
            events += process_log_file(cur, path)
    return events


if __name__ == "__main__":
    root = Path(sys.argv[2])
    print(run(sys.argv[1], sorted(root.glob("song_data/**/*.json")), sorted(root.glob("log_data/**/*.json"))))
