"""One load run: the engine lists and stages the files → merge → commit.

Everything from staging to the manifest happens in one transaction, so a run that fails or is killed leaves
the tables as they were (rule 11), and a file is in the manifest exactly when its rows are in the tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from musicstream.config import mask_error
from musicstream.db.bulk import (
    LOAD_LOCK,
    MARK_ABANDONED,
    attach_deferred_keys,
    defer_indexes,
    deferred_definition,
    key_index_name,
    rebuild_indexes,
)
from musicstream.db.connection import Database
from musicstream.db.schema import ROLLUP_TABLES, require_schema
from musicstream.db.sqlfiles import named_statements
from musicstream.errors import InputError, LoadError, MusicstreamError, TooManyRejects
from musicstream.faults import point
from musicstream.load.state import Engine, Progress, RunState
from musicstream.load.stats import LoadResult, peak_rss_mb


class _NoProgress:
    def start(self, total_bytes: int, files: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def phase(self, name: str) -> None:
        pass

    def step(self, name: str, number: int, total: int) -> None:
        pass


@dataclass(frozen=True)
class LoadOptions:
    """How to run a load.

    ``full`` re-reads files the manifest lists as unchanged; ``max_rejects`` turns more rejects than that into
    a failed (rolled back) run; ``allow_empty`` lets a run that finds no input file, or rejects every record it
    reads, succeed (else it fails: usually the wrong path); ``wait`` waits for another load on the same
    database instead of failing; ``workers`` is the number of parsing processes of the local engine (default: one
    per core);
    ``statement_timeout`` (seconds) fails the run when one statement takes longer. ``engine`` "spark" reads and
    stages the files with Spark (``master``: its master URL, ``local[2]`` by default); the merge is the same.
    ``dry_run`` does everything a load does, in its transaction, and rolls it back: the counts are exactly what
    the load would do to this database, and nothing is written (no run recorded, no index dropped).
    """

    full: bool = False
    max_rejects: int | None = None
    allow_empty: bool = False
    wait: bool = True
    workers: int | None = None
    statement_timeout: float | None = None
    engine: str = "local"
    master: str | None = None
    dry_run: bool = False


# The merge's steps, in order: each is a crash point (tests/test_crash.py) and a line of the progress display.
MERGE_STEPS = (
    "touched_artist_keys",
    "merge_artists",
    "merge_tracks",
    "stage_names",
    "names_to_resolve",
    "resolve",
    "inferred_artists",
    "inferred_tracks",
    "insert_names",
    "name_spellings",
    "update_names",
    "inferred_artist_names",
    "inferred_track_titles",
    "merge_users",
    "insert_plays",
    "drop_unused_names",
    "insert_time",
    "session_sums",
    "rollup_sessions",
    "rollup_hours",
    "rebuild_indexes",
    "moved_sessions",
    "reresolve_plays",
    "recount_catalog_plays",
    "touched_days",
    "touched_days_moved",
    "day_tops",
    "day_sets",
    "day_tier_moves",
    "session_lengths",
    "delete_orphan_tracks",
    "delete_orphan_artists",
    "refresh_mtimes",
    "replace_rejects",
    "insert_rejects",
    "record_files",
)
_STEP_NUMBERS = {name: number for number, name in enumerate(MERGE_STEPS, start=1)}

log = logging.getLogger("musicstream.load")  # shown with --verbose, kept with --log-file


def _step(run: RunState, name: str) -> None:
    """The merge reaches a step: its crash point, and the progress display's "step k of n"."""
    point(f"merge:{name}")
    log.info("merge step %d/%d: %s", _STEP_NUMBERS[name], len(MERGE_STEPS), name)
    run.progress.step(name.replace("_", " "), _STEP_NUMBERS[name], len(MERGE_STEPS))


_EXPLAIN = os.environ.get("MUSICSTREAM_EXPLAIN")  # profiling aid: append each merge step's plan to this file


def _explain(conn: psycopg.Connection[Any], name: str, params: dict[str, Any] | None, query: str) -> None:
    if not _EXPLAIN:
        return
    if query.lstrip().upper().startswith(("CREATE", "ANALYZE")):
        return
    with conn.transaction():  # a savepoint: the plan's execution is rolled back, then the step runs for real
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params).fetchall()
        with open(_EXPLAIN, "a", encoding="utf-8") as out:
            out.write(f"-- {name}\n" + "\n".join(str(row[0]) for row in plan) + "\n\n")
        raise psycopg.Rollback()


def _scalar(conn: psycopg.Connection[Any], run: RunState, name: str, params: dict[str, Any] | None = None) -> int:
    _step(run, name)
    query = named_statements("load/merge")[name]
    _explain(conn, name, params, query)
    started = time.perf_counter()
    row = conn.execute(query, params).fetchone()
    run.result.timings[name] = round(time.perf_counter() - started, 4)
    return int(row[0]) if row and row[0] is not None else 0


def _exec(
    conn: psycopg.Connection[Any],
    run: RunState,
    name: str,
    params: dict[str, Any] | None = None,
    statement: str | None = None,
    *,
    again: bool = False,
    edit: Callable[[str], str] | None = None,
) -> int:
    """Run the merge step ``name`` (its named statement, or the variant ``statement`` of it, changed by ``edit``
    when given); ``again``: the step was reached already (its crash point passed) and is run a second time, its
    time added to the first's."""
    if not again:
        _step(run, name)
    query = named_statements("load/merge")[statement or name]
    if edit is not None:
        query = edit(query)
    _explain(conn, statement or name, params, query)
    started = time.perf_counter()
    cur = conn.execute(query, params)
    spent = time.perf_counter() - started
    run.result.timings[name] = round(spent + (run.result.timings.get(name, 0.0) if again else 0.0), 4)
    return cur.rowcount


# The rollups the day refreshes write, after rebuild_indexes: when they were empty at the start of the run (a first
# load), their keys and indexes are built once they hold their rows, before the commit (attach_deferred_keys). The
# four refreshes of a 1M first load, on a truncated copy: 7.4–9.3 s into indexed tables, 6.3–7.7 s without the
# indexes plus 0.23–0.31 s to build them; in whole 1M first loads (four alternating pairs), the refreshes and the
# attachment 5.76–6.13 → 5.37–6.11 s.
LATE_ROLLUPS = ("rollup_day_tops", "rollup_user_days", "rollup_session_lengths")

_NATURAL_KEY = key_index_name("trackplays_natural_key")  # the fact table's natural key, while it is deferred


_WINNERS = re.compile(
    r"(?s)(.*?\bSELECT )DISTINCT ON \([^)]*\)\s*(.*?)\n(?:--[^\n]*\n)*WHERE NOT EXISTS \(\n.*?\n\)\nORDER BY [^;]*;?\s*"
)


def unsorted_plays(statement: str) -> str:
    """``insert_plays`` for a fact table that was empty when the run began, without what picks each repeated
    natural key's winner (its DISTINCT ON and its ORDER BY) and without its lookup of stored keys (none are
    stored): the same plays, in the order staged, when no key repeats. The lookup's condition is false then, but
    its anti-join still ran once per staged play (837,279 plays: 0.7 s of the step's 4.5 s in its plan)."""
    return _taken_out(_WINNERS, statement, "insert_plays has no DISTINCT ON … NOT EXISTS … ORDER BY")


_TIME_KEY = key_index_name("timetb_pkey")  # timetb's key, while it is deferred

_KNOWN_TIMES = re.compile(r"(?s)(.*?)\nWHERE NOT EXISTS \(SELECT 1 FROM timetb [^\n]*\)\nORDER BY start_time;?\s*")


def new_times_only(statement: str) -> str:
    """``insert_time`` without its lookup of the start times already stored and without its order: the distinct
    start times of the run's plays, for a timetb that was empty when the run began."""
    return _taken_out(_KNOWN_TIMES, statement, "insert_time has no NOT EXISTS … ORDER BY")


def _taken_out(clauses: re.Pattern[str], statement: str, missing: str) -> str:
    """A merge statement without some of its clauses: the text of ``clauses``' groups (what stays), in order."""
    match = clauses.fullmatch(statement)
    if match is None:
        raise AssertionError(f"{missing} to take out")
    return "".join(match.groups())


def _insert_time(conn: psycopg.Connection[Any], run: RunState, ids: dict[str, int]) -> int:
    """Rule 4: a timetb row per new start time (``insert_time``). Into a timetb that was empty when the run began
    (its key deferred, db/bulk.py: nothing else writes it in a run), every distinct start time of the run's plays is
    new, so the lookup of stored times and the order go (1M plays: the step's plan 2.6 s, of which 0.7 s are the
    empty lookup's merge join and the sort it needs); the key, built after, checks that they are distinct."""
    first = deferred_definition(conn, _TIME_KEY) is not None
    return _exec(conn, run, "insert_time", ids, edit=new_times_only if first else None)


def _insert_plays(conn: psycopg.Connection[Any], run: RunState, ids: dict[str, int]) -> int:
    """Rules 1 and 2: the run's new plays (``insert_plays``). Into an empty fact table whose natural key is
    deferred (a first load), first without the sort that picks each repeated key's winner, the key's unique index
    built at once as the check that no key repeats; when one does, that attempt is rolled back (a savepoint) and
    ``insert_plays`` runs as written. Measured on 837,279 plays, alternating with the code before: 10.0 s →
    4.7 s, plus 0.8 s for the key's index (built here instead of in rebuild_indexes)."""
    build_key = deferred_definition(conn, _NATURAL_KEY) if ids["after_play"] == 0 else None
    if build_key is not None:
        try:
            with conn.transaction():
                plays = _exec(conn, run, "insert_plays", ids, edit=unsorted_plays)
                started = time.perf_counter()
                conn.execute(build_key)  # a definition PostgreSQL itself wrote (bulk.defer_indexes)
                run.result.timings["natural_key"] = round(time.perf_counter() - started, 4)
            return plays
        except psycopg.errors.UniqueViolation:
            log.info("a natural key repeats in this run's plays: inserting them again, each key's winner only")
            return _exec(conn, run, "insert_plays", ids, again=True)
    return _exec(conn, run, "insert_plays", ids)


def _merge(conn: psycopg.Connection[Any], run: RunState) -> None:
    result = run.result
    row = conn.execute(named_statements("load/merge")["max_ids"]).fetchone()
    assert row is not None
    ids = {"after_play": int(row[0]), "after_name": int(row[1])}
    conn.execute("ANALYZE stage_plays")
    started = time.perf_counter()
    added: dict[str, int] = {}
    _exec(conn, run, "touched_artist_keys")
    added["artists"] = _scalar(conn, run, "merge_artists")
    added["tracks"] = _scalar(conn, run, "merge_tracks")
    new_tracks = added["tracks"]
    _exec(conn, run, "stage_names")
    _exec(conn, run, "names_to_resolve")
    _exec(conn, run, "resolve")
    conn.execute("ANALYZE resolution")
    added["artists"] += _exec(conn, run, "inferred_artists")
    added["tracks"] += _exec(conn, run, "inferred_tracks")
    added["play_names"] = _exec(conn, run, "insert_names")
    if not ids["after_name"]:  # the names' keys wait for the end (a first load): the planner learns them here
        conn.execute("ANALYZE play_names")
    moved_names = 0
    if ids["after_name"]:
        _exec(conn, run, "name_spellings")
        moved_names = _exec(conn, run, "update_names")
        _exec(conn, run, "inferred_artist_names", ids)
        _exec(conn, run, "inferred_track_titles", ids)
    else:  # no names before this run, so no inferred rows either: those just added carry the smallest spelling
        for step in ("name_spellings", "update_names", "inferred_artist_names", "inferred_track_titles"):
            _step(run, step)
    added["users"] = _scalar(conn, run, "merge_users")  # before the plays that reference them
    new_plays = _insert_plays(conn, run, ids)
    added["trackplays"] = new_plays
    dropped = 0
    if new_plays < run.staged_plays:  # only a duplicate's name can be left without a play
        dropped = _exec(conn, run, "drop_unused_names", ids)
        added["play_names"] -= dropped
    else:
        _step(run, "drop_unused_names")  # the step is a no-op; its crash point stays where it was
    added["timetb"] = _insert_time(conn, run, ids)
    _exec(conn, run, "session_sums", ids)
    # into an empty rollup whose key is deferred (a first load): a plain INSERT, the key built after it
    row = conn.execute("SELECT to_regclass('rollup_sessions_key') IS NULL").fetchone()
    _exec(conn, run, "rollup_sessions", ids, "rollup_sessions_first" if row and row[0] else None)
    _exec(conn, run, "rollup_hours", ids)
    _step(run, "rebuild_indexes")
    started = time.perf_counter()
    # and the foreign keys of tables that were empty, every row checked at once; the keys of the fact table and
    # timetb are attached to their indexes last, before the commit (their lock would block readers until then).
    # The late rollups, written below, have their indexes built then too.
    rebuild_indexes(conn, attach_keys=False, later=LATE_ROLLUPS)
    result.timings["rebuild_indexes"] = round(time.perf_counter() - started, 4)
    moved = 0
    if run.staged_songs:
        _exec(conn, run, "moved_sessions", ids)
        moved = _exec(conn, run, "reresolve_plays", ids)
        _exec(conn, run, "recount_catalog_plays")
    _exec(conn, run, "touched_days", ids)
    if run.staged_songs:  # only a song file can move known plays (rule 8)
        _exec(conn, run, "touched_days_moved", ids)
    else:
        _step(run, "touched_days_moved")
    _exec(conn, run, "day_tops")
    _exec(conn, run, "day_sets")
    _exec(conn, run, "day_tier_moves")
    _exec(conn, run, "session_lengths")
    if dropped or moved_names:  # a track or artist loses its last name only when a name goes or moves
        added["tracks"] -= _exec(conn, run, "delete_orphan_tracks")
        added["artists"] -= _exec(conn, run, "delete_orphan_artists")
    else:
        _step(run, "delete_orphan_tracks")
        _step(run, "delete_orphan_artists")
    result.rows_added.update(added)
    result.rows_added["plays_moved_to_catalog"] = moved
    result.records_loaded = new_plays + new_tracks
    result.duplicates = (run.staged_plays - new_plays) + (run.staged_songs - new_tracks)


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


def _finish(conn: psycopg.Connection[Any], run: RunState) -> None:
    params = {"run_id": run.result.run_id}
    _exec(conn, run, "refresh_mtimes")
    _exec(conn, run, "replace_rejects")
    _exec(conn, run, "insert_rejects", params)
    _exec(conn, run, "record_files", params)


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
        "INSERT INTO etl_runs (full_reload, engine) VALUES (%s, %s) RETURNING run_id",
        (options.full, engine.name),
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
    if wait:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOAD_LOCK,))
        return
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOAD_LOCK,)).fetchone()
    if not row or not row[0]:
        raise LoadError("another load is running on this database; try again later, or drop --no-wait to wait")


def run(
    db: Database,
    engine: Engine,
    paths: Sequence[str | Path],
    options: LoadOptions | None = None,
    progress: Progress | None = None,
) -> LoadResult:
    """Load the song and log files under ``paths`` into the star schema, as one atomic run, staged by ``engine``.

    ``musicstream.run_load`` picks the engine from the options and calls this.
    """
    options = options or LoadOptions()
    started = time.monotonic()
    started_ns = time.time_ns()  # before the files are listed: their modification times are compared with it
    files = engine.discover(paths)
    if not files and not options.allow_empty:
        named = ", ".join(str(p) for p in paths)
        raise InputError(
            f"no input files under {named}: song files are *.json (or .json.gz) under song_data/, event logs under "
            "log_data/, or name the files themselves. Nothing was loaded; add --allow-empty if that is expected"
        )
    result = LoadResult(files_found=len(files))
    log.info(
        "%s: %d input files (%.1f MB), engine %s%s",
        "dry run" if options.dry_run else "load",
        len(files),
        sum(f.size for f in files) / 1e6,
        engine.name,
        ", --full" if options.full else "",
    )
    run = RunState(result, progress or _NoProgress())
    try:
        with db.connect(autocommit=True) as conn:
            require_schema(conn)
            # The session's buffers for temporary tables: the staged rows and the merge's working tables are read
            # several times each; in PostgreSQL's 8 MB every page of them goes out to a file and back (1M events:
            # stage_plays alone is 220 MB). Only as much as they hold is used. A session-wide SET: the setting
            # cannot change once the session has used a temporary table (a pooled session may have: then the
            # load goes on with the session's own setting).
            with contextlib.suppress(psycopg.errors.InvalidParameterValue):
                conn.execute("SET temp_buffers = '512MB'")
            _lock(conn, options.wait)
            point("locked")
            ids_before = _identities(conn) if options.dry_run else []
            ids_reached = ids_before  # a dry run that fails part way may leave gaps in the ids (as a failed load)
            backend = conn.info.backend_pid
            try:
                if not options.dry_run:
                    _record_run(conn, options, engine, result)
                    point("run-recorded")
                    defer_indexes(
                        conn,
                        ["trackplays", "play_names", "tracks", "timetb", "rollup_sessions", *LATE_ROLLUPS],
                        keys=["trackplays", "timetb", "rollup_sessions", "play_names", *LATE_ROLLUPS],
                    )
                    point("indexes-deferred")
                run.progress.start(sum(f.size for f in files), len(files))
                with conn.transaction():
                    if options.dry_run:  # the run's record exists inside the transaction only (rejects name it)
                        _record_run(conn, options, engine, result)
                    # Room for the merge's hashes and sorts (in memory, not spilled to disk: 2 s less on 1M plays),
                    # and for the index builds of tables that were empty (1.6 s → 0.9 s per fact-table index).
                    conn.execute("SET LOCAL work_mem = '512MB'")
                    conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
                    # Parallel workers for the merge's scans and aggregates of whole tables (a 1M first load's
                    # session rollup: 2.5 s → 1.5 s on two cores). PostgreSQL's default costs judge gathering the
                    # partial rows dearer than it is, and never start workers for these statements.
                    conn.execute("SET LOCAL parallel_setup_cost = 100")
                    conn.execute("SET LOCAL parallel_tuple_cost = 0.01")
                    if options.statement_timeout:
                        timeout_ms = str(max(1, round(options.statement_timeout * 1000)))
                        conn.execute("SELECT set_config('statement_timeout', %s, true)", (timeout_ms,))
                    started_stage = time.perf_counter()
                    engine.stage(conn, run, files, options.full, started_ns)
                    result.timings["read_and_copy"] = round(time.perf_counter() - started_stage, 4)
                    log.info(
                        "read %d files, %d records (%d rejected) in %.1f s; merging",
                        result.files_read,
                        result.records_read,
                        result.rejected,
                        result.timings["read_and_copy"],
                    )
                    _merge(conn, run)
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
                    _finish(conn, run)
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
            except BaseException as exc:
                interrupted = isinstance(exc, KeyboardInterrupt)
                result.status = "interrupted" if interrupted else "failed"
                result.seconds = round(time.monotonic() - started, 3)
                if interrupted:
                    result.error = (
                        f"interrupted (Ctrl-C) after {result.seconds:.1f} s, before the commit: nothing was committed"
                    )
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
                if isinstance(exc, MusicstreamError):
                    raise
                if isinstance(exc, psycopg.Error):
                    raise LoadError(f"the load failed and nothing was changed: {result.error}") from None
                raise
            run.rejects.close()
            if options.dry_run:
                engine.after_failure()  # a dry run ends as a failed one would: whatever it staged goes
                _restore_identities(conn, ids_before, ids_reached)
                return result
            _refresh_statistics(db, conn, result)
            point("analyzed")
    finally:
        run.rejects.close()  # idempotent: also when the run never started
        result.peak_rss_mb = round(max(result.peak_rss_mb, peak_rss_mb()), 1)
    return result
