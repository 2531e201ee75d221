"""One load run: find files → skip the unchanged → parse and COPY into staging → merge → commit.

Everything from staging to the manifest happens in one transaction, so a run that fails or is killed leaves
the tables as they were (rule 11), and a file is in the manifest exactly when its rows are in the tables.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import psycopg

from musicstream.config import mask_error
from musicstream.db.connection import Database
from musicstream.db.schema import require_schema
from musicstream.db.sqlfiles import named_statements, statements
from musicstream.errors import LoadError, MusicstreamError, TooManyRejects
from musicstream.extract.files import BOM, InputFile, discover, file_digest, iter_lines, open_binary
from musicstream.extract.records import Reject, Skip, UserEvent, iter_json_values, parse_event, parse_song
from musicstream.load.rejects import RejectSink
from musicstream.load.stats import FileTally, LoadResult

LOAD_LOCK = 0x6D736C6F6164  # "msload": one load at a time per database
IN_MEMORY_LIMIT = 64 << 20  # files up to this size are read once (hash and parse from memory)

PLAY_COLUMNS = (
    "user_id, session_id, item_in_session, ts, tier, location, user_agent, "
    "song_title, artist_name, length_ms, title_key, artist_key"
)
SONG_COLUMNS = (
    "track_id, title, artist_id, artist_name, year, duration, location, latitude, longitude, title_key, artist_key"
)
USER_COLUMNS = "ts, session_id, item_in_session, user_id, first_name, last_name, gender, tier"


class Progress(Protocol):
    """Where a run reports progress (a rich bar on a terminal, nothing otherwise)."""

    def start(self, total_bytes: int, files: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def phase(self, name: str) -> None: ...


class _NoProgress:
    def start(self, total_bytes: int, files: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def phase(self, name: str) -> None:
        pass


@dataclass(frozen=True)
class LoadOptions:
    """How to run a load.

    ``full`` re-reads files the manifest lists as unchanged; ``max_rejects`` turns more rejects than that into
    a failed (rolled back) run; ``wait`` waits for another load on the same database instead of failing.
    """

    full: bool = False
    max_rejects: int | None = None
    wait: bool = True


@dataclass
class _FileWork:
    file: InputFile
    digest: str
    data: bytes | None  # the file's bytes when small enough to keep, else None (streamed again)


class _Run:
    """The state of one run while it reads: counts, the latest event per user, rejects."""

    def __init__(self, result: LoadResult, progress: Progress) -> None:
        self.result = result
        self.progress = progress
        self.users: dict[int, UserEvent] = {}
        self.rejects = RejectSink()
        self.files: list[tuple[str, str, int, str, int, int]] = []
        self.staged_songs = 0
        self.staged_plays = 0

    def reject(self, file: str, line: int, reason: str, raw: bytes | str) -> None:
        self.rejects.add(file, line, reason, raw)
        self.result.rejected += 1

    def see_user(self, event: UserEvent) -> None:
        current = self.users.get(event.user_id)
        if current is None or event[:3] > current[:3]:
            self.users[event.user_id] = event


def _open_work(work: _FileWork) -> IO[bytes]:
    if work.data is None:
        return open_binary(work.file.path)
    if work.file.path.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=io.BytesIO(work.data), mode="rb")  # type: ignore[return-value]
    return io.BytesIO(work.data)


def _read_songs(run: _Run, work: _FileWork, copy: psycopg.Copy) -> FileTally:
    tally = FileTally()
    path = work.file.path
    try:
        with _open_work(work) as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        run.reject(path, 0, f"cannot read file: {exc}", b"")
        tally.records += 1
        tally.rejects += 1
        return tally
    if data.startswith(BOM):
        data = data[3:]
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" in text and b"\xef\xbf\xbd" not in data:
        run.reject(path, 1, "invalid UTF-8", data)
        tally.records += 1
        tally.rejects += 1
        return tally
    for line, value, raw in iter_json_values(text):
        tally.records += 1
        song = value if isinstance(value, Reject) else parse_song(value)
        if isinstance(song, Reject):
            run.reject(path, line, song.reason, raw)
            tally.rejects += 1
        else:
            copy.write_row(song)
            run.staged_songs += 1
    return tally


def _read_log(run: _Run, work: _FileWork, copy: psycopg.Copy) -> FileTally:
    tally = FileTally()
    path = work.file.path
    result = run.result
    line = 0
    try:
        with _open_work(work) as handle:
            for line, raw in iter_lines(handle):
                tally.records += 1
                parsed = parse_event(raw)
                if isinstance(parsed, Reject):
                    run.reject(path, line, parsed.reason, raw)
                    tally.rejects += 1
                elif isinstance(parsed, tuple):
                    copy.write_row(parsed[0])
                    run.staged_plays += 1
                    run.see_user(parsed[1])
                elif isinstance(parsed, Skip):
                    result.records_skipped += 1
                    if parsed.user is None:
                        result.logged_out += 1
                    else:
                        run.see_user(parsed.user)
    except (OSError, EOFError, zlib.error) as exc:
        run.reject(path, line + 1, f"cannot read the rest of the file: {exc}", b"")
        tally.records += 1
        tally.rejects += 1
    return tally


def _plan(files: Sequence[InputFile], known: dict[str, tuple[int, str]], full: bool, run: _Run) -> Iterator[_FileWork]:
    """The files to read, with their digests; unchanged files are counted as skipped."""
    for file in files:
        try:
            if file.size <= IN_MEMORY_LIMIT:
                with open(file.path, "rb") as handle:
                    data: bytes | None = handle.read()
                digest = hashlib.sha256(data or b"").hexdigest()
            else:
                data = None
                digest = file_digest(file.path)
        except OSError as exc:
            run.result.records_read += 1
            run.reject(file.path, 0, f"cannot read file: {exc.strerror or exc}", b"")
            run.progress.advance(file.size)
            continue
        if not full and known.get(file.path) == (file.size, digest):
            run.result.files_skipped += 1
            run.progress.advance(file.size)
            continue
        yield _FileWork(file, digest, data)


def _stage(conn: psycopg.Connection[Any], run: _Run, files: Sequence[InputFile], options: LoadOptions) -> None:
    known: dict[str, tuple[int, str]] = {
        path: (size, digest)
        for path, size, digest in conn.execute(
            "SELECT path, size_bytes, sha256 FROM loaded_files WHERE path = ANY(%s)",
            ([f.path for f in files],),
        )
    }
    result = run.result
    with conn.cursor() as cur:
        for kind, table, columns, reader in (
            ("song", "stage_songs", SONG_COLUMNS, _read_songs),
            ("log", "stage_plays", PLAY_COLUMNS, _read_log),
        ):
            subset = [f for f in files if f.kind == kind]
            if not subset:
                continue
            run.progress.phase(f"reading {kind} files")
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for work in _plan(subset, known, options.full, run):
                    tally = reader(run, work, copy)
                    result.files_read += 1
                    result.bytes_read += work.file.size
                    result.records_read += tally.records
                    if kind == "song":
                        result.song_records += tally.records
                    else:
                        result.event_records += tally.records
                    run.files.append((work.file.path, kind, work.file.size, work.digest, tally.records, tally.rejects))
                    run.progress.advance(work.file.size)
        with cur.copy(f"COPY stage_users ({USER_COLUMNS}) FROM STDIN") as copy:
            for event in run.users.values():
                copy.write_row(event)
        with cur.copy("COPY stage_rejects (file, line, reason, raw) FROM STDIN") as copy:
            for row in run.rejects.rows():
                copy.write_row(row)
        with cur.copy("COPY stage_files (path, kind, size_bytes, sha256, records, rejects) FROM STDIN") as copy:
            for entry in run.files:
                copy.write_row(entry)


def _scalar(conn: psycopg.Connection[Any], run: _Run, name: str, params: dict[str, Any] | None = None) -> int:
    started = time.perf_counter()
    row = conn.execute(named_statements("load/merge")[name], params).fetchone()
    run.result.timings[name] = round(time.perf_counter() - started, 4)
    return int(row[0]) if row and row[0] is not None else 0


def _exec(conn: psycopg.Connection[Any], run: _Run, name: str, params: dict[str, Any] | None = None) -> int:
    started = time.perf_counter()
    cur = conn.execute(named_statements("load/merge")[name], params)
    run.result.timings[name] = round(time.perf_counter() - started, 4)
    return cur.rowcount


def _merge(conn: psycopg.Connection[Any], run: _Run) -> None:
    result = run.result
    run.progress.phase("merging")
    row = conn.execute(named_statements("load/merge")["max_ids"]).fetchone()
    assert row is not None
    ids = {"after_play": int(row[0]), "after_name": int(row[1])}
    conn.execute("ANALYZE stage_plays")
    added: dict[str, int] = {}
    _exec(conn, run, "touched_artist_keys")
    added["artists"] = _scalar(conn, run, "merge_artists")
    added["tracks"] = _scalar(conn, run, "merge_tracks")
    new_tracks = added["tracks"]
    _exec(conn, run, "stage_names")
    _exec(conn, run, "names_to_resolve")
    _exec(conn, run, "resolve")
    conn.execute("ANALYZE resolution")
    added["artists"] += _scalar(conn, run, "inferred_artists")
    added["tracks"] += _scalar(conn, run, "inferred_tracks")
    _exec(conn, run, "insert_names")
    _exec(conn, run, "update_names")
    new_plays = _exec(conn, run, "insert_plays")
    added["trackplays"] = new_plays
    _exec(conn, run, "drop_unused_names", ids)
    added["timetb"] = _exec(conn, run, "insert_time", ids)
    added["users"] = _scalar(conn, run, "merge_users")
    moved = _exec(conn, run, "reresolve_plays", ids) if run.staged_songs else 0
    added["tracks"] -= _exec(conn, run, "delete_orphan_tracks")
    added["artists"] -= _exec(conn, run, "delete_orphan_artists")
    result.rows_added.update(added)
    result.rows_added["plays_moved_to_catalog"] = moved
    result.records_loaded = new_plays + new_tracks
    result.duplicates = (run.staged_plays - new_plays) + (run.staged_songs - new_tracks)


def _finish(conn: psycopg.Connection[Any], run: _Run) -> None:
    params = {"run_id": run.result.run_id}
    _exec(conn, run, "replace_rejects")
    _exec(conn, run, "insert_rejects", params)
    _exec(conn, run, "record_files", params)


def _update_run(conn: psycopg.Connection[Any], result: LoadResult) -> None:
    conn.execute(
        """
        UPDATE etl_runs SET finished_at = now(), status = %s, files_read = %s, files_skipped = %s,
            records_read = %s, records_loaded = %s, records_skipped = %s, duplicates = %s, rejects = %s,
            rows_added = %s::jsonb, error = %s
        WHERE run_id = %s
        """,
        (
            result.status,
            result.files_read,
            result.files_skipped,
            result.records_read,
            result.records_loaded,
            result.records_skipped,
            result.duplicates,
            result.rejected,
            json.dumps(result.rows_added),
            result.error,
            result.run_id,
        ),
    )


def _lock(conn: psycopg.Connection[Any], wait: bool) -> None:
    if wait:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOAD_LOCK,))
        return
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOAD_LOCK,)).fetchone()
    if not row or not row[0]:
        raise LoadError("another load is running on this database; try again later, or drop --no-wait to wait")


def run_load(
    db: Database,
    paths: Sequence[str | Path],
    options: LoadOptions | None = None,
    progress: Progress | None = None,
) -> LoadResult:
    """Load the song and log files under ``paths`` into the star schema, as one atomic run."""
    options = options or LoadOptions()
    started = time.monotonic()
    files = discover(paths)
    result = LoadResult(files_found=len(files))
    run = _Run(result, progress or _NoProgress())
    with db.connect(autocommit=True) as conn:
        require_schema(conn)
        _lock(conn, options.wait)
        conn.execute("UPDATE etl_runs SET status = 'abandoned', finished_at = now() WHERE status = 'running'")
        row = conn.execute(
            "INSERT INTO etl_runs (full_reload) VALUES (%s) RETURNING run_id", (options.full,)
        ).fetchone()
        assert row is not None
        result.run_id = int(row[0])
        run.progress.start(sum(f.size for f in files), len(files))
        try:
            with conn.transaction():
                conn.execute("SET LOCAL work_mem = '128MB'")  # room for the merge's hashes and sorts
                for statement in statements("load/staging"):
                    conn.execute(statement)  # our own trusted .sql file
                started_stage = time.perf_counter()
                _stage(conn, run, files, options)
                result.timings["read_and_copy"] = round(time.perf_counter() - started_stage, 4)
                _merge(conn, run)
                _finish(conn, run)
                if options.max_rejects is not None and result.rejected > options.max_rejects:
                    raise TooManyRejects(
                        f"{result.rejected} records were rejected, more than --max-rejects {options.max_rejects}; "
                        "nothing was loaded. Fix the input, or raise --max-rejects"
                    )
                result.status = "succeeded"
                result.seconds = round(time.monotonic() - started, 3)
                _update_run(conn, result)
        except BaseException as exc:
            result.status = "failed"
            result.seconds = round(time.monotonic() - started, 3)
            if isinstance(exc, MusicstreamError):
                result.error = str(exc)
            elif isinstance(exc, psycopg.Error):
                result.error = f"database error: {mask_error(exc).strip()}"
            else:
                result.error = f"{type(exc).__name__}: {mask_error(exc)}"
            if not conn.closed and not conn.broken:
                with contextlib.suppress(psycopg.Error):
                    _update_run(conn, result)
            run.rejects.close()
            if isinstance(exc, MusicstreamError):
                raise
            if isinstance(exc, psycopg.Error):
                raise LoadError(f"the load failed and was rolled back: {result.error}") from exc
            raise
        run.rejects.close()
        if sum(result.rows_added.values()):
            # fresh statistics, so that the report's and analysts' first queries get good plans
            conn.execute("ANALYZE trackplays, play_names, tracks, artists, users, timetb")
    return result
