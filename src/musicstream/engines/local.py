"""The local engine: decide which files to read, parse them in worker processes, stream the rows into COPY.

Workers (one per core by default) parse files, or line-aligned slices of big files, into CSV; the main process
writes each result to PostgreSQL in file order while the next ones are parsed. At most ``2 × workers`` results
wait in memory, and a slice is at most SLICE_BYTES of input, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from musicstream.db.sqlfiles import named_statements
from musicstream.engines.read import (
    NATIVE_MIN_BYTES,
    DigestTask,
    LogBatchTask,
    LogTask,
    Parsed,
    SongTask,
    ignore_interrupts,
    native_worthwhile,
    run_task,
)
from musicstream.extract.files import InputFile, discover
from musicstream.faults import point
from musicstream.load.rejects import RowSpool
from musicstream.load.staging import PLAY_COLUMNS, REPAIR_COLUMNS, SONG_COLUMNS, USER_COLUMNS, create_staging
from musicstream.load.state import RunState, Staged

SLICE_BYTES = 32 << 20  # plain log files bigger than this are parsed in slices of this size
SONGS_PER_TASK = 256
BATCH_BYTES = 8 << 20  # small log files are read in batches of this much
SERIAL_BELOW_BYTES = 4 << 20  # smaller inputs are parsed in-process: starting workers would cost more
# A modification time is trusted for the next run's quick check only when it is older than the run by this much:
# a file written again within one tick of the file system's clock could keep its time (git's "racy" case).
RECENT_NS = 2_000_000_000


@dataclass
class _FileState:
    """A file being read: its kind, size, and what its tasks found so far."""

    file: InputFile
    records: int = 0
    rejects: int = 0
    digest: str | None = None
    lines_before: int = 0  # physical lines of the slices already handled


class _Inline(Executor):
    """Runs tasks in this process: the same code path as the workers, without their start-up cost."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return _Inline()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["musicstream.engines.read", "musicstream.engines.native"])
    # The fork server, and every worker it forks, ignores Ctrl-C from its start (an ignored signal stays ignored
    # through exec and fork): only this process handles it, by stopping the pool and rolling the run back. The
    # workers are all started here, with Ctrl-C held back: one interrupted while it starts would be unknown to the
    # pool, outlive the run, or print a traceback of its own. A Ctrl-C meanwhile (blocked, so not lost) arrives
    # here as the mask comes off.
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=ignore_interrupts)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=ignore_interrupts)
        for _ in range(workers):  # each submission starts a worker while none is idle yet
            pool.submit(os.getpid)
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pool


def _ordered(pool: Executor, tasks: Iterable[Any], window: int) -> Iterator[tuple[Any, Parsed]]:
    """Each task with its result, in task order, with at most ``window`` tasks in flight."""
    pending: deque[tuple[Any, Future[Parsed]]] = deque()
    for task in tasks:
        pending.append((task, pool.submit(run_task, task)))
        if len(pending) >= window:
            done, future = pending.popleft()
            yield done, future.result()
    while pending:
        done, future = pending.popleft()
        yield done, future.result()


def _log_tasks(states: Sequence[_FileState], repair: bool = True) -> Iterator[LogTask | LogBatchTask | DigestTask]:
    """Big files in slices, gzipped ones whole, and small plain ones in batches of up to BATCH_BYTES (parsed
    natively together when the batch is worth it: decided here, as workers keep the environment they began with).
    ``repair``: rule 6's repair of names."""
    batch: list[str] = []
    batch_bytes = 0
    limit = int(os.environ.get("MUSICSTREAM_LOG_BATCH_BYTES", BATCH_BYTES))  # the crash tests read file by file
    for state in states:
        path, size = state.file.path, state.file.size
        if size < NATIVE_MIN_BYTES and not path.lower().endswith(".gz"):
            if batch and batch_bytes + size > limit:
                yield LogBatchTask(tuple(batch), native=native_worthwhile(batch_bytes), repair=repair)
                batch, batch_bytes = [], 0
            batch.append(path)
            batch_bytes += size
            continue
        if batch:
            yield LogBatchTask(tuple(batch), native=native_worthwhile(batch_bytes), repair=repair)
            batch, batch_bytes = [], 0
        if size <= SLICE_BYTES or path.lower().endswith(".gz"):
            yield LogTask(path, native=native_worthwhile(size), repair=repair)
            continue
        yield DigestTask(path)
        for start in range(0, size, SLICE_BYTES):
            yield LogTask(path, start, start + SLICE_BYTES, native=True, repair=repair)
    if batch:
        yield LogBatchTask(tuple(batch), native=native_worthwhile(batch_bytes), repair=repair)


def _song_tasks(files: Sequence[InputFile], inflight: dict[str, InputFile], repair: bool = True) -> Iterator[SongTask]:
    """Song files in batches; each batch's files wait in ``inflight`` until their task's result is absorbed."""
    for first in range(0, len(files), SONGS_PER_TASK):
        batch = files[first : first + SONGS_PER_TASK]
        inflight.update((f.path, f) for f in batch)
        yield SongTask(tuple(f.path for f in batch), repair)


def _task_bytes(task: Any, states: dict[str, _FileState], inflight: dict[str, InputFile]) -> int:
    if isinstance(task, SongTask):
        return sum(inflight[p].size for p in task.paths)
    if isinstance(task, LogTask):
        size = states[task.path].file.size
        end = size if task.end is None else min(task.end, size)
        return max(end - task.start, 0)
    if isinstance(task, LogBatchTask):
        return sum(states[path].file.size for path in task.paths)
    return 0


class _Files:
    """What the run learns of the files it reads: log files' state across their slices (a few files), and the
    manifest rows, spooled to disk as each file is done (song files can be a million)."""

    def __init__(self, staging: RunState, started_ns: int) -> None:
        self.staging = staging
        self.started_ns = started_ns
        self.logs: dict[str, _FileState] = {}
        self.songs_inflight: dict[str, InputFile] = {}
        self.manifest = RowSpool()

    def done(self, file: InputFile, records: int, rejects: int, digest: str | None) -> None:
        self.staging.result.add_file(file.kind, file.size, records, rejects)
        if digest is not None:  # a file that could not be read is not in the manifest: it is retried
            mtime_ns = _trusted(file, self.started_ns)
            self.manifest.add((file.path, file.kind, file.size, digest, records, rejects, mtime_ns))


def _absorb(staging: RunState, files: _Files, task: Any, parsed: Parsed) -> None:
    """Fold a task's result into the run: counts, users, rejects (with absolute line numbers)."""
    result = staging.result
    states = files.logs
    result.peak_rss_mb = max(result.peak_rss_mb, parsed.peak_rss_mb)
    if isinstance(task, DigestTask):
        states[task.path].digest = parsed.digest
        return
    result.records_skipped += parsed.skipped
    result.logged_out += parsed.logged_out
    result.native_lines += parsed.native
    staging.see_users(parsed.users)
    base = 0
    if isinstance(task, LogTask) and not task.whole:
        state = states[task.path]
        base = state.lines_before
        state.lines_before += parsed.lines
    for path, line, reason, raw in parsed.rejects:  # counted with their file's outcome (LoadResult.add_file)
        staging.rejects.add_text(path, line + base if line else line, reason, raw)
    for outcome in parsed.files:
        for repair in outcome.names.rows(outcome.path, base):
            staging.repairs.add(repair)
        if isinstance(task, SongTask):
            files.done(files.songs_inflight.pop(outcome.path), outcome.records, outcome.rejects, outcome.digest)
            continue
        state = states[outcome.path]
        state.records += outcome.records
        state.rejects += outcome.rejects
        if outcome.digest is not None:
            state.digest = outcome.digest


def _copy_results(
    cur: psycopg.Cursor[Any],
    pool: Executor,
    window: int,
    staging: RunState,
    files: _Files,
    tasks: Iterable[Any],
    table: str,
    columns: str,
) -> int:
    staged = 0
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        for task, parsed in _ordered(pool, tasks, window):
            if parsed.csv:
                copy.write(parsed.csv)
            staged += parsed.staged
            nbytes = _task_bytes(task, files.logs, files.songs_inflight)
            _absorb(staging, files, task, parsed)
            staging.progress.advance(nbytes)
            staging.tasks_done += 1
            point(f"read:{table}:{staging.tasks_done}")
    return staged


def _trusted(file: InputFile, started_ns: int) -> int | None:
    """The file's modification time when it is old enough to vouch for the content next time, else None."""
    if file.mtime_ns is None or file.mtime_ns > started_ns - RECENT_NS:
        return None
    return file.mtime_ns


def _unchanged(
    conn: psycopg.Connection[Any], staging: RunState, files: Sequence[InputFile], started_ns: int
) -> bytearray:
    """One byte per listed file: 1 when the manifest says it is unchanged.

    A file the manifest lists with the same size and modification time is unchanged and not read at all. One
    with the same size but another time is hashed (in threads: hashing releases the GIL, so a re-run with
    nothing new starts no worker processes); the digest decides. The listing goes to PostgreSQL by COPY and is
    compared there, so that memory does not grow with the number of files the manifest holds.
    """
    same = bytearray(len(files))
    statements = named_statements("load/listing")
    conn.execute(statements["create_listing"])
    with conn.cursor() as cur, cur.copy("COPY stage_listing (ord, path, size_bytes, mtime_ns) FROM STDIN") as copy:
        for ord_, f in enumerate(files):
            copy.write_row((ord_, f.path, f.size, f.mtime_ns))
    maybe_same: list[tuple[int, str]] = []
    with conn.cursor(name="musicstream_listing") as cur:
        cur.itersize = 10_000
        for ord_, digest, same_time in cur.execute(statements["known_files"]):
            if same_time:
                same[ord_] = 1
            else:
                maybe_same.append((ord_, digest))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as threads:
        digests = threads.map(run_task, [DigestTask(files[ord_].path) for ord_, _ in maybe_same])
        for (ord_, known), parsed in zip(maybe_same, digests, strict=True):
            if known == parsed.digest:
                same[ord_] = 1
                trusted = _trusted(files[ord_], started_ns)
                if trusted is not None:
                    staging.mtimes.append((files[ord_].path, trusted))
    return same


def stage_files(
    conn: psycopg.Connection[Any],
    staging: RunState,
    files: Sequence[InputFile],
    full: bool,
    workers: int | None,
    started_ns: int,
    repair: bool = True,
) -> tuple[RowSpool, Staged]:
    """Parse and COPY every new or changed file (every file when ``full``); returns the manifest rows of the files
    read and what was staged. ``started_ns`` is when the run listed the files; ``repair``: rule 6's repair of
    names."""
    result = staging.result
    same = bytearray(len(files)) if full else _unchanged(conn, staging, files, started_ns)
    to_read = [f for f, unchanged in zip(files, same, strict=True) if not unchanged]
    result.files_skipped += len(files) - len(to_read)
    staging.progress.advance(sum(f.size for f, unchanged in zip(files, same, strict=True) if unchanged))
    count = workers or os.cpu_count() or 1
    if workers is None and sum(f.size for f in to_read) < SERIAL_BELOW_BYTES:
        count = 1
    window = 2 * count
    done = _Files(staging, started_ns)
    songs_staged = plays_staged = 0
    with _executor(count) as pool, conn.cursor() as cur:
        songs = [f for f in to_read if f.kind == "song"]
        logs = [_FileState(f) for f in to_read if f.kind == "log"]
        done.logs = {state.file.path: state for state in logs}
        if songs:
            staging.progress.phase("reading song files")
            songs_staged = _copy_results(
                cur,
                pool,
                window,
                staging,
                done,
                _song_tasks(songs, done.songs_inflight, repair),
                "stage_songs",
                SONG_COLUMNS,
            )
        if logs:
            staging.progress.phase("reading log files")
            plays_staged = _copy_results(
                cur, pool, window, staging, done, _log_tasks(logs, repair), "stage_plays", PLAY_COLUMNS
            )
    for state in logs:
        done.done(state.file, state.records, state.rejects, state.digest)
    return done.manifest, Staged(plays=plays_staged, songs=songs_staged)


def _copy_bookkeeping(conn: psycopg.Connection[Any], staging: RunState, manifest: RowSpool) -> None:
    with conn.cursor() as cur:
        with cur.copy(f"COPY stage_users ({USER_COLUMNS}) FROM STDIN") as copy:
            for event in staging.users.values():
                copy.write_row(event)
        with cur.copy("COPY stage_rejects (file, line, reason, raw) FROM STDIN") as copy:
            for row in staging.rejects.rows():
                copy.write_row(row)
        with cur.copy(
            "COPY stage_files (path, kind, size_bytes, sha256, records, rejects, mtime_ns) FROM STDIN"
        ) as copy:
            for entry in manifest.rows():
                copy.write_row(entry)
        with cur.copy("COPY stage_mtimes (path, mtime_ns) FROM STDIN") as copy:
            for mtime in staging.mtimes:
                copy.write_row(mtime)
        with cur.copy(f"COPY stage_repairs ({REPAIR_COLUMNS}) FROM STDIN") as copy:
            for repair in staging.repairs.rows():
                copy.write_row(repair)


class LocalEngine:
    """The default engine: this machine's cores, one worker process each (``workers``: how many; None: one per
    core, and none for small inputs); ``repair``: rule 6's repair of names."""

    name = "local"

    def __init__(self, workers: int | None = None, repair: bool = True) -> None:
        self.workers = workers
        self.repair = repair

    def discover(self, paths: Sequence[str | Path]) -> list[InputFile]:
        return discover(paths)

    def stage(
        self, conn: psycopg.Connection[Any], run: RunState, files: Sequence[InputFile], full: bool, started_ns: int
    ) -> Staged:
        create_staging(conn)
        point("staging-tables")
        manifest, staged = stage_files(conn, run, files, full, self.workers, started_ns, self.repair)
        try:
            point("bookkeeping")
            _copy_bookkeeping(conn, run, manifest)
        finally:
            manifest.close()
        return staged

    def before_commit(self, conn: psycopg.Connection[Any]) -> None:
        pass

    def after_failure(self) -> None:
        pass
