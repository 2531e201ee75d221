"""Bad input: good lines load, each bad record is kept with file, line and reason, and counts reconcile."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import rows, scalar
from musicstream import LoadOptions, run_load
from musicstream.db.connection import Database
from musicstream.errors import TooManyRejects


def event(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "artist": "Des'ree",
        "auth": "Logged In",
        "firstName": "Kaylee",
        "gender": "F",
        "itemInSession": 1,
        "lastName": "Summers",
        "length": 246.30812,
        "level": "free",
        "location": "Phoenix-Mesa-Scottsdale, AZ",
        "method": "PUT",
        "page": "NextSong",
        "registration": 1540344794796.0,
        "sessionId": 139,
        "song": "You Gotta Be",
        "status": 200,
        "ts": 1541106106796,
        "userAgent": '"Mozilla/5.0"',
        "userId": "8",
    }
    base.update(overrides)
    return base


def write_log(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(newline.join(lines).encode())
    return path


def test_bad_lines_are_rejected_and_good_lines_load(db: Database, tmp_path: Path) -> None:
    log = write_log(
        tmp_path / "log_data" / "day.json",
        [
            json.dumps(event(itemInSession=1)),
            '{"artist": "broken", "ts": ',  # line 2: malformed JSON
            json.dumps(event(itemInSession=2, ts="yesterday")),  # line 3: wrong type that does not convert
            json.dumps({k: v for k, v in event(itemInSession=3).items() if k != "sessionId"}),  # line 4: missing
            "",  # line 5: blank lines are normal
            json.dumps(event(itemInSession=4, userId=8, sessionId="139", artist=112)),  # converts: loaded
            json.dumps(event(itemInSession=0, page="Home", song=None, artist=None, length=None)),  # not a play
            json.dumps(event(userId="", page="Home", firstName=None)),  # logged out
            json.dumps(event(itemInSession=1)),  # line 9: duplicate of line 1
        ],
    )
    result = run_load(db, [tmp_path])
    assert result.status == "succeeded"
    assert result.records_read == 8
    assert (result.records_loaded, result.records_skipped, result.duplicates, result.rejected) == (2, 2, 1, 3)
    assert result.reconciles
    got = rows(db, "SELECT file, line, reason FROM rejects ORDER BY line")
    assert [(f, line) for f, line, _ in got] == [(str(log), 2), (str(log), 3), (str(log), 4)]
    assert "malformed JSON" in got[0][2]
    assert "'ts'" in got[1][2] and "integer" in got[1][2]
    assert "missing required field 'sessionId'" in got[2][2]
    assert rows(db, "SELECT raw FROM rejects WHERE line = 2") == [('{"artist": "broken", "ts": ',)]
    assert rows(
        db, "SELECT item_in_session, artist_name FROM trackplays JOIN play_names USING (name_id) ORDER BY 1"
    ) == [
        (1, "Des'ree"),
        (4, "112"),
    ]
    assert rows(db, "SELECT records, rejects FROM loaded_files") == [(8, 3)]


def test_bom_crlf_gzip_and_missing_last_newline(db: Database, tmp_path: Path) -> None:
    lines = [json.dumps(event(itemInSession=i)) for i in range(1, 4)]
    raw = ("\ufeff" + "\r\n".join(lines)).encode()
    target = tmp_path / "log_data" / "day.json.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(raw))
    result = run_load(db, [tmp_path])
    assert result.rejected == 0
    assert scalar(db, "SELECT count(*) FROM trackplays") == 3


def test_song_file_shapes(db: Database, tmp_path: Path) -> None:
    song = {
        "num_songs": 1,
        "artist_id": "ARAAAAA1187B9A1",
        "artist_latitude": None,
        "artist_longitude": None,
        "artist_location": "",
        "artist_name": "Elena",
        "song_id": "SOAAAAA12AB0182364",
        "title": "One",
        "duration": 200.0,
        "year": 0,
    }
    folder = tmp_path / "song_data" / "A" / "A" / "A"
    folder.mkdir(parents=True)
    (folder / "one.json").write_text(json.dumps(song))
    (folder / "pretty.json").write_text(
        json.dumps({**song, "song_id": "SOB", "title": "Two"}, indent=2)
        + "\n"
        + json.dumps({**song, "song_id": "SOC", "title": "Three"}, indent=2)
    )
    (folder / "array.json").write_text(json.dumps([{**song, "song_id": "SOD"}, {**song, "song_id": "SOE"}]))
    (folder / "lines.json").write_text(
        json.dumps({**song, "song_id": "SOF"}) + "\n{not json\n" + json.dumps({**song, "song_id": None})
    )
    result = run_load(db, [tmp_path])
    assert result.reconciles
    assert rows(db, "SELECT track_id FROM tracks ORDER BY 1") == [
        ("SOAAAAA12AB0182364",),
        ("SOB",),
        ("SOC",),
        ("SOD",),
        ("SOE",),
        ("SOF",),
    ]
    assert rows(db, "SELECT year, location FROM tracks JOIN artists USING (artist_id) LIMIT 1") == [(None, None)]
    assert rows(db, "SELECT line, reason FROM rejects ORDER BY line") == [
        (2, "malformed JSON: Expecting property name enclosed in double quotes (column 2)"),
        (3, "missing required field 'song_id'"),
    ]


def test_max_rejects_fails_and_loads_nothing(db: Database, tmp_path: Path) -> None:
    write_log(tmp_path / "log_data" / "day.json", [json.dumps(event()), "nope", "nope either"])
    with pytest.raises(TooManyRejects):
        run_load(db, [tmp_path], LoadOptions(max_rejects=1))
    assert scalar(db, "SELECT count(*) FROM trackplays") == 0
    assert scalar(db, "SELECT count(*) FROM loaded_files") == 0
    assert rows(db, "SELECT status FROM etl_runs") == [("failed",)]
    ok = run_load(db, [tmp_path], LoadOptions(max_rejects=2))
    assert ok.status == "succeeded" and scalar(db, "SELECT count(*) FROM trackplays") == 1


def test_changed_file_is_read_again(db: Database, tmp_path: Path) -> None:
    path = write_log(tmp_path / "log_data" / "day.json", [json.dumps(event(itemInSession=1)), "bad"])
    run_load(db, [tmp_path])
    assert scalar(db, "SELECT count(*) FROM rejects") == 1
    write_log(path, [json.dumps(event(itemInSession=1)), json.dumps(event(itemInSession=2))])
    again = run_load(db, [tmp_path])
    assert again.files_read == 1 and again.records_loaded == 1 and again.duplicates == 1
    assert scalar(db, "SELECT count(*) FROM trackplays") == 2
    assert scalar(db, "SELECT count(*) FROM rejects") == 0, "a file read again replaces its rejects"
