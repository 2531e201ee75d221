"""The star schema exported to CSV and Parquet (musicstream.export): each file holds its table's rows, in key order,
with the table's columns and types; a refused or failed export writes nothing and leaves existing files as they were.
The public sample is loaded into a real database and every file is read back."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from psycopg import sql

from musicstream import LoadOptions, run_load
from musicstream import export as export_module
from musicstream.db.connection import Database
from musicstream.errors import ConfigError, DatabaseError, MusicstreamError
from musicstream.export import SPARKIFY_VIEWS, STAR_TABLES, ExportError, export_tables

KEYS = {
    "trackplays": "trackplay_id",
    "users": "user_id",
    "tracks": "track_id",
    "artists": "artist_id",
    "timetb": "start_time",
}

# What the Parquet files must hold, column by column: the schema's types as the export maps them.
PARQUET_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "trackplays": {
        "trackplay_id": pl.Int64(),
        "start_time": pl.Datetime("us"),
        "user_id": pl.Int32(),
        "tier": pl.String(),
        "track_id": pl.String(),
        "artist_id": pl.String(),
        "session_id": pl.Int32(),
        "item_in_session": pl.Int32(),
        "location": pl.String(),
        "user_agent": pl.String(),
        "name_id": pl.Int32(),
    },
    "users": {
        "user_id": pl.Int32(),
        "first_name": pl.String(),
        "last_name": pl.String(),
        "gender": pl.String(),
        "tier": pl.String(),
        "last_event_ts": pl.Int64(),
        "last_session_id": pl.Int32(),
        "last_item": pl.Int32(),
        "listener_no": pl.Int32(),
    },
    "tracks": {
        "track_id": pl.String(),
        "title": pl.String(),
        "artist_id": pl.String(),
        "year": pl.Int32(),
        "duration": pl.Float64(),
        "is_inferred": pl.Boolean(),
        "title_key": pl.String(),
        "artist_key": pl.String(),
    },
    "artists": {
        "artist_id": pl.String(),
        "name": pl.String(),
        "location": pl.String(),
        "latitude": pl.Float64(),
        "longitude": pl.Float64(),
        "is_inferred": pl.Boolean(),
        "source_track_id": pl.String(),
    },
    "timetb": {
        "start_time": pl.Datetime("us"),
        "hour": pl.Int32(),
        "day": pl.Int32(),
        "week": pl.Int32(),
        "month": pl.Int32(),
        "year": pl.Int32(),
        "weekday": pl.String(),
    },
}


@pytest.fixture
def loaded(db: Database, udacity: Path) -> Database:
    run_load(db, [udacity], LoadOptions(workers=1))
    return db


def _relation(name: str) -> sql.Identifier:
    schema, _, table = name.rpartition(".")
    return sql.Identifier(schema or "public", table)


def _copy_csv(conn: psycopg.Connection[Any], query: sql.Composable) -> list[list[str]]:
    """The rows of COPY (query) TO STDOUT as CSV, header first, parsed back."""
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(query)) as copy:
        for block in copy:
            buffer.write(block)
    return list(csv.reader(io.StringIO(buffer.getvalue().decode("utf-8"), newline="")))


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _count(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_relation(name))).fetchone()
    assert row is not None
    return int(row[0])


def _column_names(conn: psycopg.Connection[Any], name: str) -> list[str]:
    schema, _, table = name.rpartition(".")
    found = conn.execute(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position",
        (schema or "public", table),
    ).fetchall()
    return [str(r[0]) for r in found]


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def test_csv_export_holds_each_table_in_key_order(loaded: Database, tmp_path: Path) -> None:
    target = tmp_path / "out" / "csv"  # made, parents too
    with loaded.connect(autocommit=True) as conn:
        result = export_tables(conn, target)
        assert [r["table"] for r in result] == list(STAR_TABLES)
        assert sorted(p.name for p in target.iterdir()) == sorted(f"{t}.csv" for t in STAR_TABLES)  # no leftovers
        for entry in result:
            table = entry["table"]
            path = target / f"{table}.csv"
            assert entry["path"] == str(path) and entry["bytes"] == path.stat().st_size
            written = _read_csv(path)
            expected = _copy_csv(
                conn,
                sql.SQL("SELECT * FROM {} ORDER BY {}").format(_relation(table), sql.Identifier(KEYS[table])),
            )
            assert written[0] == _column_names(conn, table)
            count = _count(conn, table)
            assert count > 0 and entry["rows"] == count == len(written) - 1
            assert written == expected, table
    # a few values as the sample has them, read from the file alone
    plays = _read_csv(target / "trackplays.csv")
    assert len(plays) - 1 == 6820 and [row[0] for row in plays[1:4]] == ["1", "2", "3"]
    assert {row[3] for row in plays[1:]} == {"free", "paid"}


def test_parquet_export_keeps_types_and_values(loaded: Database, tmp_path: Path) -> None:
    with loaded.connect() as conn:  # not autocommit: the export opens and ends its own transaction
        result = export_tables(conn, tmp_path, "parquet")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.parquet" for t in STAR_TABLES)
        for entry in result:
            table = entry["table"]
            path = tmp_path / f"{table}.parquet"
            assert entry["path"] == str(path) and entry["bytes"] == path.stat().st_size
            frame = pl.read_parquet(path)
            assert dict(frame.schema) == PARQUET_SCHEMAS[table], table
            assert list(frame.columns) == _column_names(conn, table)
            expected = conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY {}").format(_relation(table), sql.Identifier(KEYS[table]))
            ).fetchall()
            assert entry["rows"] == frame.height == len(expected) > 0
            assert frame.rows() == [tuple(_plain(v) for v in row) for row in expected], table

        plays = pl.read_parquet(tmp_path / "trackplays.parquet")
        row = conn.execute(
            "SELECT sum(session_id), sum(item_in_session), min(start_time), max(start_time), count(DISTINCT user_id) "
            "FROM trackplays"
        ).fetchone()
        assert row is not None
        assert plays["session_id"].sum() == row[0] and plays["item_in_session"].sum() == row[1]
        assert plays["start_time"].min() == row[2] and plays["start_time"].max() == row[3]
        assert plays["user_id"].n_unique() == row[4]
        assert plays["trackplay_id"].is_sorted()

        tracks = pl.read_parquet(tmp_path / "tracks.parquet")
        durations = dict(conn.execute("SELECT track_id, duration::text FROM tracks").fetchall())
        assert len(durations) == tracks.height
        for track_id, duration in tracks.select("track_id", "duration").iter_rows():
            assert duration == float(durations[track_id])  # the double the song file's number was
            assert repr(duration) == repr(float(Decimal(durations[track_id])))
        total = conn.execute("SELECT sum(duration) FROM tracks").fetchone()
        assert total is not None and math.isclose(tracks["duration"].sum(), float(total[0]))


def test_parquet_export_in_small_batches_is_the_same(
    loaded: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with loaded.connect(autocommit=True) as conn:
        export_tables(conn, tmp_path / "whole", "parquet", ["trackplays", "sparkify.songs"])
        monkeypatch.setattr(export_module, "BATCH_ROWS", 500)  # 6820 plays: 14 batches
        export_tables(conn, tmp_path / "batched", "parquet", ["trackplays", "sparkify.songs"])
    for name in ("trackplays.parquet", "sparkify.songs.parquet"):
        whole = pl.read_parquet(tmp_path / "whole" / name)
        batched = pl.read_parquet(tmp_path / "batched" / name)
        assert whole.height > 0 and whole.equals(batched)
    assert pl.read_parquet(tmp_path / "batched" / "trackplays.parquet")["trackplay_id"].is_sorted()


def test_sparkify_views_export_by_name(loaded: Database, tmp_path: Path) -> None:
    with loaded.connect(autocommit=True) as conn:
        result = export_tables(conn, tmp_path, tables=SPARKIFY_VIEWS)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{v}.csv" for v in SPARKIFY_VIEWS)
        for entry in result:
            view = entry["table"]
            written = _read_csv(tmp_path / f"{view}.csv")
            expected = _copy_csv(conn, sql.SQL("SELECT * FROM {}").format(_relation(view)))
            assert written[0] == expected[0] == _column_names(conn, view)
            assert Counter(map(tuple, written[1:])) == Counter(map(tuple, expected[1:]))
            assert entry["rows"] == len(written) - 1 == _count(conn, view) > 0
        songplays = _read_csv(tmp_path / "sparkify.songplays.csv")
        ids = [int(row[0]) for row in songplays[1:]]
        assert ids == sorted(ids)
        # the view's own rows: the songs are the catalog's, not the inferred tracks
        assert len(songplays) - 1 == 6820
        assert len(_read_csv(tmp_path / "sparkify.songs.csv")) - 1 == _count(conn, "sparkify.songs") == 71

        songs = export_tables(conn, tmp_path / "pq", "parquet", ["sparkify.songs"])
        frame = pl.read_parquet(songs[0]["path"])
        assert dict(frame.schema) == {
            "song_id": pl.String(),
            "title": pl.String(),
            "artist_id": pl.String(),
            "year": pl.Int32(),
            "duration": pl.Float64(),
        }
        expected_rows = conn.execute("SELECT * FROM sparkify.songs ORDER BY song_id").fetchall()
        assert frame.rows() == [tuple(_plain(v) for v in row) for row in expected_rows]


@pytest.mark.parametrize("tables", [["users", "etl_runs"], ["users; DROP TABLE users"], ["public.users"], []])
def test_unknown_table_is_a_usage_error_and_writes_nothing(loaded: Database, tmp_path: Path, tables: list[str]) -> None:
    target = tmp_path / "out"
    with loaded.connect(autocommit=True) as conn:
        with pytest.raises(ConfigError) as raised:
            export_tables(conn, target, tables=tables)
        assert raised.value.exit_code == 2
        assert not target.exists()
        with pytest.raises(ConfigError):
            export_tables(conn, target, fmt="json")
        assert not target.exists()
        assert _count(conn, "users") == 97


def test_existing_files_are_kept_unless_overwrite(loaded: Database, tmp_path: Path) -> None:
    old = b"user_id\n1,not what the table holds\n"
    (tmp_path / "users.csv").write_bytes(old)
    with loaded.connect(autocommit=True) as conn:
        with pytest.raises(ExportError) as raised:
            export_tables(conn, tmp_path, tables=["trackplays", "users"])
        assert isinstance(raised.value, MusicstreamError) and raised.value.exit_code == 1
        assert str(tmp_path / "users.csv") in str(raised.value) and "add --overwrite to replace them" in str(
            raised.value
        )
        assert (tmp_path / "users.csv").read_bytes() == old
        assert sorted(p.name for p in tmp_path.iterdir()) == ["users.csv"]  # trackplays.csv was not written either

        result = export_tables(conn, tmp_path, tables=["trackplays", "users"], overwrite=True)
        assert [r["rows"] for r in result] == [6820, 97]
        written = _read_csv(tmp_path / "users.csv")
        assert written == _copy_csv(conn, sql.SQL("SELECT * FROM users ORDER BY user_id"))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["trackplays.csv", "users.csv"]


def test_a_failed_export_replaces_nothing_and_leaves_no_partial_file(
    loaded: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = b"old\n"
    (tmp_path / "users.parquet").write_bytes(old)
    real = export_module._write_parquet
    calls: list[Path] = []

    def failing(conn: psycopg.Connection[Any], relation: Any, path: Path) -> int:
        calls.append(path)
        if len(calls) == 3:  # the third table fails after the first two were written in full
            raise OSError(28, "No space left on device")
        return real(conn, relation, path)

    monkeypatch.setattr(export_module, "_write_parquet", failing)
    with loaded.connect(autocommit=True) as conn:
        with pytest.raises(ExportError, match="No space left on device; no file was replaced"):
            export_tables(conn, tmp_path, "parquet", overwrite=True)
        assert [p.name for p in calls] == [
            ".trackplays.parquet.partial",
            ".users.parquet.partial",
            ".tracks.parquet.partial",
        ]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["users.parquet"]
        assert (tmp_path / "users.parquet").read_bytes() == old
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_an_open_transaction_is_refused(loaded: Database, tmp_path: Path) -> None:
    with loaded.connect() as conn:
        conn.execute("SELECT 1")
        with pytest.raises(DatabaseError, match="commit or roll back first"):
            export_tables(conn, tmp_path / "out")
        assert not (tmp_path / "out").exists()
        conn.rollback()
        assert export_tables(conn, tmp_path / "out", tables=["users"])[0]["rows"] == 97


def test_an_empty_database_exports_empty_tables_with_their_columns(db: Database, tmp_path: Path) -> None:
    with db.connect(autocommit=True) as conn:
        names = (*STAR_TABLES, *SPARKIFY_VIEWS)
        as_csv = export_tables(conn, tmp_path / "csv", tables=names)
        as_parquet = export_tables(conn, tmp_path / "parquet", "parquet", tables=names)
        for entry in as_csv:
            assert entry["rows"] == 0
            assert _read_csv(Path(entry["path"])) == [_column_names(conn, entry["table"])]
        for entry in as_parquet:
            frame = pl.read_parquet(entry["path"])
            assert entry["rows"] == frame.height == 0
            assert list(frame.columns) == _column_names(conn, entry["table"])
            if entry["table"] in PARQUET_SCHEMAS:
                assert dict(frame.schema) == PARQUET_SCHEMAS[entry["table"]]


def test_the_export_command(loaded: Database, tmp_path: Path) -> None:
    """`musicstream export`: the files and their row counts as JSON, exit 1 (and nothing replaced) when they exist,
    exit 2 for a table it does not know."""
    from test_errors import musicstream

    out_dir = tmp_path / "star"
    code, out, err = musicstream("--database-url", loaded.conninfo, "export", "--json", str(out_dir))
    assert code == 0, err
    written = {entry["table"]: entry for entry in json.loads(out)}
    with loaded.connect() as conn:
        for table in STAR_TABLES:
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            assert count is not None and written[table]["rows"] == count[0] > 0
            assert (out_dir / f"{table}.csv").read_text().count("\n") >= count[0] + 1
    before = (out_dir / "users.csv").read_bytes()
    code, _, err = musicstream("--database-url", loaded.conninfo, "export", str(out_dir))
    assert code == 1 and "add --overwrite" in err and (out_dir / "users.csv").read_bytes() == before
    code, out, err = musicstream(
        "--database-url", loaded.conninfo, "export", "--format", "parquet", "--table", "sparkify.songs", str(out_dir)
    )
    assert code == 0, err
    assert pl.read_parquet(out_dir / "sparkify.songs.parquet").height == written["tracks"]["rows"] - sum(
        1 for row in csv.DictReader(io.StringIO((out_dir / "tracks.csv").read_text())) if row["is_inferred"] == "t"
    )
    code, _, err = musicstream("--database-url", loaded.conninfo, "export", "--table", "rejects", str(out_dir))
    assert code == 2 and "cannot export 'rejects'" in err
