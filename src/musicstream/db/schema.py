"""The schema: versioned migrations, and the functions applied again whenever they change.

Migrations (``sql/schema/NNNN_*.sql``) hold tables, indexes, views and backfills of stored columns; each is applied
once, in order, and recorded in ``schema_migrations``. Functions live in repeatable files (``sql/functions/`` and
``sql/rollups/functions/``), one current body each: ``migrate`` applies a file again when its text changed since
the database last applied it (``schema_functions`` keeps each file's SHA-256). A migration that adds or changes a
rollup table says ``-- backfill: rollups`` on a line of its own: when the database holds plays, the caller's
``backfill`` (``load.rollups.rebuild``) fills the rollups from them, with the current functions, in the same
transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import cache
from importlib import resources
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

FUNCTIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_functions (
    file       TEXT PRIMARY KEY,
    sha256     TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

# The folders of repeatable function files, applied in this order (a folder's files by name).
FUNCTION_FOLDERS = ("functions", "rollups/functions")
BACKFILL_ROLLUPS = "-- backfill: rollups"

# Serialises concurrent `init`s on the same database (any constant works; this one spells "msschema").
_SCHEMA_LOCK = 0x6D73736368656D61

STAR_TABLES = ("trackplays", "users", "tracks", "artists", "timetb")
BOOK_TABLES = (
    "etl_runs",
    "loaded_files",
    "run_files",
    "rejects",
    "name_repairs_by_file",
    "deferred_indexes",
    "watcher",
)
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


@cache
def function_files() -> dict[str, str]:
    """The repeatable function files, ``{"functions/bitmaps": sha256 of its text}``, in the order they apply."""
    found: dict[str, str] = {}
    for folder in FUNCTION_FOLDERS:
        entries = resources.files("musicstream").joinpath("sql", *folder.split("/")).iterdir()
        for entry in sorted((e for e in entries if e.name.endswith(".sql")), key=lambda e: e.name):
            name = f"{folder}/{entry.name.removesuffix('.sql')}"
            found[name] = hashlib.sha256(read_sql(name).encode()).hexdigest()
    return found


def _applied_functions(conn: psycopg.Connection[Any]) -> dict[str, str]:
    exists = conn.execute("SELECT to_regclass('public.schema_functions') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    return {str(f): str(h) for f, h in conn.execute("SELECT file, sha256 FROM schema_functions")}


def _apply_functions(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply the function files whose text the database has not applied; the names applied."""
    conn.execute(FUNCTIONS_DDL)
    have = _applied_functions(conn)
    changed = [name for name, digest in function_files().items() if have.get(name) != digest]
    for name in changed:
        conn.execute(read_sql(name))  # our own trusted .sql file
        conn.execute(
            "INSERT INTO schema_functions (file, sha256) VALUES (%s, %s) "
            "ON CONFLICT (file) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()",
            (name, function_files()[name]),
        )
    conn.execute("DELETE FROM schema_functions WHERE file <> ALL(%s)", (list(function_files()),))
    return changed


def migrate(
    conn: psycopg.Connection[Any], backfill: Callable[[psycopg.Connection[Any]], None] | None = None
) -> list[int]:
    """Apply the migrations the database lacks, then the function files that changed, then the backfill a
    migration asked for, in one transaction; returns the versions applied. ``backfill`` rebuilds the rollups
    (``load.rollups.rebuild``): without it, a migration that asks for one on a database holding plays is an
    error."""
    applied: list[int] = []
    rebuild = False
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
            text = read_sql(name)
            conn.execute(text)  # our own trusted .sql file
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (version, name.split("/")[-1]),
            )
            applied.append(version)
            rebuild = rebuild or any(line.startswith(BACKFILL_ROLLUPS) for line in text.splitlines())
        _apply_functions(conn)
        if rebuild and conn.execute("SELECT EXISTS (SELECT FROM trackplays)").fetchone() == (True,):
            if backfill is None:
                raise SchemaError("this schema upgrade rebuilds the report's rollups: run `musicstream init`")
            backfill(conn)
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
    have = _applied_functions(conn)
    stale = [name for name, digest in function_files().items() if have.get(name) != digest]
    if stale:
        raise SchemaError(
            f"the database's functions ({', '.join(f'sql/{n}.sql' for n in stale[:3])}"
            f"{', ...' if len(stale) > 3 else ''}) are not this musicstream's; run `musicstream init` to upgrade them"
        )
    return version


ALL_TABLES = (
    *STAR_TABLES,
    "play_names",
    *ROLLUP_TABLES,
    "deferred_indexes",
    "watcher",
    "rejects",
    "name_repairs_by_file",
    "run_files",
    "loaded_files",
    "etl_runs",
    "schema_functions",
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


def initialize(
    db: Database, *, reset: bool = False, backfill: Callable[[psycopg.Connection[Any]], None] | None = None
) -> dict[str, Any]:
    """Create the database when missing (with its schema, renamed into place when complete) and bring its schema to
    the latest version (idempotent). ``backfill``: as for ``migrate``."""
    applied: list[int] = []
    created = db.create_database(build=lambda conn: applied.extend(migrate(conn)))
    with db.connect(autocommit=True) as conn:
        if reset and not created:
            drop_all(conn)
        applied += migrate(conn, backfill)
        version = current_version(conn)
    return {
        "database": db.dbname,
        "created_database": created,
        "reset": reset,
        "applied": applied,
        "schema_version": version,
    }
