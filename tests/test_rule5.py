"""Rule 5's tie-breaks are total: the same song id given with different details, in two files, ends in the same
tracks and artists whatever the load order (rule 9), and the record chosen is the one the docs name."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import rows
from musicstream import run_load
from musicstream.db.connection import Database
from test_order_independence import reset


def _song(song_id: str, artist: str, location: str, year: int, **extra: Any) -> dict[str, Any]:
    return {
        "num_songs": 1,
        "artist_id": "ARTIE0000000001",
        "artist_latitude": extra.get("latitude"),
        "artist_longitude": None,
        "artist_location": location,
        "artist_name": artist,
        "song_id": song_id,
        "title": "Tie",
        "duration": 100.0,
        "year": year,
    }


# Two records per song id. SOTIE1: no year / no location against 2008 / "Paris" (NULLs sort last, so the second
# wins both the track and the artist). SOTIE2: equal up to the year, artist names differ ("Zebra" and
# "apple band": by the normalised name key, "apple band" wins the track).
FIRST = [_song("SOTIE1", "Band", "", 0), _song("SOTIE2", "Zebra", "Here", 1999)]
SECOND = [_song("SOTIE1", "Band", "Paris", 2008, latitude=48.85), _song("SOTIE2", "apple band", "Here", 1999)]


def _tree(root: Path, name: str, songs: list[dict[str, Any]]) -> Path:
    folder = root / name / "song_data"
    folder.mkdir(parents=True)
    for i, song in enumerate(songs):
        (folder / f"{i}.json").write_text(json.dumps(song))
    return root / name


def _catalog(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "tracks": rows(db, "SELECT track_id, title, artist_id, year, duration, artist_key FROM tracks ORDER BY 1"),
        "artists": rows(db, "SELECT artist_id, name, location, latitude, source_track_id FROM artists ORDER BY 1"),
    }


def test_same_song_id_with_other_details_any_order(db: Database, tmp_path: Path) -> None:
    first, second = _tree(tmp_path, "first", FIRST), _tree(tmp_path, "second", SECOND)
    outcomes = []
    for order in ([first, second], [second, first], [[first, second]]):
        reset(db)
        for batch in order:
            run_load(db, batch if isinstance(batch, list) else [batch])
        outcomes.append(_catalog(db))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    tracks = {t[0]: t for t in outcomes[0]["tracks"]}
    assert tracks["SOTIE1"][3] == 2008  # a year sorts before no year
    assert tracks["SOTIE2"][5] == "apple band"  # then the normalised artist name decides
    (artist,) = outcomes[0]["artists"]
    assert artist == ("ARTIE0000000001", "Band", "Paris", Decimal("48.85"), "SOTIE1")  # NUMERIC: as the file wrote it
