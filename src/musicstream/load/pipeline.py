"""One load run: the engine lists and stages the files → merge → commit.

Everything from staging to the manifest happens in one transaction, so a run that fails or is killed leaves
the tables as they were (rule 11), and a file is in the manifest exactly when its rows are in the tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from musicstream.config import mask_error
from musicstream.db.bulk import (
    LOAD_LOCK,
    MARK_ABANDONED,
    attach_deferred_keys,
    defer_indexes,
    rebuild_indexes,
)
from musicstream.db.connection import Database
from musicstream.db.schema import ROLLUP_TABLES, require_schema
from musicstream.errors import InputError, LoadError, MusicstreamError, TooManyRejects
from musicstream.extract.files import InputFile
from musicstream.faults import point
from musicstream.load import rollups
from musicstream.load.merge import finish, merge
from musicstream.load.staging import repairs_staged
from musicstream.load.state import Engine, LoadOptions, Progress, RunState
from musicstream.load.stats import LoadResult
from musicstream.memory import peak_rss_mb

log = logging.getLogger("musicstream.load")  # shown with --verbose, kept with --log-file


class _NoProgress:
    def start(self, total_bytes: int, files: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def phase(self, name: str) -> None:
        pass

    def step(self, name: str, number: int, total: int) -> None:
        pass


def _top_rejects(conn: psycopg.Connection[Any], limit: int = 3) -> list[dict[str, Any]]:
    """The run's most frequent reject reasons, each with how many records and its first file:line."""
    rows = conn.execute(
        """SELECT reason, count(*), (array_agg(file || CASE WHEN line > 0 THEN ':' || line ELSE '' END
                                               ORDER BY file, line))[1]
           FROM stage_rejects GROUP BY reason ORDER BY 2 DESC, 1 LIMIT %s""",
        (limit,),
    ).fetchall()
    return [{"reason": reason, "records": int(count), "example": example} for reason, count, example in rows]


def _reasons(top: list[dict[str, Any]]) -> str:
    return "Most frequent reasons: " + "; ".join(f"{r['reason']} ({r['records']:,}, e.g. {r['example']})" for r in top)


def _update_run(conn: psycopg.Connection[Any], result: LoadResult) -> None:
    """Record the run's outcome. A run that failed records what it read (when its counts reconcile) and no rows
    added (none were committed); one stopped part way (some files read, not all) records no counts: half-counted
    figures would only mislead."""
    if result.status != "succeeded":  # nothing of it was committed: no rows added, whatever the merge had done
        if result.reconciles:
            result = dataclasses.replace(result, rows_added={})
        else:
            result = LoadResult(run_id=result.run_id, status=result.status, error=result.error)
    conn.execute(
        """
        UPDATE etl_runs SET finished_at = clock_timestamp(), status = %s, files_read = %s, files_skipped = %s,
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


def _refresh_statistics(db: Database, conn: psycopg.Connection[Any], result: LoadResult) -> None:
    """ANALYZE the tables this run grew by more than a tenth, so that the next queries get good plans.

    Autovacuum would get there too, later; a small incremental run leaves the statistics as they are. Each ANALYZE
    reads a sample of its table on one core, so the tables are shared between this connection and a second one,
    the largest first (1M plays: 1.6–2.3 s in a row, 1.0–1.1 s on two). Without a second connection, all run on
    this one.
    """
    sizes = dict(
        conn.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%s)",
            (["trackplays", "play_names", "tracks", "artists", "users", "timetb"],),
        ).fetchall()
    )
    grown = [t for t, before in sizes.items() if result.rows_added.get(t, 1) > 0.1 * max(float(before), 0.0)]
    if "trackplays" in grown:  # the report's rollups grew with the plays
        grown += ROLLUP_TABLES
    if not grown:
        return
    size = dict(
        conn.execute(
            "SELECT relname, pg_relation_size(oid) FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%s)",
            (grown,),
        ).fetchall()
    )
    waiting = deque(sorted(grown, key=lambda t: (-size.get(t, 0), t)))  # the largest first
    other: psycopg.Connection[Any] | None = None
    if len(waiting) > 1:
        with contextlib.suppress(MusicstreamError, psycopg.Error):
            other = db.connect(autocommit=True)
    if other is None:
        _analyze(conn, waiting)
        return
    with other, ThreadPoolExecutor(1) as pool:
        second = pool.submit(_analyze, other, waiting)
        try:
            _analyze(conn, waiting)
        except BaseException:
            waiting.clear()  # the other connection stops after its current table
            raise
        second.result()


def _analyze(conn: psycopg.Connection[Any], waiting: deque[str]) -> None:
    """ANALYZE the tables ``waiting`` holds, one at a time, until none is left (two connections may share it)."""
    while waiting:
        try:
            table = waiting.popleft()
        except IndexError:  # the other connection took the last one
            return
        conn.execute(psycopg.sql.SQL("ANALYZE {}").format(psycopg.sql.Identifier(table)))


_IDENTITIES = (
    ("trackplays", "trackplay_id"),
    ("play_names", "name_id"),
    ("etl_runs", "run_id"),
    ("rejects", "reject_id"),
)


def _identities(conn: psycopg.Connection[Any]) -> list[tuple[str, int, bool]]:
    """The identity columns' sequences: name, last value, and whether that value was used."""
    found: list[tuple[str, int, bool]] = []
    for table, column in _IDENTITIES:
        row = conn.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column)).fetchone()
        assert row is not None and row[0]
        name = psycopg.sql.SQL(row[0])  # a name PostgreSQL itself quoted
        state = conn.execute(psycopg.sql.SQL("SELECT last_value, is_called FROM {}").format(name)).fetchone()
        assert state is not None
        found.append((str(row[0]), int(state[0]), bool(state[1])))
    return found


def _restore_identities(
    conn: psycopg.Connection[Any], before: list[tuple[str, int, bool]], reached: list[tuple[str, int, bool]]
) -> None:
    """After a dry run: sequences do not roll back with a transaction, so give back the ids the dry run drew (a
    sequence that someone else drew from meanwhile stays as it is). The load lock is still held."""
    for (name, last, called), (_, last_reached, called_reached) in zip(before, reached, strict=True):
        if (last_reached, called_reached) == (last, called):
            continue
        conn.execute(
            "SELECT setval(%s::regclass, %s, %s) FROM pg_sequences "
            "WHERE format('%%I.%%I', schemaname, sequencename)::regclass = %s::regclass AND last_value = %s",
            (name, last, called, name, last_reached),
        )


def _record_run(conn: psycopg.Connection[Any], options: LoadOptions, engine: Engine, result: LoadResult) -> None:
    """Mark runs that died as abandoned (none runs: this one holds the lock) and record this one as running."""
    conn.execute(MARK_ABANDONED)
    row = conn.execute(
        "INSERT INTO etl_runs (full_reload, engine, pid, backend_pid) VALUES (%s, %s, %s, pg_backend_pid()) "
        "RETURNING run_id",
        (options.full, engine.name, os.getpid()),
    ).fetchone()
    assert row is not None
    result.run_id = int(row[0])


def _record_failure(db: Database, conn: psycopg.Connection[Any], backend: int, result: LoadResult) -> None:
    """Record a run that failed or was interrupted, and give back what it deferred (the tables are as before the
    run). On the run's own connection when it is usable; else (a Ctrl-C in the middle of a statement or a COPY can
    leave it mid-protocol) that connection's server session is ended, and a new one does it."""
    try:
        if conn.closed or conn.broken:
            raise psycopg.OperationalError("the run's connection is closed")
        _update_run(conn, result)
        with conn.transaction():
            rebuild_indexes(conn)
        return
    except psycopg.Error:
        pass
    with contextlib.suppress(Exception):
        conn.cancel_safe(timeout=5)
    with contextlib.suppress(Exception):
        conn.close()
    try:
        with db.connect(autocommit=True) as fresh:
            # its transaction (and with it the load lock and the run's row) goes with its session
            fresh.execute("SELECT pg_terminate_backend(%s, 30000)", (backend,))
            _update_run(fresh, result)
            got = fresh.execute("SELECT pg_try_advisory_lock(%s)", (LOAD_LOCK,)).fetchone()
            if got and got[0]:
                with fresh.transaction():
                    rebuild_indexes(fresh)
                fresh.execute("SELECT pg_advisory_unlock(%s)", (LOAD_LOCK,))
    except (psycopg.Error, MusicstreamError) as exc:  # the database is gone: the next command settles it
        log.info("could not record run %s as %s: %s", result.run_id, result.status, mask_error(exc))


def _lock(conn: psycopg.Connection[Any], wait: bool) -> None:
    """One load at a time per database: take the lock, or say whom this load waits for (or, without ``wait``, fail
    saying it)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOAD_LOCK,)).fetchone()
    if row and row[0]:
        return
    holder = _lock_holder(conn)
    if not wait:
        which = "" if holder == "another load" else f": {holder}"
        raise LoadError(f"another load is running on this database{which}; try again later, or drop --no-wait to wait")
    log.warning("waiting for %s — Ctrl-C to stop, --no-wait to fail at once", holder)
    conn.execute("SELECT pg_advisory_lock(%s)", (LOAD_LOCK,))


def _lock_holder(conn: psycopg.Connection[Any]) -> str:
    """The load holding the lock, as a user can find it: its run and process (once its run is recorded: a dry run's
    never is), and when it started."""
    row = conn.execute(
        """SELECT r.run_id, r.pid, coalesce(r.started_at, a.backend_start)
           FROM pg_locks l
           LEFT JOIN pg_stat_activity a ON a.pid = l.pid
           LEFT JOIN etl_runs r ON r.backend_pid = l.pid AND r.status = 'running'
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND (l.classid::bigint << 32 | l.objid::bigint) = %s
           ORDER BY r.run_id DESC NULLS LAST
           LIMIT 1""",
        (LOAD_LOCK,),
    ).fetchone()
    if row is None:
        return "another load"
    run_id, pid, started = row
    details = [f"pid {pid}"] if pid is not None else []
    if started is not None:
        details.append(f"started {started.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC")
    who = f"load {run_id}" if run_id is not None else "another load"
    return f"{who} ({', '.join(details)})" if details else who


def run(
    db: Database,
    engine: Engine,
    paths: Sequence[str | Path],
    options: LoadOptions | None = None,
    progress: Progress | None = None,
) -> LoadResult:
    """Load the song and log files under ``paths`` into the star schema, as one atomic run, staged by ``engine``.

    ``musicstream.run_load`` picks the engine from the options and calls this. The run's phases, in order: list the
    files; take the database (schema, lock); record the run and defer the indexes of empty tables; then, in one
    transaction, stage, merge, check the rejects, finish the bookkeeping and commit; then refresh the statistics.
    A failure anywhere is recorded, what was deferred is given back, and nothing is committed.
    """
    options = options or LoadOptions()
    started = time.monotonic()
    started_ns = time.time_ns()  # before the files are listed: their modification times are compared with it
    files = _listed(engine, paths, options)
    result = LoadResult(files_found=len(files))
    run = RunState(result, progress or _NoProgress())
    try:
        with db.connect(autocommit=True) as conn:
            _take_the_database(conn, options)
            ids_before = _identities(conn) if options.dry_run else []
            backend = conn.info.backend_pid
            try:
                if not options.dry_run:
                    _begin(conn, options, engine, result)
                run.progress.start(sum(f.size for f in files), len(files))
                ids_reached = _transaction(conn, run, engine, files, options, started, started_ns)
            except BaseException as exc:
                raise _failed(db, conn, backend, run, engine, options, exc, started) from None
            run.rejects.close()
            if options.dry_run:
                engine.after_failure()  # a dry run ends as a failed one would: whatever it staged goes
                _restore_identities(conn, ids_before, ids_reached or ids_before)
                return result
            started_statistics = time.perf_counter()
            _refresh_statistics(db, conn, result)
            result.timings["statistics"] = round(time.perf_counter() - started_statistics, 4)
            point("analyzed")
    finally:
        run.rejects.close()  # idempotent: also when the run never started
        run.repairs.close()
        result.peak_rss_mb = round(max(result.peak_rss_mb, peak_rss_mb()), 1)
    return result


def _listed(engine: Engine, paths: Sequence[str | Path], options: LoadOptions) -> list[InputFile]:
    """The input files; none is an error unless ``allow_empty`` (usually the wrong path)."""
    files = engine.discover(paths)
    if not files and not options.allow_empty:
        named = ", ".join(str(p) for p in paths)
        raise InputError(
            f"no input files under {named}: song files are *.json (or .json.gz) under song_data/, event logs under "
            "log_data/, or name the files themselves. Nothing was loaded; add --allow-empty if that is expected"
        )
    log.info(
        "%s: %d input files (%.1f MB), engine %s%s",
        "dry run" if options.dry_run else "load",
        len(files),
        sum(f.size for f in files) / 1e6,
        engine.name,
        ", --full" if options.full else "",
    )
    return files


def take_the_database(conn: psycopg.Connection[Any], wait: bool) -> None:
    """What a load takes before its transaction, for other writers of the tables (``load/repair.py``)."""
    _take_the_database(conn, LoadOptions(wait=wait))


def _take_the_database(conn: psycopg.Connection[Any], options: LoadOptions) -> None:
    """The schema is current, the session has room for its temporary tables, and the run holds the load lock."""
    require_schema(conn)
    # The session's buffers for temporary tables: the staged rows and the merge's working tables are read several
    # times each; in PostgreSQL's 8 MB every page of them goes out to a file and back (1M events: stage_plays alone
    # is 220 MB). Only as much as they hold is used. A session-wide SET: the setting cannot change once the session
    # has used a temporary table (a pooled session may have: then the load goes on with the session's own setting).
    with contextlib.suppress(psycopg.errors.InvalidParameterValue):
        conn.execute("SET temp_buffers = '512MB'")
    _lock(conn, options.wait)
    point("locked")


def _begin(conn: psycopg.Connection[Any], options: LoadOptions, engine: Engine, result: LoadResult) -> None:
    """The run recorded as running, and the indexes and keys of the tables still empty dropped (each recorded, to
    be built again once the tables hold their rows: before the commit, or by whoever settles a run that died)."""
    _record_run(conn, options, engine, result)
    point("run-recorded")
    defer_indexes(
        conn,
        ["trackplays", "play_names", "tracks", "timetb", *rollups.DEFERRED],
        keys=["trackplays", "timetb", "play_names", *rollups.DEFERRED],
    )
    point("indexes-deferred")


def _transaction(
    conn: psycopg.Connection[Any],
    run: RunState,
    engine: Engine,
    files: list[InputFile],
    options: LoadOptions,
    started: float,
    started_ns: int,
) -> list[tuple[str, int, bool]] | None:
    """Stage, merge, check the rejects, finish the bookkeeping and commit, in one transaction (a dry run: roll it
    back, and return the identities it reached)."""
    result = run.result
    ids_reached = None
    with conn.transaction():
        if options.dry_run:  # the run's record exists inside the transaction only (rejects name it)
            _record_run(conn, options, engine, result)
        # Room for the merge's hashes and sorts (in memory, not spilled to disk: 2 s less on 1M plays), and for the
        # index builds of tables that were empty (1.6 s → 0.9 s per fact-table index).
        conn.execute("SET LOCAL work_mem = '512MB'")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        # Parallel workers for the merge's scans and aggregates of whole tables (a 1M first load's session rollup:
        # 2.5 s → 1.5 s on two cores). PostgreSQL's default costs judge gathering the partial rows dearer than it
        # is, and never start workers for these statements.
        conn.execute("SET LOCAL parallel_setup_cost = 100")
        conn.execute("SET LOCAL parallel_tuple_cost = 0.01")
        # A small run on a large history joins its few thousand names and times to the stored ones by index
        # probes, not by hashing every stored row (a cost that grows with history: benchmarks/README.md,
        # "Freshness"). PostgreSQL's default cost of a random page, 4, is a spinning disk's; the pages a merge
        # probes are in memory or on SSD. A first load of 1M events plans the same either way.
        conn.execute("SET LOCAL random_page_cost = 1.1")
        if options.statement_timeout:
            timeout_ms = str(max(1, round(options.statement_timeout * 1000)))
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (timeout_ms,))
        started_stage = time.perf_counter()
        staged = engine.stage(conn, run, files, options.full, started_ns)
        run.staged_plays, run.staged_songs = staged.plays, staged.songs
        result.names_repaired, result.spellings_repaired = repairs_staged(conn)
        result.timings["read_and_copy"] = round(time.perf_counter() - started_stage, 4)
        log.info(
            "read %d files, %d records (%d rejected) in %.1f s; merging",
            result.files_read,
            result.records_read,
            result.rejected,
            result.timings["read_and_copy"],
        )
        merging = merge(conn, run)
        _check_rejects(conn, result, options)
        finish(merging)
        if options.dry_run:
            result.status = "dry-run"
            result.run_id = 0  # its record was rolled back with the rest
            result.seconds = round(time.monotonic() - started, 3)
            ids_reached = _identities(conn)
            raise psycopg.Rollback()  # everything the run did is undone; the counts stay
        engine.before_commit(conn)
        started_keys = time.perf_counter()
        if attach_deferred_keys(conn):
            result.timings["attach_keys"] = round(time.perf_counter() - started_keys, 4)
        result.status = "succeeded"
        result.seconds = round(time.monotonic() - started, 3)
        _update_run(conn, result)
        point("commit")
    if not options.dry_run:
        point("committed")
    log.info(
        "%s in %.1f s: %d records read, %d loaded, %d skipped by rule, %d duplicates, %d rejected",
        f"run {result.run_id} committed" if result.run_id else "dry run rolled back",
        result.seconds,
        result.records_read,
        result.records_loaded,
        result.records_skipped,
        result.duplicates,
        result.rejected,
    )
    return ids_reached


def _check_rejects(conn: psycopg.Connection[Any], result: LoadResult, options: LoadOptions) -> None:
    """The run fails when it rejected more than --max-rejects, or everything it read (unless --allow-empty)."""
    result.top_rejects = _top_rejects(conn) if result.rejected else []
    if options.max_rejects is not None and result.rejected > options.max_rejects:
        raise TooManyRejects(
            f"{result.rejected} records were rejected, more than --max-rejects {options.max_rejects}; "
            f"nothing was loaded. {_reasons(result.top_rejects)}. Fix the input, or raise --max-rejects"
        )
    if result.records_read and result.rejected == result.records_read and not options.allow_empty:
        raise LoadError(
            f"every record read was rejected ({result.rejected:,}): nothing was loaded. "
            f"{_reasons(result.top_rejects)}. Is this the right input? Add --allow-empty to record "
            "the rejects anyway"
        )


def _failed(
    db: Database,
    conn: psycopg.Connection[Any],
    backend: int,
    run: RunState,
    engine: Engine,
    options: LoadOptions,
    exc: BaseException,
    started: float,
) -> BaseException:
    """A run that failed or was interrupted: its result says why, it is recorded, what it deferred is given back,
    and whatever it staged goes. Returns what to raise."""
    result = run.result
    interrupted = isinstance(exc, KeyboardInterrupt)
    result.status = "interrupted" if interrupted else "failed"
    result.seconds = round(time.monotonic() - started, 3)
    if interrupted:
        result.error = f"interrupted (Ctrl-C) after {result.seconds:.1f} s, before the commit: nothing was committed"
    elif isinstance(exc, MusicstreamError):
        result.error = str(exc)
    elif isinstance(exc, psycopg.errors.QueryCanceled):
        result.error = (
            f"a statement ran longer than the statement timeout ({options.statement_timeout} s): "
            f"{mask_error(exc).strip()}. Nothing was committed; raise --statement-timeout and run it again"
        )
    elif isinstance(exc, psycopg.Error) and (conn.broken or conn.closed):
        result.error = (
            "lost the connection to the database during the load (the server restarted, or the "
            f"connection was dropped): {mask_error(exc).strip()}. Nothing was committed; run the load again"
        )
    elif isinstance(exc, psycopg.Error):
        result.error = f"database error: {mask_error(exc).strip()}"
    else:
        result.error = f"{type(exc).__name__}: {mask_error(exc)}"
    if not options.dry_run:
        _record_failure(db, conn, backend, result)
    run.rejects.close()
    engine.after_failure()
    log.info("run %s %s after %.1f s: %s", result.run_id, result.status, result.seconds, result.error)
    if isinstance(exc, psycopg.Error):
        return LoadError(f"the load failed and nothing was changed: {result.error}")
    return exc
