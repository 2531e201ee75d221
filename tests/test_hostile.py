"""A corpus of hostile input: every case loads its good records, keeps each bad one as a reject with file, line and
a clear reason, never crashes, and the run's counts reconcile."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from conftest import rows
from musicstream import LoadOptions, run_load
from musicstream.db.connection import Database
from test_rejects import event

GOOD = json.dumps(event(itemInSession=1))
GOOD2 = json.dumps(event(itemInSession=2, ts=1541106107796))
SONG = {
    "num_songs": 1,
    "artist_id": "ARH0ST1LE",
    "artist_latitude": None,
    "artist_longitude": None,
    "artist_location": "",
    "artist_name": "Hostile",
    "song_id": "SOH0ST1LE",
    "title": "Good",
    "duration": 1.0,
    "year": 0,
}

# name: (file name under log_data/ or song_data/, bytes, good records expected, [(line, reason fragment)])
CASES: dict[str, tuple[str, bytes, int, list[tuple[int, str]]]] = {
    "carriage returns and line feeds inside values": (
        "log_data/cr.json",
        (
            json.dumps(event(itemInSession=1, location="Dallas\rTX", song="Lone\rCR"))
            + "\n"
            + json.dumps(event(itemInSession=2, userAgent="a\r\nb", artist="New\nLine"))
            + "\n"
        ).encode(),
        2,
        [],
    ),
    "carriage return inside a song's values": (
        "song_data/cr.json",
        json.dumps({**SONG, "title": "Good\rTitle", "artist_location": "Here\rThere"}).encode(),
        1,
        [],
    ),
    "malformed JSON": (
        "log_data/malformed.json",
        f'{GOOD}\n{{"page": "NextSong",\n{GOOD2}'.encode(),
        2,
        [(2, "malformed JSON")],
    ),
    "truncated last line": ("log_data/truncated.json", f"{GOOD}\n{GOOD2[:40]}".encode(), 1, [(2, "malformed JSON")]),
    "wrong types that convert": (
        "log_data/convert.json",
        json.dumps(event(itemInSession=1, userId=8, sessionId="139", artist=112, length="246.5")).encode(),
        1,
        [],
    ),
    "wrong types that do not convert": (
        "log_data/noconvert.json",
        "\n".join(
            [
                GOOD,
                json.dumps(event(itemInSession=2, sessionId="abc")),
                json.dumps(event(itemInSession=3, length=[1])),
                json.dumps(event(itemInSession=4, level="gold")),
            ]
        ).encode(),
        1,
        [(2, "'sessionId'"), (3, "'length'"), (4, "'level'")],
    ),
    "missing required fields": (
        "log_data/missing.json",
        "\n".join(
            [
                json.dumps({k: v for k, v in event(itemInSession=i).items() if k != key})
                for i, key in enumerate(["ts", "song", "userId"], 1)
            ]
            + [GOOD2]
        ).encode(),
        1,
        [
            (1, "missing required field 'ts'"),
            (2, "missing required field 'song'"),
            (3, "missing required field 'userId'"),
        ],
    ),
    "invalid UTF-8": (
        "log_data/utf8.json",
        GOOD.encode() + b"\n" + GOOD2.encode().replace(b"Kaylee", b"Kay\xfflee"),
        1,
        [(2, "UTF-8")],
    ),
    "NUL bytes": (
        "log_data/nul.json",
        b"\n".join(
            [
                GOOD.encode().replace(b"Kaylee", b"Kay\x00lee"),
                GOOD2.encode().replace(b"Kaylee", b"Kay\\u0000lee"),
                json.dumps(event(itemInSession=3, ts=1541106108796)).encode(),
            ]
        ),
        1,
        [(1, "malformed JSON"), (2, "NUL")],
    ),
    "byte-order mark and CRLF": ("log_data/bomcrlf.json", ("\ufeff" + GOOD + "\r\n" + GOOD2 + "\r\n").encode(), 2, []),
    "empty file": ("log_data/empty.json", b"", 0, []),
    "not JSON at all": ("log_data/binary.json", b"\x00" + bytes(range(11, 256)) * 4, 0, [(1, "malformed JSON")]),
    "names too long to index": (
        "log_data/long.json",
        "\n".join([GOOD, json.dumps(event(itemInSession=2, artist="a" * 5000))]).encode(),
        1,
        [(2, "'artist' is longer than")],
    ),
    "corrupt gzip": (
        "log_data/corrupt.json.gz",
        gzip.compress((GOOD + "\n" + GOOD2).encode())[:-12] + b"garbage!!!!!",
        -1,
        [(-1, "cannot read the rest of the file")],
    ),
    "deeply nested JSON": (
        "log_data/deep.json",
        ("[" * 5000 + "]" * 5000 + "\n" + GOOD).encode(),
        1,
        [(1, "malformed JSON")],
    ),
    "deeply nested song": ("song_data/deep.json", ("[" * 5000 + "]" * 5000).encode(), 0, [(1, "nested too deeply")]),
    "good song": ("song_data/good.json", json.dumps(SONG).encode(), 1, []),
    # tracks.duration is NOT NULL (the seed's model): a song without one cannot be stored, so it is a reject
    "song without a duration": (
        "song_data/noduration.json",
        (
            json.dumps({**SONG, "duration": None})
            + "\n"
            + json.dumps({k: v for k, v in SONG.items() if k != "duration"})
        ).encode(),
        0,
        [(1, "missing required field 'duration'"), (2, "missing required field 'duration'")],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_case(db: Database, tmp_path: Path, case: str) -> None:
    name, data, good, bad = CASES[case]
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    # some cases are files with no good record at all: a run that rejects everything fails unless allowed
    result = run_load(db, [tmp_path], LoadOptions(workers=1, allow_empty=True))
    assert result.status == "succeeded" and result.reconciles
    found = rows(db, "SELECT line, reason FROM rejects WHERE file = %s ORDER BY line", (str(path),))
    assert len(found) == len(bad), found
    for (line, reason), (want_line, fragment) in zip(found, bad, strict=True):
        assert fragment in reason, (reason, fragment)
        assert want_line == -1 or line == want_line
    loaded = (
        rows(db, "SELECT count(*) FROM trackplays")[0][0]
        + rows(db, "SELECT count(*) FROM tracks WHERE NOT is_inferred")[0][0]
    )
    if good >= 0:
        assert loaded == good
    assert bytes(path.read_bytes()) == data, "the input file is unchanged"


def test_fifty_megabyte_line(db: Database, tmp_path: Path) -> None:
    logs = tmp_path / "log_data"
    logs.mkdir()
    huge = json.dumps(event(itemInSession=5, location="x" * (50 << 20)))  # a valid event: a 50 MB location
    (logs / "huge.json").write_text(GOOD + "\n" + huge + "\n" + '{"broken' + "y" * (50 << 20) + "\n" + GOOD2)
    result = run_load(db, [tmp_path], LoadOptions(workers=1))
    assert result.reconciles and result.rejected == 1
    assert rows(db, "SELECT count(*) FROM trackplays") == [(3,)]
    ((line, reason, size),) = rows(db, "SELECT line, reason, length(raw) FROM rejects")
    assert line == 3 and "malformed JSON" in reason and "cut to" in reason and size == 1 << 20


def test_links_and_unreadable_entries(db: Database, tmp_path: Path) -> None:
    logs = tmp_path / "log_data"
    logs.mkdir()
    (logs / "good.json").write_text(GOOD)
    os.symlink(tmp_path, logs / "loop")  # a folder link back up: not followed
    os.symlink(logs / "b.json", logs / "a.json")  # a file link loop: a.json -> b.json -> a.json
    os.symlink(logs / "a.json", logs / "b.json")
    (logs / "folder.json").mkdir()  # not a file: cannot be read
    os.symlink(logs / "missing.json", logs / "dangling.json")
    result = run_load(db, [tmp_path], LoadOptions(workers=1))
    assert result.status == "succeeded" and result.reconciles
    assert rows(db, "SELECT count(*) FROM trackplays") == [(1,)]
    rejected = dict(rows(db, "SELECT file, reason FROM rejects"))
    assert set(rejected) == {str(logs / n) for n in ("a.json", "b.json", "dangling.json")}
    assert all(reason.startswith("cannot read file") for reason in rejected.values())
    # unreadable files are not in the manifest: the next run tries them again
    assert rows(db, "SELECT count(*) FROM loaded_files") == [(1,)]


def test_hundred_thousand_song_files(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "song_data"
    for i in range(100_000):
        folder = root / f"{i % 26:02d}" / f"{i // 26 % 26:02d}"
        if i < 26 * 26:
            folder.mkdir(parents=True)
        (folder / f"S{i:06d}.json").write_text(
            json.dumps({**SONG, "song_id": f"SO{i:06d}", "artist_id": f"AR{i % 5000:06d}", "title": f"t{i}"})
        )
    result = run_load(db, [tmp_path])
    assert result.status == "succeeded" and result.reconciles
    assert rows(db, "SELECT count(*) FROM tracks") == [(100_000,)]
    assert rows(db, "SELECT count(*) FROM artists") == [(5000,)]
    again = run_load(db, [tmp_path])
    assert again.files_skipped == 100_000 and again.records_read == 0
