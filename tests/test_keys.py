"""The seed's data model, constraint for constraint, on every supported server (PostgreSQL 18 embedded, 15 over
TCP): the column types, NOT NULLs and REFERENCES of docs/schema.md, what plain SQL can and cannot do to the keys,
a load that cannot commit a play whose user, track or artist is missing, and the migration that brings a
database of schema version 6 to this model."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from conftest import rows, schema_catalog
from musicstream import LoadOptions, run_load
from musicstream.config import Settings
from musicstream.db import roles as db_roles
from musicstream.db.connection import Database
from musicstream.db.schema import initialize, migrate
from musicstream.db.sqlfiles import named_statements, read_sql
from musicstream.errors import LoadError
from musicstream.load.rollups import rebuild
from test_rejects import event

# The seed's model as docs/rules.md spells it, written out by hand: (table, column) → (type, NOT NULL).
# Widenings that lose nothing are allowed (trackplay_id BIGINT); stricter NOT NULLs are allowed.
SPEC: dict[tuple[str, str], tuple[str, bool]] = {
    ("trackplays", "trackplay_id"): ("bigint", True),
    ("trackplays", "start_time"): ("timestamp without time zone", True),
    ("trackplays", "user_id"): ("integer", True),
    ("trackplays", "tier"): ("text", False),
    ("trackplays", "track_id"): ("text", False),
    ("trackplays", "artist_id"): ("text", False),
    ("trackplays", "session_id"): ("integer", False),
    ("trackplays", "location"): ("text", False),
    ("trackplays", "user_agent"): ("text", False),
    ("users", "user_id"): ("integer", True),
    ("users", "first_name"): ("text", True),
    ("users", "last_name"): ("text", True),
    ("users", "gender"): ("text", False),
    ("users", "tier"): ("text", False),
    ("tracks", "track_id"): ("text", True),
    ("tracks", "title"): ("text", True),
    ("tracks", "artist_id"): ("text", True),
    ("tracks", "year"): ("integer", False),
    ("tracks", "duration"): ("numeric", True),
    ("artists", "artist_id"): ("text", True),
    ("artists", "name"): ("text", True),
    ("artists", "location"): ("text", False),
    ("artists", "latitude"): ("numeric", False),
    ("artists", "longitude"): ("numeric", False),
    ("timetb", "start_time"): ("timestamp without time zone", True),
    **{("timetb", c): ("integer", False) for c in ("hour", "day", "week", "month", "year")},
    ("timetb", "weekday"): ("text", False),
}
REFERENCES = {
    ("trackplays", "user_id", "users", "user_id"),
    ("trackplays", "track_id", "tracks", "track_id"),
    ("trackplays", "artist_id", "artists", "artist_id"),
    ("tracks", "artist_id", "artists", "artist_id"),
}
PRIMARY_KEYS = {
    "trackplays": ["trackplay_id"],
    "users": ["user_id"],
    "tracks": ["track_id"],
    "artists": ["artist_id"],
    "timetb": ["start_time"],
}

_names = itertools.count()


@pytest.fixture(params=["embedded-18", "tcp-15"])
def server_db(request: pytest.FixtureRequest, embedded: Database) -> Iterator[Database]:
    """A fresh database with the schema, on each supported server."""
    if request.param == "embedded-18":
        admin = embedded
    else:
        admin = Database(Settings(database_url=request.getfixturevalue("pg15")["url"]))
    name = f"ms_keys_{next(_names)}"
    url = psycopg.conninfo.make_conninfo(admin.conninfo, dbname=name)
    db = Database(Settings(database_url=url, home=embedded.settings.home))
    initialize(db)
    yield db
    with admin.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def model(db: Database) -> dict[str, Any]:
    """What \\d shows of the star: column types and NOT NULLs, primary keys, foreign keys."""
    columns = {
        (t, c): (dtype, nullable == "NO")
        for t, c, dtype, nullable in rows(
            db,
            """SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = ANY(%s)""",
            (list(PRIMARY_KEYS),),
        )
    }
    keys = rows(
        db,
        """SELECT c.conrelid::regclass::text, c.contype, a.attname, c.confrelid::regclass::text, fa.attname
           FROM pg_constraint c
           CROSS JOIN LATERAL unnest(c.conkey, coalesce(c.confkey, c.conkey)) AS k(col, fcol)
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col
           LEFT JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.fcol
           WHERE c.connamespace = 'public'::regnamespace AND c.contype IN ('p', 'f')""",
    )
    enforced = rows(db, "SELECT bool_and(convalidated) FROM pg_constraint WHERE contype = 'f'")[0][0]
    return {
        "columns": columns,
        "primary": {t: sorted(c for t2, kind, c, _, _ in keys if kind == "p" and t2 == t) for t in PRIMARY_KEYS},
        "references": {(t, c, ft, fc) for t, kind, c, ft, fc in keys if kind == "f"},
        "validated": enforced,
    }


def test_the_schema_is_the_seeds_model(server_db: Database) -> None:
    found = model(server_db)
    for column, (dtype, not_null) in SPEC.items():
        have_type, have_not_null = found["columns"][column]
        assert have_type == dtype, column
        if not_null:
            assert have_not_null, f"{column} must be NOT NULL"
    assert found["primary"] == PRIMARY_KEYS
    assert found["references"] >= REFERENCES
    assert found["validated"] is True


def _play(conn: psycopg.Connection[Any], **values: Any) -> None:
    base = {
        "start_time": "2018-11-01 00:00:00",
        "user_id": 1,
        "tier": "free",
        "track_id": "T1",
        "artist_id": "A1",
        "session_id": 1,
        "item_in_session": 1,
        "name_id": 1,
    }
    base.update(values)
    columns = sql.SQL(", ").join(map(sql.Identifier, base))
    conn.execute(
        sql.SQL("INSERT INTO trackplays ({}) VALUES ({})").format(
            columns, sql.SQL(", ").join([sql.Placeholder()] * len(base))
        ),
        list(base.values()),
    )


def test_plain_sql_cannot_break_the_keys(server_db: Database) -> None:
    """The keys are enforced by the server for every writer, not only by musicstream's load (docs/schema.md)."""
    with server_db.connect(autocommit=True) as conn:
        conn.execute("INSERT INTO artists (artist_id, name) VALUES ('A1', 'Artist')")
        conn.execute(
            "INSERT INTO tracks (track_id, title, artist_id, duration, title_key, artist_key) "
            "VALUES ('T1', 'Title', 'A1', 200.5, 'title', 'artist')"
        )
        conn.execute(
            "INSERT INTO users (user_id, first_name, last_name, tier, last_event_ts, last_session_id, last_item) "
            "VALUES (1, 'Ann', 'Lee', 'free', 0, 1, 1)"
        )
        _play(conn)  # every key present: stored
        cannot = [
            lambda: _play(conn, user_id=2, item_in_session=2),
            lambda: _play(conn, track_id="T-missing", item_in_session=2),
            lambda: _play(conn, artist_id="A-missing", item_in_session=2),
            lambda: conn.execute("DELETE FROM users WHERE user_id = 1"),
            lambda: conn.execute("DELETE FROM tracks WHERE track_id = 'T1'"),
            lambda: conn.execute("UPDATE trackplays SET artist_id = 'A-missing'"),
        ]
        for attempt in cannot:
            with pytest.raises(errors.ForeignKeyViolation):
                attempt()
        with pytest.raises(errors.NotNullViolation):
            conn.execute("UPDATE users SET first_name = NULL")
        with pytest.raises(errors.NotNullViolation):
            conn.execute("UPDATE tracks SET duration = NULL")
        # what plain SQL can do: remove a play (its dimensions stay), and, as the tables' owner, drop a key
        conn.execute("DELETE FROM trackplays")
        conn.execute("DELETE FROM users")
        with conn.transaction():
            conn.execute("ALTER TABLE trackplays DROP CONSTRAINT trackplays_user_id_fkey")
            _play(conn, user_id=99)
            conn.execute("DELETE FROM trackplays")
            conn.execute(
                "ALTER TABLE trackplays ADD CONSTRAINT trackplays_user_id_fkey FOREIGN KEY (user_id) "
                "REFERENCES users (user_id)"
            )
    assert model(server_db)["references"] >= REFERENCES


def _day(folder: Path, name: str, user: str, day: int) -> None:
    ts = 1541030400000 + day * 86_400_000
    lines = [
        json.dumps(event(userId=user, sessionId=day + 1, itemInSession=i, ts=ts + i * 1000, song=f"Song {i}"))
        for i in range(3)
    ]
    (folder / "log_data").mkdir(parents=True, exist_ok=True)
    (folder / "log_data" / name).write_text("\n".join(lines) + "\n")


def _star(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {
        t: rows(db, sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(t)).as_string(None))  # type: ignore[arg-type]
        for t in ("trackplays", "users", "tracks", "artists", "timetb", "play_names", "loaded_files")
    }


# A fault planted in the merge: the plays point at a user, track or artist that is not there.
FAULTS = {
    "user": ("p.user_id, p.tier", "p.user_id + 1000000, p.tier"),
    "track": ("p.tier, n.track_id", "p.tier, 'IT-no-such-track'"),
    "artist": ("n.track_id, n.artist_id", "n.track_id, 'IA-no-such-artist'"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("into", ["empty tables", "loaded tables"])
def test_a_play_without_its_dimension_cannot_be_committed(
    server_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, into: str
) -> None:
    """Both ways the load keeps the keys: checked once at the end of a first load into empty tables, row by row
    when the tables hold rows. Either way the run fails and nothing is committed."""
    first, second = tmp_path / "first", tmp_path / "second"
    _day(first, "day1.json", "7", 0)
    _day(second, "day2.json", "8", 1)
    if into == "loaded tables":
        run_load(server_db, [first], LoadOptions(workers=1))
    before = _star(server_db)
    merge = named_statements("load/merge")
    old, new = FAULTS[fault]
    plays = ("insert_plays", "insert_plays_first")  # a first load's variant too
    assert all(old in merge[name] for name in plays)
    faulty = {**merge, **{name: merge[name].replace(old, new) for name in plays}}
    statements = named_statements
    monkeypatch.setattr(
        "musicstream.load.steps.named_statements", lambda name: faulty if name == "load/merge" else statements(name)
    )
    with pytest.raises(LoadError, match="violates foreign key constraint"):
        run_load(server_db, [first, second] if into == "empty tables" else [second], LoadOptions(workers=1))
    assert _star(server_db) == before
    assert rows(server_db, "SELECT status FROM etl_runs ORDER BY run_id DESC LIMIT 1") == [("failed",)]
    monkeypatch.undo()
    run_load(server_db, [first, second], LoadOptions(workers=1))
    assert rows(server_db, "SELECT count(*) FROM trackplays") == [(6,)]
    assert model(server_db)["references"] >= REFERENCES


def test_a_user_without_a_name_is_unknown_and_keeps_the_play(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "log_data"
    folder.mkdir()
    (folder / "noname.json").write_text(
        json.dumps(event(userId="5", firstName=None, lastName="", itemInSession=1))
        + "\n"
        + json.dumps(event(userId="6", firstName="Ann", lastName="Lee", itemInSession=1))
        + "\n"
    )
    result = run_load(db, [tmp_path], LoadOptions(workers=1))
    assert (result.rejected, result.rows_added["trackplays"]) == (0, 2)
    assert rows(db, "SELECT user_id, first_name, last_name FROM users ORDER BY 1") == [
        (5, "Unknown", "Unknown"),
        (6, "Ann", "Lee"),
    ]


def back_to_version_14(conn: psycopg.Connection[Any]) -> None:
    """The schema as migration 14 left it: no watcher table."""
    conn.execute("DROP TABLE watcher; DELETE FROM schema_migrations WHERE version = 15")


def back_to_version_13(conn: psycopg.Connection[Any]) -> None:
    """The schema as migration 13 left it: no table of the repairs of names."""
    back_to_version_14(conn)
    conn.execute(
        """DROP VIEW name_repairs;
           DROP TABLE name_repairs_by_file;
           DELETE FROM schema_migrations WHERE version = 14"""
    )


def back_to_version_12(conn: psycopg.Connection[Any]) -> None:
    """The schema as migration 12 left it: no run_files (each run's files), no loader's pids in etl_runs."""
    back_to_version_13(conn)
    conn.execute(
        """DROP TABLE run_files;
           ALTER TABLE etl_runs DROP COLUMN pid, DROP COLUMN backend_pid;
           DELETE FROM schema_migrations WHERE version = 13;
           DROP TABLE schema_functions"""
    )


def back_to_version_11(conn: psycopg.Connection[Any]) -> None:
    """The schema as migration 11 left it (migration 12 changed a function only)."""
    back_to_version_12(conn)
    conn.execute("DELETE FROM schema_migrations WHERE version = 12")


def back_to_version_10(conn: psycopg.Connection[Any]) -> None:
    """The schema as migration 10 left it: no 'interrupted' run status."""
    back_to_version_11(conn)
    conn.execute(
        """ALTER TABLE etl_runs DROP CONSTRAINT etl_runs_status_check;
           ALTER TABLE etl_runs ADD CONSTRAINT etl_runs_status_check
               CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned'));
           DELETE FROM schema_migrations WHERE version = 11"""
    )


def back_to_version_9(conn: psycopg.Connection[Any]) -> None:
    """The schema as migration 9 left it: no session lengths, spanning sessions, openers or arrivals."""
    back_to_version_10(conn)
    conn.execute(
        """DROP FUNCTION refresh_session_lengths, refresh_day_tier_moves, report_day_tiers, listener_bitmap,
                         session_bucket, session_seconds, bits_and;
           DROP TABLE rollup_session_lengths, rollup_spanning_sessions;
           DROP INDEX rollup_user_days_user;
           ALTER TABLE rollup_day_sets DROP COLUMN openers, DROP COLUMN arrivals;
           DELETE FROM schema_migrations WHERE version = 10"""
    )


def back_to_version_8(conn: psycopg.Connection[Any]) -> None:
    """The schema as migration 8 left it: no listener numbers, day sets or session days."""
    back_to_version_9(conn)
    conn.execute(
        """DROP FUNCTION refresh_day_sets, refresh_session_days, report_day_sets, report_session_count, bit_is_set,
                         bit_positions;
           DROP TABLE rollup_day_sets, rollup_session_days, rollup_user_days;
           ALTER TABLE rollup_sessions DROP COLUMN hours;
           DROP INDEX rollup_sessions_session;
           DROP AGGREGATE bits_union(varbit);
           DROP FUNCTION bits_or;
           ALTER TABLE users DROP COLUMN listener_no;
           DELETE FROM schema_migrations WHERE version = 9"""
    )


def back_to_version_7(conn: psycopg.Connection[Any]) -> None:
    """The schema as migration 7 left it: no day top lists, single-column key indexes on the plays."""
    back_to_version_8(conn)
    conn.execute(
        """DROP TABLE rollup_day_tops, rollup_day_floors;
           DROP FUNCTION report_top, refresh_day_tops, day_tops_kept;
           DROP INDEX trackplays_track_idx, trackplays_artist_idx;
           CREATE INDEX trackplays_track_idx ON trackplays (track_id);
           CREATE INDEX trackplays_artist_idx ON trackplays (artist_id);
           DELETE FROM schema_migrations WHERE version = 8"""
    )


def back_to_version_6(conn: psycopg.Connection[Any]) -> None:
    """The schema as migration 6 left it: no foreign keys on the plays, nullable names, double precision."""
    back_to_version_7(conn)
    conn.execute(
        """ALTER TABLE trackplays DROP CONSTRAINT trackplays_user_id_fkey, DROP CONSTRAINT trackplays_track_id_fkey,
                                  DROP CONSTRAINT trackplays_artist_id_fkey;
           DROP INDEX trackplays_track_idx;
           DROP VIEW sparkify.songs, sparkify.artists;
           ALTER TABLE users ALTER first_name DROP NOT NULL, ALTER last_name DROP NOT NULL;
           ALTER TABLE tracks ALTER duration TYPE double precision, ALTER duration DROP NOT NULL;
           ALTER TABLE artists ALTER latitude TYPE double precision, ALTER longitude TYPE double precision;
           DELETE FROM schema_migrations WHERE version = 7"""
    )
    conn.execute(read_sql("schema/0002_sparkify_views"))


def test_migration_brings_a_loaded_database_to_the_model(db: Database, udacity: Path) -> None:
    run_load(db, [udacity])
    expected = _star(db)
    analyst = f"ms_keys_analyst_{next(_names)}"
    with db.connect(autocommit=True) as conn:
        db_roles.create_roles(conn, analyst=analyst, loader=f"{analyst}_loader")
        back_to_version_6(conn)
        for view in ("songs", "artists"):  # as `musicstream roles` had granted them before
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier("sparkify", view), sql.Identifier(analyst))
            )
        conn.execute("UPDATE users SET first_name = NULL, last_name = NULL WHERE user_id = 2")
        assert migrate(conn, rebuild) == [7, 8, 9, 10, 11, 12, 13, 14, 15]
        # the runs before migration 13: their files as the manifest holds them
        assert conn.execute("SELECT count(*) FROM run_files").fetchone() == (101,)
        granted = conn.execute(
            "SELECT has_table_privilege(%s, 'sparkify.songs', 'SELECT'), "
            "has_table_privilege(%s, 'sparkify.artists', 'SELECT')",
            (analyst, analyst),
        ).fetchone()
    assert granted == (True, True)  # the views made again keep their grants
    found = model(db)
    assert all(found["columns"][c][0] == t for c, (t, _) in SPEC.items())
    assert found["references"] >= REFERENCES
    after = _star(db)
    assert next(u for u in after.pop("users") if u[0] == 2)[1:3] == ("Unknown", "Unknown")
    expected.pop("users")
    assert after == expected  # durations and coordinates come back as the decimals the files wrote
    assert rows(db, "SELECT duration FROM tracks WHERE track_id = 'SOZCTXZ12AB0182364'") == [(Decimal("269.58322"),)]


def test_migration_refuses_catalog_tracks_without_duration(db: Database) -> None:
    with db.connect(autocommit=True) as conn:
        back_to_version_6(conn)
        conn.execute("INSERT INTO artists (artist_id, name) VALUES ('A1', 'Artist')")
        conn.execute(
            "INSERT INTO tracks (track_id, title, artist_id, title_key, artist_key) VALUES ('T1', 'x', 'A1', 'x', 'a')"
        )
        with pytest.raises(psycopg.errors.RaiseException, match="1 catalog tracks have no duration"):
            migrate(conn, rebuild)


def test_a_first_load_leaves_every_key_and_index_as_the_schema_defines_them(db: Database, udacity: Path) -> None:
    """A first load drops the empty tables' secondary indexes, foreign keys, and the fact table's and timetb's own
    keys, for speed (docs/schema.md): after it, the catalog is exactly the schema's again, and the keys hold."""
    before = schema_catalog(db)
    assert any(name == "trackplays_natural_key" for _, name, *_ in before["constraints"])
    result = run_load(db, [udacity], LoadOptions(workers=1))
    assert result.rows_added["trackplays"] > 6000
    assert schema_catalog(db) == before
    assert rows(db, "SELECT count(*) FROM deferred_indexes") == [(0,)]
    copy = "INSERT INTO trackplays SELECT {} FROM trackplays ORDER BY trackplay_id LIMIT 1"
    columns = [
        c
        for (c,) in rows(
            db,
            "SELECT attname::text FROM pg_attribute WHERE attrelid = 'trackplays'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        )
    ]
    new_id = ", ".join("nextval('trackplays_trackplay_id_seq')" if c == "trackplay_id" else c for c in columns)
    new_item = ", ".join("item_in_session + 100000" if c == "item_in_session" else c for c in columns)
    for select, key in ((new_id, "trackplays_natural_key"), (new_item, "trackplays_pkey")):
        with db.connect() as conn, pytest.raises(errors.UniqueViolation, match=key):
            conn.execute(copy.format(select))  # type: ignore[arg-type]
