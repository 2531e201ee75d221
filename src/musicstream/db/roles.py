"""Least-privilege roles (``musicstream roles``): a read-only analyst role and a loader that needs no superuser.

Both are group roles (NOLOGIN); people and services get LOGIN roles that are members, e.g.
``CREATE ROLE alice LOGIN PASSWORD '…' IN ROLE musicstream_analyst``.

- The **loader** owns musicstream's tables, so a load can do everything it does (bulk index rebuilds, ANALYZE)
  without being a superuser; it may use temporary tables for staging and create indexes in ``public``.
- The **analyst** may read the star schema (with ``play_names``, which says what each play named), the run audit
  ``etl_runs``, the ``sparkify`` views and ``report_plays()``: what the report and curated queries need. It cannot
  write anything, and cannot read the manifest or the raw text of rejects.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from musicstream.db.schema import BOOK_TABLES, ROLLUP_TABLES, STAR_TABLES, require_schema

ANALYST = "musicstream_analyst"
LOADER = "musicstream_loader"
ANALYST_TABLES = (*STAR_TABLES, "play_names", *ROLLUP_TABLES, "etl_runs", "schema_migrations", "schema_functions")
SPARKIFY_VIEWS = ("songplays", "users", "songs", "artists", "time")


def _ensure_role(conn: psycopg.Connection[Any], name: str) -> bool:
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
        return False
    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    return True


def create_roles(conn: psycopg.Connection[Any], analyst: str = ANALYST, loader: str = LOADER) -> dict[str, Any]:
    """Create (or update) both roles and their privileges on the current database; idempotent."""
    require_schema(conn)
    with conn.transaction():
        created = [name for name in (analyst, loader) if _ensure_role(conn, name)]
        a, lo = sql.Identifier(analyst), sql.Identifier(loader)
        database = sql.Identifier(conn.info.dbname)
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}, {}").format(database, a, lo))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public, sparkify TO {}, {}").format(a, lo))
        # index rebuilds of a bulk load create indexes in public (its tables are the loader's own)
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(lo))
        for table in (
            *STAR_TABLES,
            "play_names",
            *ROLLUP_TABLES,
            *BOOK_TABLES,
            "schema_migrations",
            "schema_functions",
        ):
            conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), lo))
        for table in ANALYST_TABLES:
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), a))
        for view in SPARKIFY_VIEWS:
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}, {}").format(sql.Identifier("sparkify", view), a, lo))
        for function in ("report_plays", "report_sessions", "report_hours"):
            conn.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION {}(date, date, text) TO {}, {}").format(
                    sql.Identifier(function), a, lo
                )
            )
    return {"analyst": analyst, "loader": loader, "created": created, "database": conn.info.dbname}
