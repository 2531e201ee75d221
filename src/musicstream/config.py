"""Where the database is, resolved in one place: CLI option, then environment, then the embedded default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from musicstream.errors import ConfigError

DEFAULT_DBNAME = "musicstreamdb"
ENV_DATABASE_URL = "MUSICSTREAM_DATABASE_URL"
ENV_HOME = "MUSICSTREAM_HOME"


def platform_home() -> Path:
    """This platform's folder for an application's data (~/.local/share/musicstream on Linux,
    ~/Library/Application Support/musicstream on macOS, %LOCALAPPDATA%\\musicstream on Windows)."""
    return Path(platformdirs.user_data_dir("musicstream", appauthor=False))


def default_home() -> Path:
    """The folder for musicstream's own state (the embedded server's data directory)."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    return platform_home()


@dataclass(frozen=True)
class Settings:
    """Resolved configuration.

    ``database_url`` is None when the embedded server is to be used.
    """

    database_url: str | None = None
    home: Path = field(default_factory=default_home)

    @classmethod
    def resolve(cls, database_url: str | None = None, home: Path | None = None) -> Settings:
        url = database_url if database_url is not None else os.environ.get(ENV_DATABASE_URL)
        if url is not None:
            scheme, sep, _ = url.partition("://")
            if sep and scheme.lower() not in ("postgresql", "postgres"):
                raise ConfigError(
                    f"unsupported database URL scheme {scheme!r}: musicstream works with PostgreSQL. "
                    "Example: postgresql://user@host:5432/musicstreamdb"
                )
            try:
                conninfo_to_dict(url)
            except Exception as exc:
                raise ConfigError(
                    f"the database URL is not a valid libpq URL or connection string: {mask_error(exc)}. "
                    "Example: postgresql://user@host:5432/musicstreamdb"
                ) from None
        return cls(database_url=url, home=home if home is not None else default_home())

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"


def with_default_dbname(conninfo: str) -> str:
    """The conninfo, naming ``musicstreamdb`` when neither it nor PGDATABASE names a database."""
    params = conninfo_to_dict(conninfo)
    if not params.get("dbname") and not os.environ.get("PGDATABASE"):
        return make_conninfo(conninfo, dbname=DEFAULT_DBNAME)
    return conninfo


def with_dbname(conninfo: str, dbname: str) -> str:
    return make_conninfo(conninfo, dbname=dbname)


def dbname_of(conninfo: str) -> str:
    params = conninfo_to_dict(conninfo)
    return str(params.get("dbname") or os.environ.get("PGDATABASE") or DEFAULT_DBNAME)


def mask(conninfo: str) -> str:
    """A printable form of a conninfo: the password replaced by ``***``."""
    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        return "<unparsable connection string>"
    shown = {k: ("***" if k == "password" else v) for k, v in params.items() if v is not None}
    host = shown.get("host", os.environ.get("PGHOST", "localhost"))
    port = shown.get("port", os.environ.get("PGPORT", "5432"))
    user = shown.get("user", os.environ.get("PGUSER", ""))
    auth = f"{user}{':***' if 'password' in shown else ''}@" if user else ""
    dbname = shown.get("dbname", os.environ.get("PGDATABASE", DEFAULT_DBNAME))
    extra = sorted(k for k in shown if k not in {"host", "port", "user", "password", "dbname"})
    query = "&".join(f"{k}={shown[k]}" for k in extra)
    if str(host).startswith("/"):
        return f"postgresql://{auth}/{dbname}?host={host}" + (f"&{query}" if query else "")
    return f"postgresql://{auth}{host}:{port}/{dbname}" + (f"?{query}" if query else "")


def mask_error(exc: BaseException) -> str:
    """An exception's text with any ``password=...`` or URL password removed."""
    import re

    text = str(exc)
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.IGNORECASE)
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return text
