"""Many small song files, one song each, as the Million Song Dataset ships them: for measuring how a load's
memory and time grow with the number of files (tests/test_many_files.py, benchmarks/many_files.py)."""

from __future__ import annotations

import json
from pathlib import Path


def write_song_files(root: Path, count: int, artists: int = 9973) -> Path:
    """``count`` one-song files under ``root/song_data`` (three levels of folders), ``artists`` artists among them."""
    for number in range(count):
        track = f"TR{number:016X}"
        folder = root / "song_data" / track[-3] / track[-2] / track[-1]
        folder.mkdir(parents=True, exist_ok=True)
        song = {
            "song_id": f"SO{number:016X}",
            "title": f"Song {number}",
            "artist_id": f"AR{number % artists:016X}",
            "artist_name": f"Artist {number % artists}",
            "duration": 180.0 + number % 60,
            "year": 2000,
            "num_songs": 1,
            "artist_location": "",
            "artist_latitude": None,
            "artist_longitude": None,
        }
        (folder / f"{track}.json").write_text(json.dumps(song))
    return root
