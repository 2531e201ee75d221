"""The merge: the staged rows → the star schema, then the report's rollups, inside the run's transaction.

``STEPS`` is the merge, step by step, in order: the star's steps (``STAR_STEPS``, statements in
``sql/load/merge.sql``), the rollups' (``load/rollups.py``, from the star's hand-over: ``steps.Handover``), and the
run's bookkeeping (``FINISH_STEPS``). Each step's name is its statement (or the name of what it does in Python),
its crash point (``merge:NAME``, tests/test_crash.py), its line in the progress display and its timing
(``load/steps.py``); nothing else lists the steps. A step whose ``when`` is false is passed: its crash point and
its progress line stay, so every run shows the same steps.

A first load's variant of a statement is a statement of its own (``insert_plays_first``, ``insert_time_first``,
``rollup_sessions_first``): tests/test_order_independence.py holds each to the statement it stands for.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg

from musicstream.db.bulk import deferred_definition, key_index_name, rebuild_indexes
from musicstream.db.sqlfiles import named_statements
from musicstream.load import rollups
from musicstream.load.state import RunState
from musicstream.load.steps import Handover, Merge, Step, execute, walk

log = logging.getLogger("musicstream.load")  # shown with --verbose, kept with --log-file

STAR, FINISH = "star", "finish"

_NATURAL_KEY = key_index_name("trackplays_natural_key")  # the fact table's natural key, while it is deferred
_TIME_KEY = key_index_name("timetb_pkey")  # timetb's key, while it is deferred


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


def _rebuild_indexes(m: Merge, step: Step) -> int:
    """The indexes of tables that were empty, and their foreign keys, every row checked at once. The keys of the
    fact table and timetb are attached to their indexes last, before the commit (their lock would block readers
    until then); the rollups, written after the star, have their indexes built then too."""
    started = time.perf_counter()
    built = rebuild_indexes(m.conn, attach_keys=False, later=rollups.DEFERRED)
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


def _handed_names(m: Merge) -> bool:
    return m.kept["handed_names"] > 0


def _first_names(m: Merge) -> bool:
    """The names' keys wait for the end (a first load): the planner learns them here."""
    return not _names_before(m)


STAR_STEPS: tuple[Step, ...] = (
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
    Step("rebuild_indexes", STAR, does=_rebuild_indexes),
    Step("reresolve_plays", STAR, when=_songs_staged, params="ids", keeps="moved_plays"),
    Step("delete_orphan_tracks", STAR, when=_names_went, adds="-tracks"),
    Step("delete_orphan_artists", STAR, when=_names_went, adds="-artists"),
    Step("hand_over_days", STAR, params="ids"),
    Step("hand_over_names", STAR, keeps="handed_names"),
    Step("hand_over_moved_days", STAR, when=_handed_names, params="ids"),
)
FINISH_STEPS: tuple[Step, ...] = (
    Step("refresh_mtimes", FINISH),
    Step("replace_rejects", FINISH),
    Step("insert_rejects", FINISH, params="run"),
    Step("replace_repairs", FINISH),
    Step("insert_repairs", FINISH, params="run"),
    Step("record_files", FINISH, params="run"),
)
# The whole merge, in order: the star, then the rollups from the star's hand-over, then the run's bookkeeping.
STEPS: tuple[Step, ...] = (*STAR_STEPS, *rollups.STEPS, *FINISH_STEPS)


def merge(conn: psycopg.Connection[Any], run: RunState) -> Merge:
    """The star, then the rollups from its hand-over: every staged row merged; the run's result gets the rows
    added."""
    row = conn.execute(named_statements("load/merge")["max_ids"]).fetchone()
    assert row is not None
    m = Merge(conn, run, {"after_play": int(row[0]), "after_name": int(row[1])}, STEPS)
    conn.execute("ANALYZE stage_plays")
    walk(m, STAR_STEPS)
    m.handover = Handover(after_play=m.ids["after_play"], moved_names=m.kept["handed_names"])
    rollups.maintain(m)
    result = run.result
    result.rows_added.update(m.added)
    result.rows_added["plays_moved_to_catalog"] = m.kept.get("moved_plays", 0)
    new_plays, new_tracks = m.kept["new_plays"], m.kept["new_tracks"]
    result.records_loaded = new_plays + new_tracks
    result.duplicates = (run.staged_plays - new_plays) + (run.staged_songs - new_tracks)
    return m


def finish(m: Merge) -> None:
    """The run's bookkeeping: the manifest's times, the rejects, the files read."""
    walk(m, FINISH_STEPS)
