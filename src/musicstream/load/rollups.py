"""The report's rollups, kept exact from the star merge's hand-over, in the run's transaction.

The star merge ends by handing over what it changed (``steps.Handover``): the plays it added (ids above
``after_play``), the days it touched and the names rule 8 moved. ``STEPS`` maintains every rollup from that and the
star's tables, reading nothing else of the star merge: their statements are in ``sql/rollups/maintain.sql``, the
functions they call in ``sql/rollups/functions/`` (one current body each, applied again by ``musicstream init``:
``db/schema.py``). Changing a rollup touches its files here and its test (tests/test_rollups.py), never the star.

``rebuild`` empties the rollups and maintains them from a hand-over of every stored play: a migration that adds or
changes a rollup table asks for it (``-- backfill: rollups``), so a database loaded before gets the same rows a
load would have written.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from musicstream.db.schema import ROLLUP_TABLES
from musicstream.db.sqlfiles import named_statements
from musicstream.load.state import RunState
from musicstream.load.stats import LoadResult
from musicstream.load.steps import Handover, Merge, Step, execute, walk

log = logging.getLogger("musicstream.load")

ROLLUPS = "rollups"
_SOURCE = "rollups/maintain"

# The rollups whose keys and indexes a first load defers while they are empty (db/bulk.py): built once they hold
# their rows, before the commit (the load's attach_deferred_keys). The refreshes of a 1M first load, on a truncated
# copy: 7.4–9.3 s into indexed tables, 6.3–7.7 s without the indexes plus 0.23–0.31 s to build them.
DEFERRED = ("rollup_sessions", "rollup_day_tops", "rollup_user_days", "rollup_session_lengths")
_SESSIONS_KEY = "rollup_sessions_key"  # rollup_sessions' key: missing while deferred (a first load)


def _rollup_sessions(m: Merge, step: Step) -> int:
    """Into an empty rollup whose key is deferred (a first load): a plain INSERT, the key built after it."""
    row = m.conn.execute("SELECT to_regclass(%s) IS NULL", (_SESSIONS_KEY,)).fetchone()
    return execute(m, step, "rollup_sessions_first" if row and row[0] else None)


def _names_moved(m: Merge) -> bool:
    """Only plays that moved to another track change a session's catalog plays."""
    return m.handover is not None and m.handover.moved_names > 0


STEPS: tuple[Step, ...] = tuple(
    Step(name, ROLLUPS, source=_SOURCE, params=params, when=when, does=does)
    for name, params, when, does in (
        ("session_sums", "handover", None, None),
        ("rollup_sessions", None, None, _rollup_sessions),
        ("rollup_hours", "handover", None, None),
        ("moved_sessions", "handover", _names_moved, None),
        ("recount_catalog_plays", None, _names_moved, None),
        ("day_tops", None, None, None),
        ("day_sets", None, None, None),
        ("day_tier_moves", None, None, None),
        ("session_lengths", None, None, None),
    )
)


def maintain(m: Merge) -> None:
    """Every rollup brought up to date with the hand-over ``m.handover``."""
    walk(m, STEPS)


class _Quiet:
    """No progress display (a rebuild inside ``init``)."""

    def start(self, total_bytes: int, files: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def phase(self, name: str) -> None: ...
    def step(self, name: str, number: int, total: int) -> None: ...


def refresh(conn: psycopg.Connection[Any], handover: Handover) -> None:
    """The rollups brought up to date with a hand-over made outside a load (a rebuild, a repair of stored names),
    in the caller's transaction: the hand-over's tables exist."""
    run = RunState(LoadResult(), _Quiet())
    try:
        maintain(Merge(conn, run, {}, STEPS, handover=handover))
    finally:
        run.rejects.close()  # their spool files: nothing here rejects or repairs a record
        run.repairs.close()


def rebuild(conn: psycopg.Connection[Any]) -> None:
    """The rollups emptied and maintained again from every stored play, in the caller's transaction."""
    log.info("rebuilding the report's rollups from the stored plays")
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in ROLLUP_TABLES)))
    conn.execute(named_statements(_SOURCE)["rebuild_handover"])
    refresh(conn, Handover(after_play=0, moved_names=0))
    conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in ROLLUP_TABLES)))
