"""Connections to the configured database: a libpq URL, or the embedded PostgreSQL server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from musicstream.config import (
    DEFAULT_DBNAME,
    Settings,
    dbname_of,
    mask,
    mask_error,
    with_dbname,
    with_default_dbname,
)
from musicstream.db.embedded import embedded_server
from musicstream.errors import DatabaseError
from musicstream.faults import point

# A database being made is named after its target, with this and the process id (``musicstreamdb__making_4242``)
_MAKING = "__making_"
# Those an interrupted first use left: nobody is connected to them (one being made has its maker connected).
_STRAYS = """SELECT datname FROM pg_database d WHERE datname LIKE %s
             AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.datname = d.datname)"""


def _missing_database(exc: psycopg.OperationalError) -> bool:
    return "does not exist" in str(exc) and "database" in str(exc)


def _connect_failure(exc: psycopg.OperationalError, conninfo: str) -> str:
    """One line saying why a connection failed and what to do (libpq's text has newlines and tabs)."""
    # libpq's text: what failed, then tab-indented hints ("Is the server running on that host...?") that the
    # advice below replaces
    lines = [line for line in mask_error(exc).splitlines() if line.strip() and not line.startswith("\t")]
    text = " ".join(" ".join(lines).split()).rstrip(".?")
    where = mask(conninfo)
    lower = text.lower()
    if _missing_database(exc):
        return (
            f"cannot connect to {where}: {text}. Create it, with musicstream's tables, by running "
            "`musicstream init` with the same --database-url"
        )
    if "password" in lower and ("authentication failed" in lower or "no password" in lower):
        return (
            f"cannot connect to {where}: {text}. Check the user and password in --database-url / "
            "MUSICSTREAM_DATABASE_URL, PGPASSWORD or ~/.pgpass"
        )
    if any(
        sign in lower
        for sign in ("connection refused", "no such file or directory", "could not translate host", "timeout expired")
    ):
        return (
            f"cannot connect to {where}: {text}. Is the PostgreSQL server running, and are the host and port in "
            "--database-url / MUSICSTREAM_DATABASE_URL right?"
        )
    return f"cannot connect to {where}: {text}. Check --database-url / MUSICSTREAM_DATABASE_URL"


class Database:
    """The database musicstream works on, and how to reach it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conninfo: str | None = None
        self._initialising = False

    @property
    def conninfo(self) -> str:
        """A libpq connection string for the target database (may hold a password: never print it)."""
        if self._conninfo is None:
            if self.settings.database_url is None:
                server = embedded_server(self.settings.pgdata)
                self._conninfo = str(server.get_uri(DEFAULT_DBNAME))
            else:
                self._conninfo = with_default_dbname(self.settings.database_url)
        return self._conninfo

    @property
    def dbname(self) -> str:
        return dbname_of(self.conninfo)

    def describe(self) -> str:
        """Where the database is, safe to print."""
        where = mask(self.conninfo)
        if self.settings.embedded:
            return f"embedded PostgreSQL in {self.settings.pgdata} ({where})"
        return where

    def connect(self, *, autocommit: bool = False, dbname: str | None = None) -> psycopg.Connection[Any]:
        conninfo = self.conninfo if dbname is None else with_dbname(self.conninfo, dbname)
        extra: dict[str, Any] = {}
        if "connect_timeout" not in conninfo_to_dict(conninfo) and not os.environ.get("PGCONNECT_TIMEOUT"):
            extra["connect_timeout"] = os.environ.get("MUSICSTREAM_CONNECT_TIMEOUT", "10")
        try:
            return psycopg.connect(conninfo, autocommit=autocommit, application_name="musicstream", **extra)
        except psycopg.OperationalError as exc:
            if self.settings.embedded and dbname is None and _missing_database(exc) and not self._initialising:
                # the embedded default initialises itself on first use (its database is musicstream's own)
                from musicstream.db.schema import initialize

                self._initialising = True
                try:
                    initialize(self)
                finally:
                    self._initialising = False
                return self.connect(autocommit=autocommit)
            raise DatabaseError(_connect_failure(exc, conninfo)) from None

    def exists(self) -> bool:
        """Whether the target database exists (asked of the ``postgres`` database, else by connecting)."""
        try:
            with self.connect(dbname="postgres") as conn:
                row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)).fetchone()
                return row is not None
        except DatabaseError:
            with self.connect():
                return True

    def create_database(self, build: Callable[[psycopg.Connection[Any]], object] | None = None) -> bool:
        """Create the target database when it is missing; True when it was created. With ``build``, the database
        is made under a name of its own, built by ``build`` (the schema), and renamed into place when complete:
        interrupted at any moment, there is either no database or a whole one."""
        if self.exists():
            return False
        if build is None:
            return self._create(self.dbname)
        making = f"{self.dbname[:40]}{_MAKING}{os.getpid()}"
        with self.connect(autocommit=True, dbname="postgres") as admin:
            for (stray,) in admin.execute(_STRAYS, (f"{self.dbname[:40]}{_MAKING}%",)).fetchall():
                with contextlib.suppress(psycopg.Error):  # an interrupted first use's
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(stray)))
        self._create(making)
        renamed = False
        try:
            with self.connect(autocommit=True, dbname=making) as conn:
                point("init:schema")
                build(conn)
            with self.connect(autocommit=True, dbname="postgres") as admin:
                try:
                    admin.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(making), sql.Identifier(self.dbname)
                        )
                    )
                    renamed = True
                except psycopg.errors.DuplicateDatabase:  # another process made it meanwhile
                    pass
        finally:
            if not renamed:
                with contextlib.suppress(Exception), self.connect(autocommit=True, dbname="postgres") as admin:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(making)))
        return renamed

    def _create(self, name: str) -> bool:
        with self.connect(autocommit=True, dbname="postgres") as conn:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                return False
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"cannot create database {name!r}: {mask_error(exc).strip()}. "
                    "Create it yourself or use a role with CREATEDB"
                ) from None
        return True

    def psql_command(self) -> tuple[list[str], dict[str, str]]:
        """The psql command line and environment for the database; the password goes in the environment."""
        params = conninfo_to_dict(self.conninfo)
        env = dict(os.environ)
        password = params.pop("password", None)
        if password:
            env["PGPASSWORD"] = str(password)
        psql = "psql"
        if self.settings.embedded:
            server = embedded_server(self.settings.pgdata)
            psql = str(Path(server.bin_path) / "psql")
        return [psql, make_conninfo("", **params)], env
