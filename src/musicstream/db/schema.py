"""Schema migrations: versioned .sql files applied in order, each recorded in ``schema_migrations``."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from musicstream.db.bulk import settle_interrupted
from musicstream.db.connection import Database
from musicstream.db.sqlfiles import read_sql, schema_files
from musicstream.errors import SchemaError

log = logging.getLogger("musicstream.db.schema")

MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

# Serialises concurrent `init`s on the same database (any constant works; this one spells "msschema").
_SCHEMA_LOCK = 0x6D73736368656D61

STAR_TABLES = ("trackplays", "users", "tracks", "artists", "timetb")
BOOK_TABLES = ("etl_runs", "loaded_files", "run_files", "rejects", "name_repairs_by_file", "deferred_indexes")
ROLLUP_TABLES = (
    "rollup_sessions",
    "rollup_hours",
    "rollup_day_tops",
    "rollup_day_floors",
    "rollup_day_sets",
    "rollup_session_days",
    "rollup_user_days",
    "rollup_session_lengths",
    "rollup_spanning_sessions",
)


def latest_version() -> int:
    return schema_files()[-1][0]


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version of the database, 0 when musicstream's schema is not there."""
    exists = conn.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Apply the migrations the database lacks, in one transaction; returns the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        conn.execute(MIGRATIONS_DDL)
        have = current_version(conn)
        if have > latest_version():
            raise SchemaError(
                f"the database has schema version {have}, newer than this musicstream knows "
                f"({latest_version()}); upgrade musicstream"
            )
        for version, name in schema_files():
            if version <= have:
                continue
            conn.execute(read_sql(name))  # our own trusted .sql file
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (version, name.split("/")[-1]),
            )
            applied.append(version)
    return applied


def require_schema(conn: psycopg.Connection[Any]) -> int:
    """The schema version, or a SchemaError saying to run ``musicstream init``. A load that died (kill -9, a lost
    server) is settled first: what it deferred is built again before the tables are read, and said."""
    version = current_version(conn)
    if version == latest_version():
        settle(conn)
    if version == 0:
        raise SchemaError("the database has no musicstream schema; run `musicstream init` first")
    if version < latest_version():
        raise SchemaError(
            f"the database has schema version {version}, this musicstream needs {latest_version()}; "
            "run `musicstream init` to upgrade it"
        )
    if version > latest_version():
        raise SchemaError(
            f"the database has schema version {version}, newer than this musicstream knows "
            f"({latest_version()}); upgrade musicstream"
        )
    return version


ALL_TABLES = (
    *STAR_TABLES,
    "play_names",
    *ROLLUP_TABLES,
    "deferred_indexes",
    "rejects",
    "name_repairs_by_file",
    "run_files",
    "loaded_files",
    "etl_runs",
    "schema_migrations",
)


def settle(conn: psycopg.Connection[Any]) -> None:
    """``settle_interrupted``, said on stderr when it did something."""
    built, runs = settle_interrupted(conn)
    done = [f"rebuilt the {built} keys and indexes it had deferred" if built else ""]
    done.append(f"recorded {runs} run{'s' if runs > 1 else ''} it left as running as abandoned" if runs else "")
    if built or runs:
        log.warning("note: a load stopped without finishing; %s", " and ".join(d for d in done if d))


def drop_statements() -> list[str]:
    """DROP statements for musicstream's views and tables (used by ``init --reset`` and create_tables.py)."""
    return ["DROP SCHEMA IF EXISTS sparkify CASCADE"] + [f"DROP TABLE IF EXISTS {t} CASCADE" for t in ALL_TABLES]


def table_rows(db: Database) -> list[tuple[str, int]]:
    """musicstream's tables that exist in the database, with their row counts (what ``init --reset`` drops)."""
    if not db.exists():
        return []
    with db.connect(autocommit=True) as conn:
        found = [
            str(name)
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
                "AND c.relkind = 'r' AND c.relname = ANY(%s)",
                (list(ALL_TABLES),),
            )
        ]
        out = []
        for name in (t for t in ALL_TABLES if t in found):
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
            out.append((name, int(row[0]) if row else 0))
    return out


def drop_all(conn: psycopg.Connection[Any]) -> None:
    """Drop musicstream's tables and views."""
    with conn.transaction():
        for statement in drop_statements():
            conn.execute(statement)  # fixed names, no input


def initialize(db: Database, *, reset: bool = False) -> dict[str, Any]:
    """Create the database when missing (with its schema, renamed into place when complete) and bring its schema to
    the latest version (idempotent)."""
    applied: list[int] = []
    created = db.create_database(build=lambda conn: applied.extend(migrate(conn)))
    with db.connect(autocommit=True) as conn:
        if reset and not created:
            drop_all(conn)
        applied += migrate(conn)
        version = current_version(conn)
    return {
        "database": db.dbname,
        "created_database": created,
        "reset": reset,
        "applied": applied,
        "schema_version": version,
    }
