"""Crash safety: the loader is killed with SIGKILL at every phase of a run; the tables then hold either the state
before the run or the complete run (never half of it), and running the load again ends exactly like a clean run.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import UDACITY, _fresh_database, rows, schema_catalog
from musicstream import LoadOptions, run_load
from musicstream.checks import run_checks
from musicstream.config import Settings
from musicstream.db.bulk import table_of
from musicstream.db.connection import Database
from musicstream.db.sqlfiles import named_statements
from musicstream.load import rollups
from musicstream.load.merge import STEPS
from test_order_independence import reset, snapshot

DAYS = ("2018-11-02", "2018-11-05", "2018-11-13", "2018-11-21", "2018-11-28", "2018-11-30")
MERGE_STEPS = [step.name for step in STEPS]  # the merge's crash points: one list drives the run and these
BEFORE_COMMIT = [
    "locked",
    "run-recorded",
    "staging-tables",
    "read:stage_songs:1",
    "read:stage_plays:2",
    "read:stage_plays:5",
    "bookkeeping",
    *(f"merge:{step}" for step in MERGE_STEPS),
    "commit",
]
AFTER_COMMIT = ["committed", "analyzed"]


def test_the_crash_points_are_the_merge_steps() -> None:
    """Every merge step is a crash point, in the order of the one list: each name is a statement of merge.sql or
    rollups/maintain.sql, or a step done in Python; and every statement of those is a step, a first load's variant
    of one, max_ids or the rollups' rebuild_handover."""
    statements = set(named_statements("load/merge")) | set(named_statements("rollups/maintain"))
    done_in_python = {step.name for step in STEPS if step.does is not None}
    assert len(set(MERGE_STEPS)) == len(MERGE_STEPS)
    assert {name for name in MERGE_STEPS if name not in statements} <= done_in_python
    variants = {name for name in statements if name.endswith("_first")}
    assert {name.removesuffix("_first") for name in variants} <= set(MERGE_STEPS)
    assert statements - set(MERGE_STEPS) - variants == {"max_ids", "rebuild_handover"}


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    """Batch 1: three days of logs. Batch 2: everything (songs and six days), so it adds plays and moves some."""
    root = tmp_path_factory.mktemp("crash")
    shutil.copytree(UDACITY / "song_data", root / "song_data")
    (root / "log_data").mkdir()
    logs = []
    for day in DAYS:
        target = root / "log_data" / f"{day}-events.json"
        shutil.copy(UDACITY / "log_data" / "2018" / "11" / f"{day}-events.json", target)
        logs.append(target)
    (root / "log_data" / "bad.json").write_text('{"userId": "1", "ts": "not a number"}\n{nope\n')
    return logs[:3], [root]


@pytest.fixture(scope="module")
def states(embedded: Database, batches: tuple[list[Path], list[Path]]) -> dict[str, Any]:
    first, second = batches
    db = Database(Settings(database_url=_fresh_database(embedded, "ms_crash_ref"), home=embedded.settings.home))
    catalog = schema_catalog(db)
    run_load(db, first)
    after_first = snapshot(db)
    reset(db)
    run_load(db, second)
    clean = snapshot(db)
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute("DROP DATABASE ms_crash_ref WITH (FORCE)")
    return {"first": after_first, "clean": clean, "catalog": catalog}


def _load_killed_at(db: Database, paths: list[Path], kill_at: str | None = None, after: float | None = None) -> int:
    # one task per log file, so that the kill points inside the reading (the 2nd and 5th file) exist
    env = {**os.environ, "MUSICSTREAM_DATABASE_URL": db.conninfo, "MUSICSTREAM_LOG_BATCH_BYTES": "1"}
    if kill_at:
        env["MUSICSTREAM_KILL_AT"] = kill_at
    with subprocess.Popen(
        [sys.executable, "-m", "musicstream", "load", "--workers", "1", *map(str, paths)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        if after is not None:
            time.sleep(after)
            proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=120)


SECONDARY_INDEXES = [
    ("play_names_artist_idx",),
    ("play_names_track_idx",),
    ("tracks_artist_idx",),
    ("tracks_catalog_match_idx",),
    ("trackplays_artist_idx",),
    ("trackplays_name_idx",),
    ("trackplays_start_time_idx",),
    ("trackplays_track_idx",),
]
FOREIGN_KEYS = [
    ("trackplays", "trackplays_artist_id_fkey"),
    ("trackplays", "trackplays_track_id_fkey"),
    ("trackplays", "trackplays_user_id_fkey"),
    ("tracks", "tracks_artist_id_fkey"),
]
_STAR_KEYS = """SELECT conrelid::regclass::text, conname FROM pg_constraint
WHERE contype = 'f' AND conrelid IN ('trackplays'::regclass, 'tracks'::regclass) ORDER BY 1, 2"""


def _secondary_indexes(db: Database) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE ANY "
        "(ARRAY['%%_artist_idx', '%%_track_idx', '%%_name_idx', '%%_start_time_idx', '%%_match_idx']) ORDER BY 1",
    )


def _finish_and_compare(db: Database, paths: list[Path], states: dict[str, Any]) -> None:
    run_load(db, paths, LoadOptions(workers=1))
    assert snapshot(db) == states["clean"]
    assert rows(db, "SELECT count(*) FROM deferred_indexes") == [(0,)]
    assert schema_catalog(db) == states["catalog"], "every key and index is back as the schema defines it"
    assert sorted(_secondary_indexes(db)) == sorted(SECONDARY_INDEXES)
    assert rows(db, _STAR_KEYS) == FOREIGN_KEYS
    with db.connect(autocommit=True) as conn:
        assert [c.name for c in run_checks(conn) if not c.passed] == []
    assert rows(db, "SELECT count(*) FROM etl_runs WHERE status = 'running'") == [(0,)]


@pytest.mark.parametrize("kill_at", BEFORE_COMMIT + AFTER_COMMIT)
def test_killed_at_each_phase(db: Database, batches: Any, states: dict[str, Any], kill_at: str) -> None:
    first, second = batches
    run_load(db, first, LoadOptions(workers=1))
    code = _load_killed_at(db, second, kill_at)
    assert code == -signal.SIGKILL, f"the load did not reach {kill_at!r} (exit code {code})"
    expected = states["first"] if kill_at in BEFORE_COMMIT else states["clean"]
    assert snapshot(db) == expected, "after a kill the tables hold the old or the fully committed state"
    _finish_and_compare(db, second, states)
    if kill_at in BEFORE_COMMIT and kill_at != "locked":  # the run had recorded itself
        assert ("abandoned",) in rows(db, "SELECT status FROM etl_runs ORDER BY run_id")


def test_killed_at_random_moments(db: Database, batches: Any, states: dict[str, Any]) -> None:
    first, second = batches
    rng = random.Random(20261122)
    for _ in range(50 if os.environ.get("MUSICSTREAM_SOAK") else 5):
        reset(db)
        run_load(db, first, LoadOptions(workers=1))
        _load_killed_at(db, second, after=rng.uniform(0.2, 1.5))
        assert snapshot(db) in (states["first"], states["clean"])
        _finish_and_compare(db, second, states)


@pytest.mark.parametrize("kill_at", ["indexes-deferred", "merge:insert_plays", "merge:day_sets", "commit"])
def test_first_load_killed_then_rerun(db: Database, batches: Any, states: dict[str, Any], kill_at: str) -> None:
    """A first load (empty tables, indexes deferred) that dies leaves empty tables and the index definitions; the
    next load builds the indexes again. Killed after the merge's rebuild_indexes (merge:day_sets), the late
    rollups' keys and indexes are still waiting: they are built only once those tables hold their rows."""
    _, second = batches
    assert _load_killed_at(db, second, kill_at) == -signal.SIGKILL
    assert rows(db, "SELECT count(*) FROM trackplays") == [(0,)]
    assert rows(db, "SELECT count(*) FROM deferred_indexes")[0][0] > 0
    deferred = {table_of(definition) for (definition,) in rows(db, "SELECT definition FROM deferred_indexes")}
    assert deferred >= {"trackplays", "timetb", *rollups.DEFERRED}
    with db.connect(autocommit=True) as conn:  # the keys are off until the next load: check says so
        assert [c.name for c in run_checks(conn) if not c.passed] == ["foreign_keys_in_place"]
    _finish_and_compare(db, second, states)
