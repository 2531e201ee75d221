"""The real public sample gives exactly the figures of docs/rules.md, and loading it again changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import rows, scalar
from musicstream import LoadOptions, run_load
from musicstream.checks import run_checks
from musicstream.db.connection import Database

PLAYS = "SELECT user_id, session_id, item_in_session, track_id, artist_id FROM trackplays ORDER BY 1, 2, 3"
STAR = ("trackplays", "users", "tracks", "artists", "timetb")


def _counts(db: Database) -> dict[str, int]:
    return {table: scalar(db, f"SELECT count(*) FROM {table}") for table in STAR}  # noqa: S608 - fixed names


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_udacity_figures(db: Database, udacity: Path) -> None:
    before = _tree_digest(udacity)
    result = run_load(db, [udacity])

    assert result.status == "succeeded"
    assert result.files_read == 101 and result.files_skipped == 0
    assert result.records_read == 8056 + 71
    assert result.reconciles
    assert result.rejected == 0
    assert scalar(db, "SELECT count(*) FROM tracks WHERE NOT is_inferred") == 71
    assert scalar(db, "SELECT count(*) FROM artists WHERE NOT is_inferred") == 69
    assert scalar(db, "SELECT count(*) FROM users") == 97
    assert scalar(db, "SELECT count(*) FROM users WHERE tier = 'paid'") == 22
    assert scalar(db, "SELECT count(*) FROM trackplays") == 6820
    assert scalar(db, "SELECT count(*) FROM timetb") == 6813
    assert scalar(db, "SELECT count(*) FROM trackplays WHERE track_id IS NULL OR artist_id IS NULL") == 0
    matched = rows(
        db,
        """SELECT n.song_title, n.artist_name, p.track_id, p.artist_id, a.name
           FROM trackplays p JOIN tracks t USING (track_id) JOIN artists a ON a.artist_id = p.artist_id
           JOIN play_names n USING (name_id)
           WHERE NOT t.is_inferred""",
    )
    assert matched == [("Setanta matins", "Elena", "SOZCTXZ12AB0182364", "AR5KOSW1187FB35FF4", "Elena")]
    # the Sparkify view answers the classic "songplays with a song_id" query with that one row
    assert rows(db, "SELECT song_id, artist_id FROM sparkify.songplays WHERE song_id IS NOT NULL") == [
        ("SOZCTXZ12AB0182364", "AR5KOSW1187FB35FF4")
    ]
    with db.connect(autocommit=True) as conn:
        failed = [c for c in run_checks(conn) if not c.passed]
    assert failed == []
    assert _tree_digest(udacity) == before, "input files must not change"


def test_rules_on_udacity(db: Database, udacity: Path) -> None:
    run_load(db, [udacity])
    # rule 1: user agent loses one pair of wrapping quotes; milliseconds kept; UTC
    agents = rows(db, "SELECT count(*) FROM trackplays WHERE user_agent LIKE '\"%%'")
    assert agents == [(0,)]
    assert rows(
        db,
        "SELECT start_time::text FROM trackplays WHERE user_id = 8 AND session_id = 139 AND item_in_session = 1",
    ) == [("2018-11-01 21:01:46.796",)]
    # rule 3: user 15 goes paid -> free -> paid; the latest event decides
    assert rows(db, "SELECT tier FROM users WHERE user_id = 15") == [("paid",)]
    # rule 4: weekday names in English
    assert rows(db, "SELECT weekday FROM timetb WHERE start_time = '2018-11-01 21:01:46.796'") == [("Thursday",)]
    # rule 7: inferred rows are flagged and prefixed, one per normalised name
    assert scalar(db, "SELECT count(*) FROM artists WHERE is_inferred AND artist_id NOT LIKE 'IA-%%'") == 0
    assert scalar(db, "SELECT count(*) - count(DISTINCT name) FROM artists WHERE is_inferred") >= 0


def test_reload_adds_nothing(db: Database, udacity: Path) -> None:
    run_load(db, [udacity])
    first = _counts(db)
    plays = rows(db, PLAYS)

    again = run_load(db, [udacity])
    assert again.status == "succeeded"
    assert again.files_read == 0 and again.files_skipped == 101
    assert sum(again.rows_added.values()) == 0
    assert _counts(db) == first

    full = run_load(db, [udacity], LoadOptions(full=True))
    assert full.files_read == 101 and full.files_skipped == 0
    assert full.duplicates == 6820 + 71
    assert full.records_loaded == 0
    assert full.reconciles
    assert _counts(db) == first
    assert rows(db, PLAYS) == plays
    runs = rows(db, "SELECT status, files_read, files_skipped FROM etl_runs ORDER BY run_id")
    assert runs == [("succeeded", 101, 0), ("succeeded", 0, 101), ("succeeded", 101, 0)]
