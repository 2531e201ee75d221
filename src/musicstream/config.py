"""Settings, resolved in one place: a command-line option, then the environment, then a settings file
(``musicstream.toml``), then the default (the embedded server in the platform's data folder).

The settings files are looked for in the user's config folder and in the project folder (the working
directory); the project's file wins key by key. Top-level keys are ``database_url`` and ``home`` (a relative
``home`` is relative to the file's folder); a table named after a command holds defaults for that command's
options, e.g. ``[load]`` with ``workers = 2`` (checked by the command line against each command's options).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from musicstream.errors import ConfigError

DEFAULT_DBNAME = "musicstreamdb"
ENV_DATABASE_URL = "MUSICSTREAM_DATABASE_URL"
ENV_HOME = "MUSICSTREAM_HOME"
CONFIG_NAME = "musicstream.toml"
TOP_LEVEL_KEYS = ("database_url", "home")


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


def config_paths() -> list[Path]:
    """Where settings files are looked for, the lower precedence first: the user's config folder
    (~/.config/musicstream on Linux), then the project folder (the working directory)."""
    user = Path(platformdirs.user_config_dir("musicstream", appauthor=False)) / CONFIG_NAME
    project = Path.cwd() / CONFIG_NAME
    return [user] if user.resolve() == project.resolve() else [user, project]


@dataclass(frozen=True)
class FileSettings:
    """What the settings files say: ``values`` by key (``database_url``, ``home``, or a command's table),
    ``origin`` the file each key came from, ``files`` the files read."""

    values: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, Path] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def commands(self) -> dict[str, Any]:
        """The command tables, as click's ``default_map``."""
        return {k: v for k, v in self.values.items() if k not in TOP_LEVEL_KEYS}


def read_settings_files(paths: list[Path] | None = None) -> FileSettings:
    """Read the settings files that exist among ``paths`` (default: ``config_paths()``), a later file's keys
    replacing an earlier's (a command's table key by key)."""
    found = FileSettings()
    for path in config_paths() if paths is None else paths:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the settings file {path}: {exc}. Fix or remove it") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"the settings file {path} is not valid TOML: {exc}. Fix or remove it") from None
        found.files.append(path)
        for key, value in data.items():
            if key in TOP_LEVEL_KEYS:
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"{path}: {key} must be a non-empty string, not {value!r}")
                if key == "home":
                    value = str(path.parent / Path(value).expanduser())
                found.values[key] = value
                found.origin[key] = path
            elif isinstance(value, dict):
                found.values.setdefault(key, {}).update(value)
                found.origin[key] = path
                for option in value:
                    found.origin[f"{key}.{option.replace('-', '_')}"] = path
            else:
                raise ConfigError(
                    f"{path}: unknown setting {key!r}: the top-level settings are {', '.join(TOP_LEVEL_KEYS)}; "
                    "a command's defaults go in a table named after it, e.g. [load]"
                )
    return found


@dataclass(frozen=True)
class Settings:
    """Resolved configuration.

    ``database_url`` is None when the embedded server is to be used.
    """

    database_url: str | None = None
    home: Path = field(default_factory=default_home)
    # where each of the two came from: "option", "environment (NAME)", "file PATH" or "default"
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def resolve(
        cls, database_url: str | None = None, home: Path | None = None, files: FileSettings | None = None
    ) -> Settings:
        """Option, then environment, then settings file, then default, for each of the two."""
        files = files or FileSettings()
        sources: dict[str, str] = {}
        url: str | None
        for name, value, env in (("database_url", database_url, ENV_DATABASE_URL), ("home", home, ENV_HOME)):
            if value is not None:
                sources[name] = "option"
            elif os.environ.get(env) is not None and (name == "database_url" or os.environ.get(env)):
                sources[name] = f"environment ({env})"
            elif name in files.values:
                sources[name] = f"file {files.origin[name]}"
            else:
                sources[name] = "default"
        if database_url is not None:
            url = database_url
        elif sources["database_url"].startswith("environment"):
            url = os.environ[ENV_DATABASE_URL]
        else:
            url = files.values.get("database_url")
        if home is None and sources["home"].startswith("file"):
            home = Path(files.values["home"])
        if url is not None:
            scheme, sep, _ = url.partition("://")
            if sep and scheme.lower() not in ("postgresql", "postgres"):
                raise ConfigError(
                    f"unsupported database URL scheme {scheme!r}{_given(sources)}: musicstream works with PostgreSQL. "
                    "Example: postgresql://user@host:5432/musicstreamdb"
                )
            try:
                conninfo_to_dict(url)
            except Exception as exc:
                raise ConfigError(
                    f"the database URL{_given(sources)} is not a valid libpq URL or connection string: "
                    f"{mask_error(exc)}. "
                    "Example: postgresql://user@host:5432/musicstreamdb"
                ) from None
        return cls(database_url=url, home=home if home is not None else default_home(), sources=sources)

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"


def _given(sources: dict[str, str]) -> str:
    """Where a bad database URL came from, when not from the command line."""
    source = sources.get("database_url", "option")
    return "" if source == "option" else f" (from the {source})"


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
