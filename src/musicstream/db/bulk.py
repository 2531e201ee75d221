"""Bulk loading into empty tables: build secondary indexes and check foreign keys once at the end, not row by row.

Maintaining a table's non-unique indexes row by row costs several times the insert itself (measured: 836,026
plays into an empty fact table, 1.2 s without its secondary indexes, 14 s with them; building them afterwards
takes about 1 s). So before a run loads into an empty table, it drops those indexes in a short transaction of its
own (readers of the empty table wait only for that instant) and records their definitions in
``deferred_indexes``; the run builds them again inside its own transaction (``CREATE INDEX`` does not block
readers) and clears the record as it commits. A run that dies leaves the record, and the next run builds them.
Tables that hold rows keep their indexes.

The keys (primary and unique) of the tables named in ``keys`` go the same way: those whose keys the merge does
not rely on while they are empty (the fact table, timetb, the rollups and the play names: their first rows
are made distinct by the merge's own SQL, and the keys, added at the end, check it; a unique index that is not a
constraint is simply built again). Inserting 837,279 plays under their two keys took 5.8 s,
without them 1.8 s, and building both afterwards 0.7 s. A key comes back in two steps: its unique index is built
with the other indexes (no lock that blocks readers), and attached as the constraint (``ADD CONSTRAINT … USING
INDEX``, an instant, but its lock blocks readers of the table until the commit) as the run's last statement before
the commit. Every other table keeps its keys: the merge's upserts and lookups need them.

Foreign keys go the same way, for the same reason: PostgreSQL checks them row by row (measured: 839,068 plays
inserted with their three keys in 33.7 s, without them in 4.7 s), while adding a key afterwards checks every row
at once (1.1 s). The run adds them back inside its own transaction, so nothing it commits escapes them; a failed
run adds them back at once (its tables are empty again), a killed one leaves the record for the next run.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

import psycopg
from psycopg import sql

_SECONDARY = """
SELECT i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = %s::regclass AND NOT x.indisunique AND NOT x.indisprimary
ORDER BY i.relname
"""


_UNIQUE_INDEXES = """
SELECT i.relname, pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = %s::regclass AND x.indisunique
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
ORDER BY i.relname
"""


_KEYS = """
SELECT c.conname, quote_ident(c.conname), c.contype = 'p', pg_get_indexdef(c.conindid)
FROM pg_constraint c
WHERE c.conrelid = %s::regclass AND c.contype IN ('p', 'u')
ORDER BY c.conname
"""

_FOREIGN_KEYS = """
SELECT conname, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid = %s::regclass AND contype = 'f'
ORDER BY conname
"""


def defer_indexes(conn: psycopg.Connection[Any], tables: list[str], keys: Sequence[str] = ()) -> None:
    """Drop the secondary indexes and foreign keys of those ``tables`` that are empty, and the primary and unique
    keys of those also in ``keys``, each drop committed with its record (``deferred_indexes`` holds them all: an
    index's or a key's name, and the statement that makes it).

    ``conn`` must be in autocommit mode: every table's drops are their own short transaction.
    """
    for table in tables:
        with conn.transaction():
            ident = sql.Identifier(table)
            row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(ident)).fetchone()
            if row is None or row[0]:
                continue
            for name, definition in conn.execute(_SECONDARY, (table,)).fetchall():
                _defer_index(conn, name, definition)
            for name, definition in conn.execute(_FOREIGN_KEYS, (table,)).fetchall():
                add = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    ident,
                    sql.Identifier(name),
                    sql.SQL(definition),  # PostgreSQL's own text of the key
                )
                conn.execute(
                    "INSERT INTO deferred_indexes (index_name, definition) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (name, add.as_string(conn)),
                )
                conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(ident, sql.Identifier(name)))
            if table in keys:
                for name, quoted, primary, index_definition in conn.execute(_KEYS, (table,)).fetchall():
                    _defer_key(conn, ident, name, quoted, primary, index_definition)
                for name, definition in conn.execute(_UNIQUE_INDEXES, (table,)).fetchall():
                    _defer_index(conn, name, definition)


def _defer_index(conn: psycopg.Connection[Any], name: str, definition: str) -> None:
    """Record an index (its name and PostgreSQL's own definition of it), then drop it."""
    conn.execute(
        "INSERT INTO deferred_indexes (index_name, definition) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (name, definition),
    )
    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))


def key_index_name(key: str) -> str:
    """The name of the unique index a deferred key is built as, before it is attached as the key."""
    return f"{key[:57]}_build"


def _defer_key(
    conn: psycopg.Connection[Any], table: sql.Identifier, name: str, quoted: str, primary: bool, index_definition: str
) -> None:
    """Record a key as two statements, its unique index under a name of its own (built with the other indexes)
    and the constraint that takes that index over (attached last), then drop it."""
    build = key_index_name(name)
    named = f"INDEX {quoted} ON "  # as pg_get_indexdef writes the name
    if named not in index_definition:
        raise AssertionError(f"unexpected definition of the index of key {name}: {index_definition}")
    build_definition = index_definition.replace(named, f"INDEX {sql.Identifier(build).as_string(conn)} ON ", 1)
    attach = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}").format(
        table, sql.Identifier(name), sql.SQL("PRIMARY KEY" if primary else "UNIQUE"), sql.Identifier(build)
    )
    conn.execute(
        "INSERT INTO deferred_indexes (index_name, definition) VALUES (%s, %s), (%s, %s) ON CONFLICT DO NOTHING",
        (build, build_definition, name, attach.as_string(conn)),
    )
    conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table, sql.Identifier(name)))


_EXISTS = """
SELECT to_regclass(%(name)s) IS NOT NULL
    OR EXISTS (SELECT 1 FROM pg_constraint WHERE conname = %(name)s AND connamespace = 'public'::regnamespace)
"""


# The table a recorded statement is about, as PostgreSQL writes it (pg_get_indexdef: "… ON [ONLY] schema.table
# USING …") or as defer_indexes writes it ("ALTER TABLE "table" ADD CONSTRAINT …").
_TABLE = re.compile(
    r'^ALTER TABLE "?([^" ]+)"? '
    r'|^CREATE (?:UNIQUE )?INDEX \S+ ON (?:ONLY )?(?:[^ ."]+\.)?"?([^" ]+)"? USING '
)


def table_of(definition: str) -> str:
    """The table whose index or key a recorded statement makes."""
    match = _TABLE.match(definition)
    if match is None:
        raise AssertionError(f"unexpected definition of a deferred index or key: {definition}")
    return match[1] or match[2]


def rebuild_indexes(conn: psycopg.Connection[Any], *, attach_keys: bool = True, later: Collection[str] = ()) -> int:
    """Build every recorded index (a deferred key's unique index too), then add every recorded foreign key (each
    validated over its whole table), then, with ``attach_keys``, attach the keys to their indexes; clear the record
    of what was done, and return how many. Runs inside the load's transaction; without ``attach_keys`` the keys
    wait for ``attach_deferred_keys``, the run's last statement before its commit. What belongs to the tables in
    ``later`` (tables the run writes after this call) waits too."""
    rows = conn.execute(
        """SELECT index_name, definition FROM deferred_indexes
           ORDER BY definition LIKE 'ALTER%%', definition LIKE '%% USING INDEX %%', index_name"""
    ).fetchall()
    done = [
        (name, definition)
        for name, definition in rows
        if (attach_keys or not _is_attach(definition)) and not (later and table_of(definition) in later)
    ]
    for name, definition in done:
        exists = conn.execute(_EXISTS, {"name": name}).fetchone()
        if not (exists and exists[0]):
            conn.execute(definition)  # a definition PostgreSQL itself wrote (pg_get_indexdef, pg_get_constraintdef)
    conn.execute("DELETE FROM deferred_indexes WHERE index_name = ANY(%s)", ([name for name, _ in done],))
    return len(done)


def deferred_definition(conn: psycopg.Connection[Any], name: str) -> str | None:
    """The statement that builds the recorded index ``name``, when it is recorded and not built yet; else None."""
    row = conn.execute(
        "SELECT definition FROM deferred_indexes WHERE index_name = %(name)s AND to_regclass(%(name)s) IS NULL",
        {"name": name},
    ).fetchone()
    return None if row is None else str(row[0])


def attach_deferred_keys(conn: psycopg.Connection[Any]) -> int:
    """Attach the deferred keys to the unique indexes ``rebuild_indexes`` built; returns how many."""
    return rebuild_indexes(conn)


def _is_attach(definition: str) -> bool:
    return definition.startswith("ALTER TABLE") and " USING INDEX " in definition


LOAD_LOCK = 0x6D736C6F6164  # "msload": one load at a time per database (a session-level advisory lock)
WATCH_LOCK = 0x6D737761746368  # "mswatch": one watcher per database, held by the watcher for its whole life


def lock_holders(conn: psycopg.Connection[Any], key: int) -> list[int]:
    """The server sessions (backend pids) holding the session-level advisory lock ``key``."""
    found = conn.execute(
        """SELECT l.pid FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND (l.classid::bigint << 32 | l.objid::bigint) = %s""",
        (key,),
    ).fetchall()
    return [int(pid) for (pid,) in found]


def settle_interrupted(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """When no load runs (its lock is free), give back what a load that died (kill -9, a lost server) left: build
    the keys and indexes it had deferred, and mark its run, still ``running``, as ``abandoned``. Returns how many of
    each; (0, 0) when there was nothing to do or a load runs. Called before a command reads the tables."""
    try:
        with conn.transaction():  # a savepoint when the caller's transaction is open
            row = conn.execute(
                "SELECT EXISTS (SELECT FROM deferred_indexes) OR EXISTS (SELECT FROM etl_runs WHERE status = 'running')"
            ).fetchone()
        if not row or not row[0]:
            return 0, 0
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOAD_LOCK,)).fetchone()
        if not got or not got[0]:
            return 0, 0  # a load runs: what is deferred is its own
        try:
            with conn.transaction():
                built = rebuild_indexes(conn)
                runs = conn.execute(MARK_ABANDONED).rowcount
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOAD_LOCK,))
    except psycopg.errors.InsufficientPrivilege:  # a read-only role: the next load, or the loader, settles it
        return 0, 0
    return built, max(runs, 0)


# A run still recorded as running while nobody holds the load lock died without recording its end.
MARK_ABANDONED = "UPDATE etl_runs SET status = 'abandoned', finished_at = now() WHERE status = 'running'"
