"""Continuous ingestion (``musicstream watch``): list the watched folders, wait until new and changed files have
settled, and load them in micro-batches, each an ordinary run (``api.run_load``: one transaction, the manifest,
the rejects, the same rules).

Finding files: each poll lists the folders as a load does (``extract/files.py`` ``walk_inputs``: the same input
names, hidden folders skipped) and compares each file's size and modification time with what the watcher knows
loaded (the manifest's rows under the watched paths, read once at the start, then the batches it committed): a
poll that finds nothing new costs the listing, and asks nothing of the database. OS file events (``watchfiles``:
inotify, FSEvents, ...) wake the watcher early where they work; the listing alone decides, so a lost event only
delays a file to the next poll. ``s3://`` prefixes are listed the same way, through fsspec.

The settle rule: a file is loaded once two listings at least ``settle`` seconds apart saw the same size and
modification time; names that are not inputs (``*.tmp``, ``*._COPYING_``, dot files, anything not ``.json`` or
``.json.gz``) are never listed; a ``.json.gz`` file is held back while its gzip stream is incomplete (for
``gzip_grace`` seconds: a gzip file that stays truncated is then loaded, and its records become rejects).

Exactly once: a batch commits its rows and its manifest rows together, so a watcher killed at any point, or a
database that restarts mid-batch, leaves either the batch or nothing, and the next poll (or the next watcher)
loads what is missing; the manifest skips what a committed batch read. A file replaced while watched is read
again when its size or time changes (its known plays are duplicates, kept once). A batch that fails while the
database answers is split, file by file; a file that fails alone is held (and said once) until it changes.

Operation: one watcher per database (a session-level advisory lock, ``db/bulk.py`` ``WATCH_LOCK``, held on the
watcher's own connection, which also writes the ``watcher`` row that ``musicstream status`` shows). SIGTERM lets
the current batch finish, then ``watch`` returns (a second SIGTERM rolls the batch back); Ctrl-C rolls it back and
raises ``KeyboardInterrupt``, as a load does. A database that cannot be reached is retried with a growing pause,
said once when it goes and once when it is back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from musicstream.api import run_load
from musicstream.config import mask_error
from musicstream.db.bulk import WATCH_LOCK, lock_holders
from musicstream.db.connection import Database
from musicstream.db.schema import require_schema
from musicstream.engines import engine_for
from musicstream.engines.read import DigestTask, digest
from musicstream.errors import (
    ConfigError,
    DatabaseError,
    EngineError,
    InputError,
    MusicstreamError,
    SchemaError,
)
from musicstream.extract.files import input_at, is_url, walk_inputs, walk_url
from musicstream.load.state import Engine, LoadOptions
from musicstream.load.stats import LoadResult

log = logging.getLogger("musicstream.watch")

Stat = tuple[int, int | None]  # size, modification time (ns; object storage: its last-modified time, or None)
Event = dict[str, Any]


class WatchError(MusicstreamError):
    """The watcher cannot run: another watcher holds this database, or a watched path is not there."""


class Stopped(KeyboardInterrupt):
    """A second SIGTERM during a batch: the run rolls back as after Ctrl-C, and the watcher stops (exit 0)."""


@dataclass(frozen=True)
class WatchOptions:
    """How to watch.

    ``settle``: seconds a file's size and modification time must stay the same before it is read; ``interval``:
    the longest pause between two listings (file events wake the watcher sooner); ``once``: load what has settled
    and return (for cron); ``batch_files``/``batch_bytes``: the most one batch reads (at least one file);
    ``file_events``: use OS file events where they work (between full listings every ``full_every`` seconds, only
    what they report is looked at again); ``gzip_grace``: how long a truncated gzip file is held
    back; ``backoff_max``: the longest pause between attempts to reach the database; ``load``: the runs' options
    (``allow_empty`` is always on: a batch of rejects only is recorded, not an error).
    """

    settle: float = 1.0
    interval: float = 1.0
    once: bool = False
    batch_files: int = 1000
    batch_bytes: int = 256 << 20
    file_events: bool = True
    gzip_grace: float = 60.0
    backoff_max: float = 30.0
    heartbeat: float = 5.0
    full_every: float = 60.0
    load: LoadOptions = field(default_factory=LoadOptions)


@dataclass
class _Pending:
    stat: Stat
    since: float  # monotonic time of the first listing that saw this size and time
    gzip_complete: bool | None = None


def gzip_complete(path: str) -> bool:
    """Whether a local .json.gz file is whole gzip members up to its last byte (read through, in bounded memory;
    an empty file is not complete: its writer has not begun)."""
    try:
        with open(path, "rb") as stored:
            inflate = zlib.decompressobj(wbits=31)
            fed = False  # the current member has had bytes
            while chunk := stored.read(1 << 20):
                data = chunk
                while data:
                    fed = True
                    inflate.decompress(data, 1 << 20)
                    if inflate.eof:  # a member ended; what follows it is the next member
                        data = inflate.unused_data
                        inflate = zlib.decompressobj(wbits=31)
                        fed = False
                    else:
                        data = inflate.unconsumed_tail
            return inflate.eof or (not fed and stored.tell() > 0)
    except (OSError, zlib.error):
        return False


class Settler:
    """The settle rule and what is known loaded: given each listing, which files are ready to read."""

    def __init__(self, settle: float, gzip_grace: float = 60.0) -> None:
        self.settle = settle
        self.gzip_grace = gzip_grace
        self.known: dict[str, Stat] = {}  # loaded (the manifest, then committed batches)
        self.pending: dict[str, _Pending] = {}  # new or changed, not yet loaded
        self.held: dict[str, tuple[Stat, str]] = {}  # failed alone: held until it changes, with why

    def observe(self, listing: dict[str, Stat], now: float) -> tuple[list[str], float | None]:
        """The files ready to read (oldest first), and when the next one could be (monotonic), from one listing."""
        ready: list[str] = []
        due: float | None = None
        for path in [p for p in self.pending if p not in listing]:  # gone (deleted, renamed): nothing to read
            del self.pending[path]
        for path in [p for p in self.held if p not in listing]:
            del self.held[path]
        for path in [p for p in self.known if p not in listing]:
            del self.known[path]  # back with the same size and time, the manifest skips it
        for path, stat in listing.items():
            if self.known.get(path) == stat:
                continue
            held = self.held.get(path)
            if held is not None:
                if held[0] == stat:
                    continue
                del self.held[path]
            pending = self.pending.get(path)
            if pending is None or pending.stat != stat:
                self.pending[path] = _Pending(stat, now)
                due = _earliest(due, now + self.settle)
                continue
            if now - pending.since < self.settle:
                due = _earliest(due, pending.since + self.settle)
                continue
            if path.lower().endswith(".gz") and not is_url(path):
                if pending.gzip_complete is None:
                    pending.gzip_complete = gzip_complete(path)
                if not pending.gzip_complete and now - pending.since < self.gzip_grace:
                    due = _earliest(due, pending.since + self.gzip_grace)
                    continue
            ready.append(path)
        ready.sort(key=lambda p: (self.pending[p].stat[1] or 0, p))
        return ready, due

    def loaded(self, paths: Sequence[str]) -> None:
        for path in paths:
            pending = self.pending.pop(path, None)
            if pending is not None:
                self.known[path] = pending.stat

    def hold(self, path: str, why: str) -> None:
        pending = self.pending.pop(path, None)
        if pending is not None:
            self.held[path] = (pending.stat, why)

    def waiting(self) -> tuple[int, int, int | None]:
        """Files waiting (not loaded, not held), their bytes, and the oldest one's modification time (ns)."""
        times = [p.stat[1] for p in self.pending.values() if p.stat[1] is not None]
        return len(self.pending), sum(p.stat[0] for p in self.pending.values()), min(times) if times else None


def _earliest(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


def list_inputs(paths: Sequence[str]) -> dict[str, Stat]:
    """Every input file under ``paths`` with its size and modification time, without reading any (a path that
    is missing, or a prefix that cannot be listed, is an ``InputError``)."""
    found: dict[str, Stat] = {}
    for given in paths:
        if is_url(given):
            found.update(_list_url(given))
            continue
        if not os.path.exists(given):
            raise InputError(f"watched path not found: {given}")
        root = os.path.realpath(given)
        if os.path.isfile(root):
            stat = os.stat(root)
            found[root] = (stat.st_size, stat.st_mtime_ns)
            continue
        for path, size, mtime_ns, _ in walk_inputs(root):
            found[path] = (size, mtime_ns)
    return found


class Lister:
    """The watched paths' listing, kept up to date: a full listing (``list_inputs``) at the start, whenever a
    folder appears or events are not working, and every ``full_every`` seconds; between them, only the paths the
    OS reported changed (``changed``), and the files still settling, are looked at again. So a poll that finds
    nothing new costs little however many files the folders hold."""

    def __init__(self, paths: Sequence[str], full_every: float = 60.0) -> None:
        self.paths = list(paths)
        self.roots = sorted((os.path.realpath(p) for p in paths if not is_url(p)), key=len, reverse=True)
        self.full_every = full_every
        self.listing: dict[str, Stat] = {}
        self.listed_at: float | None = None
        self._changed: set[str] = set()
        self._lock = threading.Lock()
        self.events = False  # set while OS file events arrive (the events thread says so)

    def changed(self, paths: Iterable[str]) -> None:
        with self._lock:
            self._changed.update(paths)

    def poll(self, now: float, settling: Iterable[str] = ()) -> dict[str, Stat]:
        with self._lock:
            changed, self._changed = self._changed, set()
        full = (
            not self.events
            or self.listed_at is None
            or now - self.listed_at >= self.full_every
            or any(os.path.isdir(p) for p in changed)  # a folder appeared (or was renamed in): walk it all
        )
        if full:
            self.listing = list_inputs(self.paths)
            self.listed_at = now
            return self.listing
        for path in {*changed, *settling}:
            self._look(path)
        return self.listing

    def _look(self, path: str) -> None:
        root = next((r for r in self.roots if path == r or path.startswith(r.rstrip(os.sep) + os.sep)), None)
        if root is None:
            return
        if path == root:  # a watched file, named itself
            try:
                stat = os.stat(path)
                self.listing[path] = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                self.listing.pop(path, None)
            return
        found = input_at(root, path)
        if found is None:
            self.listing.pop(path, None)
            return
        real, size, mtime_ns = found
        self.listing[real] = (size, mtime_ns)


def _list_url(url: str) -> Iterator[tuple[str, Stat]]:
    for path, size, mtime_ns, _ in walk_url(url):
        if path is not None:
            yield path, (size, mtime_ns)


class _FileEvents:
    """A thread that hands the OS's change reports for the watched folders (watchfiles) to the lister, and wakes
    the watcher."""

    def __init__(self, lister: Lister, wake: threading.Event) -> None:
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        if not lister.roots:
            return
        try:
            import watchfiles
        except ImportError:
            return
        lister.events = True

        def follow() -> None:
            try:
                for changes in watchfiles.watch(
                    *lister.roots,
                    watch_filter=None,
                    debounce=50,
                    step=10,
                    stop_event=self.stop,
                    rust_timeout=500,
                    raise_interrupt=False,
                ):
                    lister.changed(path for _, path in changes)
                    wake.set()
            except Exception as exc:  # no inotify (a limit reached, a file system without events): listing only
                log.info("file events unavailable (%s): listing only", exc)
            lister.events = False

        self.thread = threading.Thread(target=follow, name="musicstream-watch-events", daemon=True)
        self.thread.start()

    @property
    def working(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


class Watcher:
    """One watcher: ``run`` loads what settles under ``paths`` until stopped (or once, with ``options.once``),
    reporting each event to ``on_event`` (a dict with ``event``: started, batch, held, database_down,
    database_up, left, stopped)."""

    def __init__(
        self,
        db: Database,
        paths: Sequence[str | Path],
        options: WatchOptions | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.db = db
        self.paths = [str(p) if is_url(p) else os.path.abspath(p) for p in paths]
        self.options = options or WatchOptions()
        self.load_options = replace(self.options.load, allow_empty=True)
        self.on_event = on_event or (lambda event: None)
        self.settler = Settler(self.options.settle, self.options.gzip_grace)
        self.lister = Lister(self.paths, self.options.full_every)
        self.wake = threading.Event()
        self.stopping: str | None = None
        self.in_batch = False
        self.conn: psycopg.Connection[Any] | None = None
        self.database_up: bool | None = None
        self.alone: set[str] = set()  # files of a failed batch, now read one per batch
        self.untimed: dict[str, tuple[int, str]] = {}  # manifest entries without a trusted time: size, SHA-256
        self.batches = 0
        self.engine: Engine | None = None  # made as it starts, kept for every batch (Spark: its checks made once)
        self.started = False
        self.last: dict[str, Any] = {}
        self._beat = 0.0
        self._waiting_said: tuple[int, int, int | None] | None = None

    # --- the loop

    def run(self) -> int:
        """Watch until stopped (SIGTERM, or ``stop``), or, with ``once``, until what has settled is loaded.
        Returns the number of batches committed."""
        previous = self._signals()
        events = _FileEvents(self.lister, self.wake) if self.options.file_events and not self.options.once else None
        reason = "error"
        try:
            self._attach()
            # the engine now, not at the first batch: one that cannot run (no Java for Spark, executors that cannot
            # import musicstream) stops the watcher at once, with its one message
            self.engine = engine_for(self.db, self.load_options)
            self._emit("started", paths=self.paths, pid=os.getpid(), file_events=bool(events and events.working))
            self.started = True
            reason = self._loop()
        except KeyboardInterrupt:
            reason = "interrupted"
            raise
        finally:
            if events is not None:
                events.close()
            self._detach(reason)
            self._restore(previous)
        return self.batches

    def stop(self, why: str = "stopped") -> None:
        """Stop after the current batch (from another thread, or a signal handler)."""
        self.stopping = why
        self.wake.set()

    def _loop(self) -> str:
        first = True
        while True:
            if self.stopping:
                return self.stopping
            if self.conn is None and not self._attach_again():
                continue
            now = time.monotonic()
            listing = self.lister.poll(now, self.settler.pending)
            if self.untimed:
                self._verify_untimed(listing)
            ready, due = self.settler.observe(listing, now)
            if self.options.once and first:  # a second listing, ``settle`` later, decides what has settled
                first = False
                self._pause(self.options.settle)
                continue
            if ready and not self.stopping:
                self._batch(ready)
                continue
            self._up()  # attached, and nothing failed to load
            self._publish()
            if self.options.once:
                waiting, _, _ = self.settler.waiting()
                if waiting:
                    self._emit("left", files=waiting)
                return "done"
            pause = self.options.interval if due is None else min(self.options.interval, max(0.0, due - now))
            self._pause(max(pause, 0.01))

    def _pause(self, seconds: float) -> None:
        self.wake.wait(seconds)
        self.wake.clear()

    def _take(self, ready: list[str]) -> list[str]:
        alone = [p for p in ready if p in self.alone]
        if alone:
            return alone[:1]
        batch: list[str] = []
        total = 0
        for path in ready:
            size = self.settler.pending[path].stat[0]
            if batch and (len(batch) >= self.options.batch_files or total + size > self.options.batch_bytes):
                break
            batch.append(path)
            total += size
        return batch

    def _batch(self, ready: list[str]) -> None:
        batch = self._take(ready)
        newest = max((self.settler.pending[p].stat[1] or 0) for p in batch)
        self._publish(state="loading", force=True)
        try:
            self.in_batch = True
            result = run_load(self.db, batch, self.load_options, engine=self.engine)
        except Stopped:
            self.stopping = "SIGTERM"
            return
        except (SchemaError, ConfigError, EngineError):
            raise
        except InputError:  # a file went between the listing and the run: a full listing says what is there
            self.lister.listed_at = None
            return
        except (MusicstreamError, psycopg.Error) as exc:
            self._failed(batch, exc)
            return
        finally:
            self.in_batch = False
        self._up()
        self.settler.loaded(batch)
        self.alone.difference_update(batch)
        self.batches += 1
        lag = max(0.0, time.time() - newest / 1e9) if newest else None
        self.last = {"run_id": result.run_id, "files": len(batch), "lag": lag}
        self._emit("batch", **_summary(result), files=len(batch), lag_s=_round(lag), waiting=len(ready) - len(batch))
        self._publish(force=True)

    def _failed(self, batch: list[str], exc: BaseException) -> None:
        """A batch that failed: because of the database (it cannot be reached, lost the connection, is out of
        disk: retry the batch later, with a growing pause), or because of its files (split it; a file that fails
        alone is held until it changes)."""
        why = mask_error(exc).strip()
        if _database_trouble(exc) or not self._reachable():
            self._down(why)
            return
        if len(batch) > 1:
            self.alone.update(batch)
            log.info("a batch of %d files failed (%s): reading them one at a time", len(batch), why)
            return
        self.settler.hold(batch[0], why)
        self.alone.discard(batch[0])
        self._emit("held", path=batch[0], error=why)

    # --- the database: the lock, the watcher's row, outages

    def _attach(self) -> None:
        """Connect, take the watcher lock, read what the manifest holds under the watched paths."""
        try:
            conn = self.db.connect(autocommit=True)
        except MusicstreamError as exc:
            if self.options.once:
                raise
            self._down(str(exc))
            return
        try:
            require_schema(conn)
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (WATCH_LOCK,)).fetchone()
            if not got or not got[0]:
                raise WatchError(f"another watcher is running on this database: {self._holder(conn)}")
            self.conn = conn
            self._read_manifest(conn)
            self._publish(state="watching", force=True, start=True)
        except BaseException:
            self.conn = None
            with contextlib.suppress(Exception):
                conn.close()
            raise

    def _attach_again(self) -> bool:
        """While the database is down: wait, try again; True once attached."""
        delay = self._backoff
        self._pause(delay)
        if self.stopping:
            return False
        self._backoff = min(self.options.backoff_max, delay * 2)
        try:
            self._attach()
        except psycopg.Error as exc:
            self._down(mask_error(exc).strip())
        return self.conn is not None

    _backoff = 1.0

    def _down(self, why: str) -> None:
        if self.options.once:  # from cron: say why and fail; the next run tries again
            raise DatabaseError(f"the database cannot be reached or take a batch: {why}")
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None
        if self.database_up is not False:
            self._backoff = 1.0
            self._emit(
                "database_down", error=why, retry=f"every 1 s at first, then up to every {self.options.backoff_max:g} s"
            )
        self.database_up = False

    def _up(self) -> None:
        if self.database_up is False:
            self._emit("database_up")
        self.database_up = True
        self._backoff = 1.0

    def _reachable(self) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                return False
            self.conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _holder(self, conn: psycopg.Connection[Any]) -> str:
        row = conn.execute(
            "SELECT pid, host, started_at FROM watcher WHERE backend_pid = ANY(%s)",
            (lock_holders(conn, WATCH_LOCK),),
        ).fetchone()
        if row is None:
            return "stop it first"
        return f"pid {row[0]} on {row[1]}, started {row[2]:%Y-%m-%d %H:%M:%S %Z}; stop it first"

    def _read_manifest(self, conn: psycopg.Connection[Any]) -> None:
        """What the manifest holds under the watched paths becomes known. A file loaded within a moment of its
        last change has no trusted modification time there yet (``engines/local.py`` ``RECENT_NS``): when its
        size is the same, its SHA-256 decides, as it would in a run, without starting one (``_verify_untimed``)."""
        prefixes = []
        for given in self.paths:
            real = given if is_url(given) else os.path.realpath(given)
            prefixes.append(real if os.path.isfile(real) else real.rstrip("/") + "/")
        known = conn.execute(
            "SELECT path, size_bytes, mtime_ns, sha256 FROM loaded_files "
            "WHERE EXISTS (SELECT FROM unnest(%s::text[]) AS p (prefix) WHERE starts_with(path, p.prefix))",
            (prefixes,),
        )
        for path, size, mtime_ns, sha in known:
            if path in self.settler.pending:
                continue
            if mtime_ns is None:
                self.untimed[path] = (int(size), sha)
            else:
                self.settler.known[path] = (int(size), int(mtime_ns))

    def _verify_untimed(self, listing: dict[str, Stat]) -> None:
        """Manifest entries without a trusted time, listed with the same size: the SHA-256 of what is there now
        decides whether the manifest's entry is this file (read once, when the watcher starts)."""
        for path, (size, sha) in list(self.untimed.items()):
            del self.untimed[path]
            stat = listing.get(path)
            if stat is None or stat[0] != size or path in self.settler.pending:
                continue
            try:
                same = digest(DigestTask(path)).digest == sha
            except OSError:
                continue
            if same:
                self.settler.known[path] = stat

    def _publish(self, state: str = "watching", force: bool = False, start: bool = False) -> None:
        """Write the watcher's row (what ``status`` shows): at the start, around batches, when the files waiting
        change, and at least every ``heartbeat`` seconds."""
        conn = self.conn
        if conn is None:
            return
        waiting = self.settler.waiting()
        now = time.monotonic()
        if not force and waiting == self._waiting_said and now - self._beat < self.options.heartbeat:
            return
        files, size, oldest = waiting
        try:
            if start:
                conn.execute(
                    """INSERT INTO watcher (pid, host, backend_pid, paths, started_at, seen_at, state)
                       VALUES (%s, %s, pg_backend_pid(), %s, now(), now(), %s)
                       ON CONFLICT (one) DO UPDATE SET pid = excluded.pid, host = excluded.host,
                           backend_pid = excluded.backend_pid, paths = excluded.paths, started_at = now(),
                           seen_at = now(), state = excluded.state, files_waiting = 0, bytes_waiting = 0,
                           oldest_waiting = NULL, last_run_id = NULL, last_batch_at = NULL,
                           last_batch_files = NULL, last_batch_lag = NULL, batches = 0, stopped_at = NULL""",
                    (os.getpid(), socket.gethostname(), self.paths, state),
                )
            conn.execute(
                """UPDATE watcher SET seen_at = now(), state = %s, files_waiting = %s, bytes_waiting = %s,
                       oldest_waiting = to_timestamp(%s::double precision / 1e9), batches = %s,
                       last_run_id = coalesce(%s, last_run_id),
                       last_batch_at = CASE WHEN %s::bigint IS DISTINCT FROM last_run_id THEN now()
                                            ELSE last_batch_at END,
                       last_batch_files = coalesce(%s, last_batch_files), last_batch_lag = coalesce(%s, last_batch_lag)
                   WHERE backend_pid = pg_backend_pid()""",
                (
                    state,
                    files,
                    size,
                    oldest,
                    self.batches,
                    self.last.get("run_id"),
                    self.last.get("run_id"),
                    self.last.get("files"),
                    self.last.get("lag"),
                ),
            )
        except psycopg.Error as exc:
            if not self._reachable():
                self._down(mask_error(exc).strip())
            return
        self._waiting_said, self._beat = waiting, now

    def _detach(self, reason: str) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.execute(
                    "UPDATE watcher SET state = 'stopped', stopped_at = now(), seen_at = now() "
                    "WHERE backend_pid = pg_backend_pid()"
                )
            with contextlib.suppress(Exception):
                conn.close()
        if self.started:  # one that never started says only why (its error)
            self._emit("stopped", reason=reason, batches=self.batches)

    # --- signals and events

    def _signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def term(signum: int, frame: Any) -> None:
            if self.stopping and self.in_batch:  # a second SIGTERM: roll the batch back
                raise Stopped()
            self.stop("SIGTERM")

        return signal.signal(signal.SIGTERM, term)

    def _restore(self, previous: Any) -> None:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

    def _emit(self, kind: str, **details: Any) -> None:
        self.on_event({"event": kind, **details})


def _database_trouble(exc: BaseException) -> bool:
    """Whether a batch failed because of the database rather than its files: it could not be reached, the
    connection was lost, or the server ran out of a resource (disk, memory). The run says why in a ``LoadError``
    raised while handling the driver's error, which stays its context."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, psycopg.errors.QueryCanceled):  # a statement timeout: the batch is too big for it
            return False
        if isinstance(seen, DatabaseError | psycopg.OperationalError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _summary(result: LoadResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "records_read": result.records_read,
        "records_loaded": result.records_loaded,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "seconds": result.seconds,
        "plays_added": result.rows_added.get("trackplays", 0),
    }


def watch(
    db: Database,
    paths: Sequence[str | Path],
    options: WatchOptions | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> int:
    """Load the files that land under ``paths`` as they settle, until SIGTERM (or, with ``options.once``, what
    has settled now); returns the number of batches committed. Raises ``WatchError`` when another watcher holds
    the database, ``KeyboardInterrupt`` after Ctrl-C (the current batch rolled back)."""
    return Watcher(db, paths, options, on_event).run()


__all__ = [
    "Lister",
    "Settler",
    "Stopped",
    "WatchError",
    "WatchOptions",
    "Watcher",
    "gzip_complete",
    "list_inputs",
    "watch",
]
