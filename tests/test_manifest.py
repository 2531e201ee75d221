"""The manifest's quick check: a file with the size and modification time the manifest holds is not read again;
any other file with the manifest's size is hashed, and its digest decides. Times too recent to trust are not kept."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from conftest import rows, scalar
from musicstream import LoadOptions, run_load
from musicstream.db.connection import Database

HOUR_NS = 3600 * 10**9


def _event(user: int, item: int, song: str) -> str:
    return json.dumps(
        {
            "artist": "Band",
            "auth": "Logged In",
            "firstName": "A",
            "gender": "F",
            "itemInSession": item,
            "lastName": "B",
            "length": 200.5,
            "level": "free",
            "location": "X",
            "page": "NextSong",
            "sessionId": 7,
            "song": song,
            "ts": 1541000000000 + item,
            "userAgent": "agent",
            "userId": str(user),
        }
    )


def _day(folder: Path, name: str, songs: list[str], age_ns: int) -> Path:
    path = folder / "log_data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(_event(1, i, s) + "\n" for i, s in enumerate(songs)))
    stamp = time.time_ns() - age_ns
    os.utime(path, ns=(stamp, stamp))
    return path


def _mtime(db: Database, path: Path) -> int | None:
    value = scalar(db, "SELECT mtime_ns FROM loaded_files WHERE path = %s", (str(path),))
    return None if value is None else int(value)


def test_unchanged_size_and_time_is_not_read(db: Database, tmp_path: Path) -> None:
    old = _day(tmp_path, "a.json", ["Song A", "Song B"], HOUR_NS)
    first = run_load(db, [tmp_path])
    assert first.files_read == 1 and first.records_loaded == 2
    assert _mtime(db, old) == old.stat().st_mtime_ns

    # Same size and time, other bytes (what only a deliberate reset of the time does): not read, by design.
    stamp = old.stat().st_mtime_ns
    old.write_text(old.read_text().replace("Song A", "Song C").replace('"itemInSession": 0', '"itemInSession": 5'))
    os.utime(old, ns=(stamp, stamp))
    quick = run_load(db, [tmp_path])
    assert (quick.files_read, quick.files_skipped) == (0, 1)
    assert rows(db, "SELECT count(*) FROM play_names WHERE song_title = 'Song C'") == [(0,)]

    # --full reads every file whatever the manifest says.
    full = run_load(db, [tmp_path], LoadOptions(full=True))
    assert full.files_read == 1
    assert rows(db, "SELECT count(*) FROM play_names WHERE song_title = 'Song C'") == [(1,)]


def test_same_size_new_time_is_hashed(db: Database, tmp_path: Path) -> None:
    path = _day(tmp_path, "a.json", ["Song A", "Song B"], HOUR_NS)
    run_load(db, [tmp_path])

    # Touched, bytes unchanged: hashed, found the same, skipped; the manifest learns the new time.
    newer = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(newer, newer))
    touched = run_load(db, [tmp_path])
    assert (touched.files_read, touched.files_skipped) == (0, 1)
    assert _mtime(db, path) == newer

    # Same size, other bytes, another time: read again (its new play is loaded).
    path.write_text(path.read_text().replace("Song B", "Song D").replace('"itemInSession": 1', '"itemInSession": 9'))
    later = newer + 10**9
    os.utime(path, ns=(later, later))
    changed = run_load(db, [tmp_path])
    assert changed.files_read == 1
    assert scalar(db, "SELECT count(*) FROM trackplays") == 3
    assert _mtime(db, path) == later


def test_recent_time_is_not_trusted(db: Database, tmp_path: Path) -> None:
    fresh = _day(tmp_path, "fresh.json", ["Song A"], 0)
    run_load(db, [tmp_path])
    assert _mtime(db, fresh) is None  # written just now: it could change again within the same clock tick

    again = run_load(db, [tmp_path])  # hashed, so a same-tick rewrite would still be seen
    assert (again.files_read, again.files_skipped) == (0, 1)


def test_copy_with_new_time_is_hashed_not_reloaded(db: Database, udacity: Path, tmp_path: Path) -> None:
    copy = tmp_path / "udacity"
    shutil.copytree(udacity, copy)  # copytree keeps times (copy2): make them differ, as a plain cp would
    stamp = time.time_ns() - HOUR_NS
    for path in copy.rglob("*.json"):
        os.utime(path, ns=(stamp, stamp))
    run_load(db, [copy])
    for path in copy.rglob("*.json"):
        os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    again = run_load(db, [copy])
    assert (again.files_read, again.files_skipped) == (0, 101)
    assert scalar(db, "SELECT count(*) FROM loaded_files WHERE mtime_ns = %s", (stamp + 10**9,)) == 101


def test_one_file_reached_through_other_paths_is_one_file(db: Database, udacity: Path, tmp_path: Path) -> None:
    """A symlink to the data, a relative and an absolute path: the manifest knows the file it has loaded."""
    link = tmp_path / "linked"
    link.symlink_to(udacity, target_is_directory=True)
    first = run_load(db, [link])  # a link to the folder: the walk starts at it
    assert first.files_read == 101
    for again in (
        [udacity],
        [os.path.relpath(udacity)],
        [link / "log_data" / "2018" / "11" / "2018-11-01-events.json"],
    ):
        result = run_load(db, again)
        assert (result.files_read, result.records_read) == (0, 0), again
    assert scalar(db, "SELECT count(*) FROM loaded_files") == 101
    assert scalar(db, "SELECT count(*) FROM loaded_files WHERE path LIKE %s", (f"{udacity}/%",)) == 101
