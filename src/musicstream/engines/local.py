"""The local engine: decide which files to read, parse them in worker processes, stream the rows into COPY.

Workers (one per core by default) parse files, or line-aligned slices of big files, into CSV; the main process
writes each result to PostgreSQL in file order while the next ones are parsed. At most ``2 × workers`` results
wait in memory, and a slice is at most SLICE_BYTES of input, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from musicstream.engines.read import DigestTask, LogTask, Parsed, SongTask, run_task
from musicstream.extract.files import InputFile, discover
from musicstream.load.faults import point
from musicstream.load.staging import PLAY_COLUMNS, SONG_COLUMNS, USER_COLUMNS, create_staging
from musicstream.load.state import Known, ManifestRow, RunState

SLICE_BYTES = 32 << 20  # plain log files bigger than this are parsed in slices of this size
SONGS_PER_TASK = 256
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
    context.set_forkserver_preload(["musicstream.engines.read"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


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


def _log_tasks(states: Sequence[_FileState]) -> Iterator[LogTask | DigestTask]:
    for state in states:
        path, size = state.file.path, state.file.size
        if size <= SLICE_BYTES or path.lower().endswith(".gz"):
            yield LogTask(path)
            continue
        yield DigestTask(path)
        for start in range(0, size, SLICE_BYTES):
            yield LogTask(path, start, start + SLICE_BYTES)


def _song_tasks(states: Sequence[_FileState]) -> Iterator[SongTask]:
    for first in range(0, len(states), SONGS_PER_TASK):
        yield SongTask(tuple(s.file.path for s in states[first : first + SONGS_PER_TASK]))


def _task_bytes(task: Any, states: dict[str, _FileState]) -> int:
    if isinstance(task, SongTask):
        return sum(states[p].file.size for p in task.paths)
    if isinstance(task, LogTask):
        size = states[task.path].file.size
        end = size if task.end is None else min(task.end, size)
        return max(end - task.start, 0)
    return 0


def _absorb(staging: RunState, states: dict[str, _FileState], task: Any, parsed: Parsed) -> None:
    """Fold a task's result into the run: counts, users, rejects (with absolute line numbers)."""
    result = staging.result
    result.peak_rss_mb = max(result.peak_rss_mb, parsed.peak_rss_mb)
    if isinstance(task, DigestTask):
        states[task.path].digest = parsed.digest
        return
    result.records_skipped += parsed.skipped
    result.logged_out += parsed.logged_out
    staging.see_users(parsed.users)
    base = 0
    if isinstance(task, LogTask) and not task.whole:
        state = states[task.path]
        base = state.lines_before
        state.lines_before += parsed.lines
    for path, line, reason, raw in parsed.rejects:
        staging.rejects.add_text(path, line + base if line else line, reason, raw)
        result.rejected += 1
    for outcome in parsed.files:
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
    states: dict[str, _FileState],
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
            _absorb(staging, states, task, parsed)
            staging.progress.advance(_task_bytes(task, states))
            staging.tasks_done += 1
            point(f"read:{table}:{staging.tasks_done}")
    return staged


def _trusted(file: InputFile, started_ns: int) -> int | None:
    """The file's modification time when it is old enough to vouch for the content next time, else None."""
    if file.mtime_ns is None or file.mtime_ns > started_ns - RECENT_NS:
        return None
    return file.mtime_ns


def stage_files(
    conn: psycopg.Connection[Any],
    staging: RunState,
    files: Sequence[InputFile],
    known: Known,
    full: bool,
    workers: int | None,
    started_ns: int,
) -> list[ManifestRow]:
    """Parse and COPY every new or changed file; returns the manifest rows of the files read.

    A file the manifest lists with the same size and modification time is unchanged and not read at all. One
    with the same size but another time is hashed (in threads: hashing releases the GIL, so a re-run with
    nothing new starts no worker processes); the digest decides. ``started_ns`` is when the run listed the files.
    """
    result = staging.result
    same: set[str] = set()
    maybe_same: list[InputFile] = []
    for f in files if not full else ():
        size, _, mtime_ns = known.get(f.path, (None, "", None))
        if size != f.size:
            continue
        if mtime_ns is not None and mtime_ns == f.mtime_ns:
            same.add(f.path)
        else:
            maybe_same.append(f)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as threads:
        for file, parsed in zip(
            maybe_same, threads.map(run_task, [DigestTask(f.path) for f in maybe_same]), strict=True
        ):
            if known[file.path][1] == parsed.digest:
                same.add(file.path)
                trusted = _trusted(file, started_ns)
                if trusted is not None:
                    staging.mtimes.append((file.path, trusted))
    states = {f.path: _FileState(f) for f in files if f.path not in same}
    result.files_skipped += len(same)
    staging.progress.advance(sum(f.size for f in files if f.path in same))
    to_read = sum(s.file.size for s in states.values())
    count = workers or os.cpu_count() or 1
    if workers is None and to_read < SERIAL_BELOW_BYTES:
        count = 1
    window = 2 * count
    with _executor(count) as pool, conn.cursor() as cur:
        songs = [s for s in states.values() if s.file.kind == "song"]
        logs = [s for s in states.values() if s.file.kind == "log"]
        if songs:
            staging.progress.phase("reading song files")
            staging.staged_songs = _copy_results(
                cur, pool, window, staging, states, _song_tasks(songs), "stage_songs", SONG_COLUMNS
            )
        if logs:
            staging.progress.phase("reading log files")
            staging.staged_plays = _copy_results(
                cur, pool, window, staging, states, _log_tasks(logs), "stage_plays", PLAY_COLUMNS
            )
    manifest: list[ManifestRow] = []
    for state in states.values():
        result.files_read += 1
        result.bytes_read += state.file.size
        result.records_read += state.records
        if state.file.kind == "song":
            result.song_records += state.records
        else:
            result.event_records += state.records
        if state.digest is not None:  # a file that could not be read is not in the manifest: it is retried
            file, mtime_ns = state.file, _trusted(state.file, started_ns)
            manifest.append((file.path, file.kind, file.size, state.digest, state.records, state.rejects, mtime_ns))
    return manifest


def _copy_bookkeeping(conn: psycopg.Connection[Any], staging: RunState, manifest: list[ManifestRow]) -> None:
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
            for entry in manifest:
                copy.write_row(entry)
        with cur.copy("COPY stage_mtimes (path, mtime_ns) FROM STDIN") as copy:
            for mtime in staging.mtimes:
                copy.write_row(mtime)


class LocalEngine:
    """The default engine: this machine's cores, one worker process each (``workers``: how many; None: one per
    core, and none for small inputs)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers

    def discover(self, paths: Sequence[str | Path]) -> list[InputFile]:
        return discover(paths)

    def stage(
        self, conn: psycopg.Connection[Any], run: RunState, files: Sequence[InputFile], full: bool, started_ns: int
    ) -> None:
        create_staging(conn)
        point("staging-tables")
        known: Known = {
            path: (size, digest, mtime_ns)
            for path, size, digest, mtime_ns in conn.execute(
                "SELECT path, size_bytes, sha256, mtime_ns FROM loaded_files WHERE path = ANY(%s)",
                ([f.path for f in files],),
            )
        }
        manifest = stage_files(conn, run, files, known, full, self.workers, started_ns)
        point("bookkeeping")
        _copy_bookkeeping(conn, run, manifest)

    def before_commit(self, conn: psycopg.Connection[Any]) -> None:
        pass

    def after_failure(self) -> None:
        pass
