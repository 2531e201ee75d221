"""The merge: the staged rows → the star schema and the report's rollups, inside the run's transaction.

``STEPS`` is the merge, step by step, in order: each step's name is its statement in ``sql/load/merge.sql`` (or
the name of what it does in Python), its crash point (``merge:NAME``, tests/test_crash.py), its line in the
progress display and its timing; its phase says what it maintains. The run walks the list (``merge`` the star
and rollup phases, ``finish`` the bookkeeping); nothing else lists the steps. A step whose ``when`` is false is
passed: its crash point and its progress line stay, so every run shows the same steps.

A first load's variant of a statement is a statement of its own (``insert_plays_first``, ``insert_time_first``,
``rollup_sessions_first``): tests/test_order_independence.py holds each to the statement it stands for.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from musicstream.db.bulk import deferred_definition, key_index_name, rebuild_indexes
from musicstream.db.sqlfiles import named_statements
from musicstream.faults import point
from musicstream.load.state import RunState

log = logging.getLogger("musicstream.load")  # shown with --verbose, kept with --log-file

STAR, ROLLUPS, FINISH = "star", "rollups", "finish"

# The rollups the day refreshes write, after rebuild_indexes: when they were empty at the start of the run (a first
# load), their keys and indexes are built once they hold their rows, before the commit (attach_deferred_keys). The
# four refreshes of a 1M first load, on a truncated copy: 7.4–9.3 s into indexed tables, 6.3–7.7 s without the
# indexes plus 0.23–0.31 s to build them; in whole 1M first loads (four alternating pairs), the refreshes and the
# attachment 5.76–6.13 → 5.37–6.11 s.
LATE_ROLLUPS = ("rollup_day_tops", "rollup_user_days", "rollup_session_lengths")

_NATURAL_KEY = key_index_name("trackplays_natural_key")  # the fact table's natural key, while it is deferred
_TIME_KEY = key_index_name("timetb_pkey")  # timetb's key, while it is deferred
_SESSIONS_KEY = "rollup_sessions_key"  # rollup_sessions' key: missing while deferred (a first load)


@dataclass
class Merge:
    """One merge under way: the run, the ids before it, and the counts its steps keep."""

    conn: psycopg.Connection[Any]
    run: RunState
    ids: dict[str, int]
    added: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def params(self, which: str | None) -> dict[str, Any] | None:
        if which == "ids":
            return self.ids
        if which == "run":
            return {"run_id": self.run.result.run_id}
        return None


@dataclass(frozen=True)
class Step:
    """One step of the merge.

    ``name``: its statement in sql/load/merge.sql (unless ``does``), crash point, progress line and timing.
    ``phase``: what it maintains (STAR, ROLLUPS, or FINISH: the run's bookkeeping, after the reject checks).
    ``when``: it runs only when this holds (else it is passed). ``params``: "ids" (the largest play and name ids
    before the run) or "run" (the run's id). ``scalar``: its statement returns its count as its one value (an
    upsert's new rows), else the count is the rows it wrote. ``adds``: the count is added to this table's rows
    added (``-table``: taken from them). ``keeps``: the count is kept under this name for later steps.
    ``does``: what it does, when more than its statement (a first load's variant, an index build). ``analyze``:
    a table analysed after it, when ``analyze_when`` holds (always when None)."""

    name: str
    phase: str
    when: Callable[[Merge], bool] | None = None
    params: str | None = None
    scalar: bool = False
    adds: str | None = None
    keeps: str | None = None
    does: Callable[[Merge, Step], int] | None = None
    analyze: str | None = None
    analyze_when: Callable[[Merge], bool] | None = None

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    @property
    def point(self) -> str:
        return f"merge:{self.name}"


_EXPLAIN = os.environ.get("MUSICSTREAM_EXPLAIN")  # profiling aid: append each merge step's plan to this file


def _statement(name: str) -> str:
    return named_statements("load/merge")[name]


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


def execute(m: Merge, step: Step, statement: str | None = None, *, again: bool = False) -> int:
    """Run ``step``'s statement (or the named ``statement`` standing for it) and time it; its count. ``again``: the
    step ran once already in this merge (a first load's attempt, rolled back), its time is added to the first's."""
    params = m.params(step.params)
    query = _statement(statement or step.name)
    _explain(m.conn, statement or step.name, params, query)
    started = time.perf_counter()
    cur = m.conn.execute(query, params)
    if step.scalar:
        row = cur.fetchone()
        count = int(row[0]) if row and row[0] is not None else 0
    else:
        count = cur.rowcount
    timings = m.run.result.timings
    timings[step.name] = round(time.perf_counter() - started + (timings.get(step.name, 0.0) if again else 0.0), 4)
    return count


def _insert_plays(m: Merge, step: Step) -> int:
    """Rules 1 and 2: the run's new plays. Into an empty fact table whose natural key is deferred (a first load),
    first ``insert_plays_first``: no sort to pick each repeated key's winner and no lookup of stored keys, the
    key's unique index built at once as the check that no key repeats; when one does, that attempt is rolled back
    (a savepoint) and ``insert_plays`` runs as written. Measured on 837,279 plays, alternating with the code
    before: 10.0 s → 4.7 s, plus 0.8 s for the key's index (built here instead of in rebuild_indexes)."""
    build_key = deferred_definition(m.conn, _NATURAL_KEY) if m.ids["after_play"] == 0 else None
    if build_key is None:
        return execute(m, step)
    try:
        with m.conn.transaction():
            plays = execute(m, step, "insert_plays_first")
            started = time.perf_counter()
            m.conn.execute(build_key)  # a definition PostgreSQL itself wrote (bulk.defer_indexes)
            m.run.result.timings["natural_key"] = round(time.perf_counter() - started, 4)
        return plays
    except psycopg.errors.UniqueViolation:
        log.info("a natural key repeats in this run's plays: inserting them again, each key's winner only")
        return execute(m, step, again=True)


def _insert_time(m: Merge, step: Step) -> int:
    """Rule 4: a timetb row per new start time. Into a timetb that was empty when the run began (its key deferred,
    db/bulk.py: nothing else writes it in a run), every distinct start time of the run's plays is new:
    ``insert_time_first`` has no lookup of stored times and no order (1M plays: the step's plan 2.6 s, of which
    0.7 s are the empty lookup's merge join and the sort it needs); the key, built after, checks they are distinct."""
    first = deferred_definition(m.conn, _TIME_KEY) is not None
    return execute(m, step, "insert_time_first" if first else None)


def _rollup_sessions(m: Merge, step: Step) -> int:
    """Into an empty rollup whose key is deferred (a first load): a plain INSERT, the key built after it."""
    row = m.conn.execute("SELECT to_regclass(%s) IS NULL", (_SESSIONS_KEY,)).fetchone()
    return execute(m, step, "rollup_sessions_first" if row and row[0] else None)


def _rebuild_indexes(m: Merge, step: Step) -> int:
    """The indexes of tables that were empty, and their foreign keys, every row checked at once. The keys of the
    fact table and timetb are attached to their indexes last, before the commit (their lock would block readers
    until then); the late rollups, written below, have their indexes built then too."""
    started = time.perf_counter()
    built = rebuild_indexes(m.conn, attach_keys=False, later=LATE_ROLLUPS)
    m.run.result.timings[step.name] = round(time.perf_counter() - started, 4)
    return built


def _names_before(m: Merge) -> bool:
    """Names stored before this run: without them, no inferred rows either, and the names just added carry the
    smallest spelling already."""
    return m.ids["after_name"] > 0


def _some_plays_repeat(m: Merge) -> bool:
    """Only a duplicate's name can be left without a play."""
    return m.kept["new_plays"] < m.run.staged_plays


def _songs_staged(m: Merge) -> bool:
    """Only a song file can move known plays (rule 8)."""
    return m.run.staged_songs > 0


def _names_went(m: Merge) -> bool:
    """A track or artist loses its last name only when a name goes or moves."""
    return bool(m.kept.get("dropped_names") or m.kept.get("moved_names"))


def _first_names(m: Merge) -> bool:
    """The names' keys wait for the end (a first load): the planner learns them here."""
    return not _names_before(m)


STEPS: tuple[Step, ...] = (
    Step("touched_artist_keys", STAR),
    Step("merge_artists", STAR, scalar=True, adds="artists"),
    Step("merge_tracks", STAR, scalar=True, adds="tracks", keeps="new_tracks"),
    Step("stage_names", STAR),
    Step("names_to_resolve", STAR),
    Step("resolve", STAR, analyze="resolution"),
    Step("inferred_artists", STAR, adds="artists"),
    Step("inferred_tracks", STAR, adds="tracks"),
    Step("insert_names", STAR, adds="play_names", analyze="play_names", analyze_when=_first_names),
    Step("name_spellings", STAR, when=_names_before),
    Step("update_names", STAR, when=_names_before, keeps="moved_names"),
    Step("inferred_artist_names", STAR, when=_names_before, params="ids"),
    Step("inferred_track_titles", STAR, when=_names_before, params="ids"),
    Step("merge_users", STAR, scalar=True, adds="users"),  # before the plays that reference them
    Step("insert_plays", STAR, params="ids", adds="trackplays", keeps="new_plays", does=_insert_plays),
    Step("drop_unused_names", STAR, when=_some_plays_repeat, params="ids", adds="-play_names", keeps="dropped_names"),
    Step("insert_time", STAR, params="ids", adds="timetb", does=_insert_time),
    Step("session_sums", ROLLUPS, params="ids"),
    Step("rollup_sessions", ROLLUPS, params="ids", does=_rollup_sessions),
    Step("rollup_hours", ROLLUPS, params="ids"),
    Step("rebuild_indexes", STAR, does=_rebuild_indexes),
    Step("moved_sessions", ROLLUPS, when=_songs_staged, params="ids"),
    Step("reresolve_plays", STAR, when=_songs_staged, params="ids", keeps="moved_plays"),
    Step("recount_catalog_plays", ROLLUPS, when=_songs_staged),
    Step("touched_days", ROLLUPS, params="ids"),
    Step("touched_days_moved", ROLLUPS, when=_songs_staged, params="ids"),
    Step("day_tops", ROLLUPS),
    Step("day_sets", ROLLUPS),
    Step("day_tier_moves", ROLLUPS),
    Step("session_lengths", ROLLUPS),
    Step("delete_orphan_tracks", STAR, when=_names_went, adds="-tracks"),
    Step("delete_orphan_artists", STAR, when=_names_went, adds="-artists"),
    Step("refresh_mtimes", FINISH),
    Step("replace_rejects", FINISH),
    Step("insert_rejects", FINISH, params="run"),
    Step("replace_repairs", FINISH),
    Step("insert_repairs", FINISH, params="run"),
    Step("record_files", FINISH, params="run"),
)
_NUMBERS = {step.name: number for number, step in enumerate(STEPS, start=1)}


def _reach(m: Merge, step: Step) -> None:
    """The merge reaches a step: its crash point, its log line and the progress display's "step k of n"."""
    point(step.point)
    log.info("merge step %d/%d: %s", _NUMBERS[step.name], len(STEPS), step.name)
    m.run.progress.step(step.label, _NUMBERS[step.name], len(STEPS))


def _walk(m: Merge, phases: tuple[str, ...]) -> None:
    for step in (s for s in STEPS if s.phase in phases):
        _reach(m, step)
        if step.when is not None and not step.when(m):
            continue
        count = step.does(m, step) if step.does is not None else execute(m, step)
        if step.adds is not None:
            table = step.adds.lstrip("-")
            m.added[table] = m.added.get(table, 0) + (-count if step.adds.startswith("-") else count)
        if step.keeps is not None:
            m.kept[step.keeps] = count
        if step.analyze is not None and (step.analyze_when is None or step.analyze_when(m)):
            m.conn.execute(f"ANALYZE {step.analyze}")  # a name of the list above, not input


def merge(conn: psycopg.Connection[Any], run: RunState) -> Merge:
    """The star and rollup phases: every staged row merged; the run's result gets the rows added."""
    row = conn.execute(_statement("max_ids")).fetchone()
    assert row is not None
    m = Merge(conn, run, {"after_play": int(row[0]), "after_name": int(row[1])})
    conn.execute("ANALYZE stage_plays")
    _walk(m, (STAR, ROLLUPS))
    result = run.result
    result.rows_added.update(m.added)
    result.rows_added["plays_moved_to_catalog"] = m.kept.get("moved_plays", 0)
    new_plays, new_tracks = m.kept["new_plays"], m.kept["new_tracks"]
    result.records_loaded = new_plays + new_tracks
    result.duplicates = (run.staged_plays - new_plays) + (run.staged_songs - new_tracks)
    return m


def finish(m: Merge) -> None:
    """The run's bookkeeping: the manifest's times, the rejects, the files read."""
    _walk(m, (FINISH,))
