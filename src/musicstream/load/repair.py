"""Repairing the names a database already holds (rule 6), for databases loaded before the repair or with it
switched off: ``musicstream repair-names``.

The repair is Python (``transform.names.repair_name``, the rule's one definition), so the stored names that may
need it (those with a character outside printable ASCII) are read once, repaired here, and the repairs copied back
in; then ``sql/load/repair_names.sql`` applies them and the merge's own statements resolve the affected names again,
as a late catalog file does (rule 8); the repair ends with the star merge's hand-over (the names whose plays moved
and their days, no new play), from which ``load/rollups.py`` brings the report's rollups up to date. It runs as a
load does: in the load lock, in one transaction (a failure or a kill changes nothing), and says what it did.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from musicstream.config import mask_error
from musicstream.db.connection import Database
from musicstream.db.sqlfiles import named_statements
from musicstream.errors import LoadError
from musicstream.faults import point
from musicstream.load import rollups
from musicstream.load.staging import create_staging
from musicstream.load.steps import Handover
from musicstream.transform.names import needs_look, repair_name
from musicstream.transform.normalize import name_key

log = logging.getLogger("musicstream.load")

# The stored names that may need a repair: titles and artist names of the catalog and of the plays.
_CANDIDATES = """
SELECT name FROM (
    SELECT title AS name FROM tracks UNION SELECT name FROM artists
    UNION SELECT song_title FROM play_names UNION SELECT artist_name FROM play_names
) n
WHERE name ~ '[^ -~]'
"""

# The merge's statements (sql/load/merge.sql) that resolve names again, in order, between this module's own
# (sql/load/repair_names.sql), up to the hand-over to the rollups: (file, statement).
STEPS = (
    ("repair", "record_repairs"),
    ("repair", "touched_artist_keys"),
    ("repair", "repair_tracks"),
    ("repair", "repair_artists"),
    ("repair", "renamed_names"),
    ("repair", "move_plays_to_kept_names"),
    ("repair", "drop_merged_names"),
    ("repair", "repair_play_names"),
    ("merge", "stage_names"),
    ("merge", "names_to_resolve"),
    ("merge", "resolve"),
    ("merge", "inferred_artists"),
    ("merge", "inferred_tracks"),
    ("merge", "update_names"),
    ("merge", "inferred_artist_names"),
    ("merge", "inferred_track_titles"),
    ("repair", "plays_follow_names"),
    ("merge", "delete_orphan_tracks"),
    ("merge", "delete_orphan_artists"),
    ("repair", "delete_merged_orphans"),
    ("repair", "hand_over_names"),
    ("repair", "hand_over_days"),
)


@dataclass
class RepairResult:
    """What ``repair_stored_names`` did: spellings repaired, the play names and plays they touched."""

    spellings: int = 0
    names: int = 0
    plays_moved: int = 0
    examples: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "spellings_repaired": self.spellings,
            "play_names_repaired": self.names,
            "plays_moved": self.plays_moved,
            "examples": [{"original": o, "repaired": r} for o, r in self.examples],
            "seconds": self.seconds,
        }


def _fixes(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str, str]]:
    """(original, repaired, repaired key, original key) of every stored name the rule repairs."""
    fixes = []
    with conn.cursor(name="musicstream_repair_names") as cur:
        cur.itersize = 10_000
        for (name,) in cur.execute(_CANDIDATES):
            if needs_look(name):
                fixed = repair_name(name)
                if fixed != name:
                    fixes.append((name, fixed, name_key(fixed), name_key(name)))
    return fixes


def repair_stored_names(conn: psycopg.Connection[Any]) -> RepairResult:
    """Repair the stored names, in the current transaction of ``conn`` (the caller holds the load lock and commits).
    Returns what was repaired."""
    started = time.monotonic()
    result = RepairResult()
    fixes = _fixes(conn)
    result.spellings = len(fixes)
    result.examples = sorted((o, r) for o, r, _, _ in fixes)[:5]
    if not fixes:
        result.seconds = round(time.monotonic() - started, 3)
        return result
    repair_sql = named_statements("load/repair_names")
    merge_sql = named_statements("load/merge")
    conn.execute(repair_sql["create_fixes"])
    with (
        conn.cursor() as cur,
        cur.copy("COPY name_fixes (original, repaired, repaired_key, original_key) FROM STDIN") as copy,
    ):
        for fix in fixes:
            copy.write_row(fix)
    create_staging(conn)  # empty: the merge's statements read the staged names, and there are none
    row = conn.execute(merge_sql["max_ids"]).fetchone()
    assert row is not None
    ids = {"after_play": int(row[0]), "after_name": int(row[1])}
    moved_names = 0
    for source, name in STEPS:
        point(f"repair-names:{name}")
        query = (repair_sql if source == "repair" else merge_sql)[name]
        cur = conn.execute(query, ids if "%(" in query else None)
        if name == "renamed_names":
            result.names = cur.rowcount
        elif name == "plays_follow_names":
            result.plays_moved = cur.rowcount
        elif name == "hand_over_names":
            moved_names = cur.rowcount
    rollups.refresh(conn, Handover(after_play=ids["after_play"], moved_names=moved_names))
    result.seconds = round(time.monotonic() - started, 3)
    log.info("repaired %d spellings: %d play names, %d plays moved", result.spellings, result.names, result.plays_moved)
    return result


def repair_names(db: Database, *, wait: bool = True, dry_run: bool = False) -> RepairResult:
    """``repair_stored_names`` as a load runs: the schema current, the load lock taken (``wait``: wait for a load
    under way, else fail at once), one transaction, committed unless ``dry_run``. A failure changes nothing."""
    from musicstream.load.pipeline import take_the_database

    with db.connect(autocommit=True) as conn:
        take_the_database(conn, wait)
        try:
            with conn.transaction():
                conn.execute("SET LOCAL work_mem = '512MB'")
                result = repair_stored_names(conn)
                point("repair-names:commit")
                if dry_run:
                    raise psycopg.Rollback()
        except psycopg.Error as exc:
            raise LoadError(
                f"repairing the stored names failed and nothing was changed: {mask_error(exc).strip()}"
            ) from None
    return result
