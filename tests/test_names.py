"""Rule 6's reading of names: damaged names repaired alike in every reader and engine, the originals kept.

The public sample's logs hold names damaged before publication: double-encoded UTF-8 (``BjÃ\\x83Â¶rk`` for Björk)
and curly quotes cut to their low byte (``Don\\x19t``). The expectations here come from the raw JSON and from
ftfy itself (``ftfy.fix_encoding``, which the rule names), not from the project's code: the counts of plays of a
damaged spelling, and what ftfy makes of each name.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ftfy
import pytest

import reference
from conftest import UDACITY, rows, scalar
from musicstream import LoadOptions, run_load
from musicstream.checks import damaged_names, run_checks
from musicstream.db.connection import Database
from musicstream.engines.read import LogBatchTask, LogTask, SongTask, parse_log_batch, parse_log_lines, run_task
from musicstream.transform.names import NameReader, looks_damaged, repair_name

CORRECT = ["Motörhead", "Sigur Rós", "Ñu", "Don’t Stop", "“Heroes”", "It‘s", "Zoë", "ＡＢＣ", "naïve café", "Ⅻ"]
NAME_QUERIES = {
    "tracks": "SELECT title FROM tracks",
    "artists": "SELECT name FROM artists",
    "play titles": "SELECT song_title FROM play_names",
    "play artists": "SELECT artist_name FROM play_names",
}


def expected_repair(name: str) -> str:
    """The rule as docs/rules.md states it, written with ftfy directly (tests/reference.py, the contract's model)."""
    return reference.repaired(name)


def sample_names(root: Path = UDACITY) -> list[tuple[str, int, str]]:
    """Every name rule 6 reads in the sample (or a tree of its files), in reading order: (file, line, name). Log
    files: a play's song and artist; song files: the title and artist name."""
    found: list[tuple[str, int, str]] = []
    for path in sorted((root / "song_data").rglob("*.json")):
        song = json.loads(path.read_text(encoding="utf-8"))
        found += [(str(path), 1, song["title"]), (str(path), 1, song["artist_name"])]
    for path in sorted((root / "log_data").rglob("*.json")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            event = json.loads(line) if line.strip() else {}
            if event.get("page") == "NextSong" and event.get("userId"):
                found += [(str(path), number, event["song"]), (str(path), number, event["artist"])]
    return found


def expected_repairs(root: Path = UDACITY) -> dict[str, tuple[str, str, int, int]]:
    """original → (repaired, first file, first line, count), from the raw JSON and ftfy."""
    out: dict[str, tuple[str, str, int, int]] = {}
    names = sample_names(root)
    counts = Counter(name for _, _, name in names)
    for file, line, name in sorted(names):  # first seen: in path order, the order files are read in
        fixed = expected_repair(name)
        if fixed != name and name not in out:
            out[name] = (fixed, file, line, counts[name])
    return out


def plays_by_artist(db: Database, name: str) -> int:
    return int(
        scalar(db, "SELECT count(*) FROM trackplays p JOIN artists a USING (artist_id) WHERE a.name = %s", (name,))
    )


def stored_names(db: Database) -> dict[str, list[str]]:
    return {where: [r[0] for r in rows(db, query)] for where, query in NAME_QUERIES.items()}


# -- the rule on one name -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("damaged", "repaired"),
    [
        ("BjÃ\x83Â¶rk", "Björk"),
        ("BeyoncÃ\x83Â©", "Beyoncé"),
        ("Michael BublÃ\x83Â©", "Michael Bublé"),
        ("Howlin\x19 For You", "Howlin’ For You"),
        ("The Kids Don\x19t Stand A Chance (Album)", "The Kids Don’t Stand A Chance (Album)"),
        ("Tapes \x18n Tapes", "Tapes ‘n Tapes"),
        ("SinÃ\x83Â©ad O'Connor", "Sinéad O'Connor"),  # a straight quote stays straight
        (
            "Emil Gilels/Orchestre de la SociÃ\x83Â©tÃ\x83Â© des Concerts",
            "Emil Gilels/Orchestre de la Société des Concerts",
        ),
        ("BeyoncÃ©", "Beyoncé"),  # encoded twice only
        ("SÃ\x83Â¥ng", "Sång"),  # ftfy alone stops at SÃ¥ng
        ("En Glad Calypso Om VÃ\x83Â¥ren (Live '62)", "En Glad Calypso Om Våren (Live '62)"),
    ],
)
def test_damaged_names_are_repaired(damaged: str, repaired: str) -> None:
    assert repair_name(damaged) == repaired == expected_repair(damaged)
    assert looks_damaged(damaged) and not looks_damaged(repaired)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_names_come_through_byte_identical(name: str) -> None:
    assert repair_name(name).encode() == name.encode()
    assert not looks_damaged(name)


def test_nothing_else_of_ftfy_applies() -> None:
    """No quote uncurling, width, ligature or HTML change: only the encoding is fixed."""
    for name in ["“Quoted” ‘twice’", "ＷＩＤＥ", "ﬁne ﬂow", "Tom &amp; Jerry", "a&lt;b", "Ⅻ", "…"]:
        assert repair_name(name) == name


def test_every_sample_name_is_repaired_as_ftfy_says() -> None:
    """Every name the sample gives, ASCII or not: the one definition equals the rule's text (ASCII names take the
    shortcut, and ftfy leaves them as they are too)."""
    names = {name for _, _, name in sample_names()}
    assert len(names) > 3000
    assert {name: repair_name(name) for name in names} == {name: expected_repair(name) for name in names}
    ascii_names = [name for name in names if name.isascii() and name.isprintable()]
    assert all(ftfy.fix_encoding(name) == name for name in ascii_names)
    for code in range(128):  # every ASCII character, where the shortcut answers without a look
        name = f"a{chr(code)}b"
        assert repair_name(name) == expected_repair(name)


def test_the_reader_notes_each_repair_once_with_its_first_line() -> None:
    reader = NameReader()
    for line, name in [(3, "Muse"), (4, "BjÃ\x83Â¶rk"), (9, "BjÃ\x83Â¶rk"), (9, "Don\x19t")]:
        reader.line = line
        reader(name)
    assert reader.rows("f.json", 10) == [
        ("f.json", "BjÃ\x83Â¶rk", "Björk", 14, 2),
        ("f.json", "Don\x19t", "Don’t", 19, 1),
    ]
    off = NameReader(repair=False)
    assert off("BjÃ\x83Â¶rk") == "BjÃ\x83Â¶rk" and off.rows("f.json") == []


# -- the readers --------------------------------------------------------------------------------------------------


def _repairs(parsed: Any) -> dict[str, tuple[str, str, int, int]]:
    found: dict[str, tuple[str, str, int, int]] = {}
    for outcome in parsed.files:
        for file, original, repaired, line, count in outcome.names.rows(outcome.path):
            seen = found.get(original)
            first = (file, line) if seen is None else min((seen[1], seen[2]), (file, line))
            found[original] = (repaired, first[0], first[1], count + (seen[3] if seen else 0))
    return found


def test_both_readers_repair_the_sample_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python path (line by line) and the native reader (the batch of small files, read in one pass) stage the
    same plays and note the same repairs, those the raw JSON and ftfy give."""
    logs = tuple(str(p) for p in sorted((UDACITY / "log_data").rglob("*.json")))
    native = parse_log_batch(LogBatchTask(logs, native=True))
    assert native.native > 6000
    lines: list[Any] = [parse_log_lines(LogTask(path)) for path in logs]
    assert native.csv == b"".join(p.csv for p in lines)
    songs = run_task(SongTask(tuple(str(p) for p in sorted((UDACITY / "song_data").rglob("*.json")))))
    assert songs.staged == 71 and _repairs(songs) == {}  # the sample's song files are written correctly
    merged: dict[str, tuple[str, str, int, int]] = {}
    for p in lines:
        for original, (fixed, file, line, count) in _repairs(p).items():
            seen = merged.get(original)
            merged[original] = (
                (fixed, file, line, count) if seen is None else (fixed, seen[1], seen[2], seen[3] + count)
            )
    assert _repairs(native) == merged == expected_repairs()
    for text in (native.csv, b"".join(p.csv for p in lines)):
        assert "Björk".encode() in text and "Ã".encode() not in text and b"\x19" not in text


def test_switched_off_the_readers_keep_names_as_given() -> None:
    logs = tuple(str(p) for p in sorted((UDACITY / "log_data").rglob("*.json")))
    native = parse_log_batch(LogBatchTask(logs, native=True, repair=False))
    lines = b"".join(parse_log_lines(LogTask(path, repair=False)).csv for path in logs)
    assert native.csv == lines
    assert "BjÃ\x83Â¶rk".encode() in lines and b"\x19" in lines
    assert _repairs(native) == {}


# -- loads of the sample ------------------------------------------------------------------------------------------


def assert_names_repaired(db: Database, root: Path = UDACITY) -> None:
    """What the issue asks of a load of the sample: no stored name damaged or holding a control character; Björk
    33 plays and Beyoncé 23 under their real names; the repair table lists every repair."""
    for where, names in stored_names(db).items():
        assert names, where
        assert [n for n in names if looks_damaged(n)] == [], where
        assert [n for n in names if any(c < " " or "\x7f" <= c < "\xa0" for c in n)] == [], where
    raw = Counter(artist for _, _, artist in sample_names()[1::2])  # the raw spellings' play counts
    assert raw["BjÃ\x83Â¶rk"] == 33 and raw["BeyoncÃ\x83Â©"] == 23
    assert plays_by_artist(db, "Björk") == 33
    assert plays_by_artist(db, "Beyoncé") == 23
    assert plays_by_artist(db, "BjÃ\x83Â¶rk") == 0
    repairs = rows(db, "SELECT original, repaired, first_file, first_line, count FROM name_repairs")
    assert {r[0]: tuple(r[1:]) for r in repairs} == expected_repairs(root)
    with db.connect(autocommit=True) as conn:
        assert damaged_names(conn) == []


@pytest.mark.parametrize("reader", ["native", "python"])
def test_a_load_of_the_sample_stores_real_names(db: Database, udacity: Path, reader: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("MUSICSTREAM_NATIVE_MIN_BYTES", "0" if reader == "native" else str(1 << 40))
    result = run_load(db, [udacity], LoadOptions(workers=1))
    assert result.status == "succeeded"
    assert (result.native_lines > 6000) == (reader == "native")
    assert_names_repaired(db)
    want = expected_repairs()
    assert result.names_repaired == sum(r[3] for r in want.values()) and result.spellings_repaired == len(want)
    assert rows(db, "SELECT DISTINCT run_id FROM name_repairs_by_file") == [(result.run_id,)]
    # correct non-ASCII names of the song files come through byte for byte
    assert scalar(db, "SELECT count(*) FROM tracks WHERE title = %s", ("¿Dónde va Chichi?",)) == 1
    with db.connect(autocommit=True) as conn:
        failed = [c.name for c in run_checks(conn) if not c.passed]
    assert failed == []
    again = run_load(db, [udacity], LoadOptions(full=True, workers=1))
    assert again.status == "succeeded" and again.names_repaired == result.names_repaired
    assert_names_repaired(db)  # a file read again replaces its repairs: the counts stay


def test_switched_off_a_load_stores_names_as_given(db: Database, udacity: Path) -> None:
    result = run_load(db, [udacity], LoadOptions(repair_names=False))
    assert result.status == "succeeded" and result.names_repaired == 0
    assert plays_by_artist(db, "BjÃ\x83Â¶rk") == 33 and plays_by_artist(db, "Björk") == 0
    assert scalar(db, "SELECT count(*) FROM play_names WHERE song_title = %s", ("Howlin\x19 For You",)) == 1
    assert rows(db, "SELECT * FROM name_repairs") == []
    with db.connect(autocommit=True) as conn:
        damaged = damaged_names(conn)
        checks = {c.name: c for c in run_checks(conn)}
    assert "BjÃ\x83Â¶rk" in damaged and "Howlin\x19 For You" in damaged
    assert checks["names_not_damaged"].failures == len(damaged) and not checks["names_not_damaged"].passed


def test_correct_names_in_song_files_and_logs_stay_byte_identical(db: Database, tmp_path: Path) -> None:
    """Catalog songs and plays whose names are correct non-ASCII text come through byte for byte and match; a
    damaged spelling of one of them is repaired and meets the catalog."""
    first = next(
        line
        for line in (UDACITY / "log_data" / "2018" / "11" / "2018-11-05-events.json").read_text().splitlines()
        if '"NextSong"' in line
    )
    base = json.loads(first)
    (tmp_path / "song_data").mkdir()
    (tmp_path / "log_data").mkdir()
    events = []
    pairs = list(zip(CORRECT, reversed(CORRECT), strict=True))
    for n, (title, artist) in enumerate(pairs):
        song = {"song_id": f"SONAMES{n:010d}", "title": title, "artist_id": f"ARNAMES{n:010d}", "artist_name": artist}
        song |= {"duration": 200.0, "year": 2000, "artist_location": "", "num_songs": 1}
        song |= {"artist_latitude": None, "artist_longitude": None}
        (tmp_path / "song_data" / f"{n}.json").write_text(json.dumps(song, ensure_ascii=False), encoding="utf-8")
        played = title if n else title.encode().decode("latin-1").encode().decode("latin-1")  # damaged twice
        events.append(
            base | {"song": played, "artist": artist, "length": 200.0, "sessionId": 90000, "itemInSession": n}
        )
    (tmp_path / "log_data" / "names.json").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert run_load(db, [tmp_path]).status == "succeeded"
    catalog = rows(db, "SELECT title, a.name FROM tracks t JOIN artists a USING (artist_id) WHERE NOT t.is_inferred")
    matched = rows(
        db,
        "SELECT n.song_title, n.artist_name FROM trackplays p JOIN play_names n USING (name_id) "
        "JOIN tracks t ON t.track_id = p.track_id WHERE NOT t.is_inferred",
    )
    for found in (catalog, matched):
        assert sorted((t.encode(), a.encode()) for t, a in found) == sorted((t.encode(), a.encode()) for t, a in pairs)
    assert rows(db, "SELECT original, repaired FROM name_repairs") == [("MotÃ\x83Â¶rhead", "Motörhead")]


# -- the Spark engine ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample with its 30 days of logs in one file: big enough that every reader takes it natively."""
    from musicstream.engines.read import NATIVE_MIN_BYTES

    root = tmp_path_factory.mktemp("one-log")
    shutil.copytree(UDACITY / "song_data", root / "song_data")
    (root / "log_data").mkdir()
    days = sorted((UDACITY / "log_data").rglob("*.json"))
    (root / "log_data" / "all-events.json").write_bytes(b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in days))
    assert (root / "log_data" / "all-events.json").stat().st_size >= NATIVE_MIN_BYTES
    return root


@pytest.mark.parametrize("reader", ["python", "native"])
def test_spark_stores_real_names(db: Database, spark: Any, udacity: Path, one_log: Path, reader: str) -> None:
    """Spark's executors read the sample's small log files line by line, and one big file natively."""
    root = udacity if reader == "python" else one_log
    result = run_load(db, [root], LoadOptions(engine="spark"))
    assert result.status == "succeeded"
    assert_names_repaired(db, root)
    want = expected_repairs(root)
    assert result.names_repaired == sum(r[3] for r in want.values()) and result.spellings_repaired == len(want)


def test_spark_switched_off_stores_names_as_given(db: Database, spark: Any, one_log: Path) -> None:
    assert run_load(db, [one_log], LoadOptions(engine="spark", repair_names=False)).status == "succeeded"
    assert plays_by_artist(db, "BjÃ\x83Â¶rk") == 33 and rows(db, "SELECT * FROM name_repairs") == []


@pytest.mark.parametrize("reader", ["python", "native"])
def test_the_lake_holds_real_names(spark: Any, udacity: Path, one_log: Path, tmp_path: Path, reader: str) -> None:
    import pyarrow.parquet as pq

    from musicstream.engines import write_parquet
    from test_spark import current

    root = udacity if reader == "python" else one_log
    result = write_parquet([root], str(tmp_path / "lake"))
    assert result.status == "succeeded"
    lake = current(tmp_path / "lake")
    names = {
        "tracks": [r["title"] for r in pq.read_table(lake / "tracks").to_pylist()],
        "artists": [r["name"] for r in pq.read_table(lake / "artists").to_pylist()],
        "play titles": [r["song_title"] for r in pq.read_table(lake / "trackplays").to_pylist()],
        "play artists": [r["artist_name"] for r in pq.read_table(lake / "trackplays").to_pylist()],
    }
    for where, found in names.items():
        assert found and [n for n in found if looks_damaged(n)] == [], where
    plays = Counter(names["play artists"])
    assert plays["Björk"] == 33 and plays["Beyoncé"] == 23 and plays["BjÃ\x83Â¶rk"] == 0
    repairs = pq.read_table(lake / "name_repairs").to_pylist()
    assert {r["original"]: (r["repaired"], r["first_file"], r["first_line"], r["count"]) for r in repairs} == (
        expected_repairs(root)
    )
    assert result.names_repaired == sum(r[3] for r in expected_repairs(root).values())


# -- repairing a database loaded before -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def with_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample, plus catalog songs that the repaired names meet (Björk's "Undo", played 28 times; a song file
    with a damaged artist name and title) and plays whose names become one name once repaired."""
    root = tmp_path_factory.mktemp("with-catalog")
    shutil.copytree(UDACITY, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md", "SHA256SUMS"))
    extra = root / "song_data" / "Z"
    extra.mkdir()
    songs = [
        ("SOZZNAMES00000001", "Undo", "ARZZNAMES00000001", "Björk", 348.5775),
        ("SOZZNAMES00000002", "Hyperballad\x19s Edit", "ARZZNAMES00000002", "BjÃ\x83Â¶rk", 300.0),
    ]
    for song_id, title, artist_id, artist, duration in songs:
        song = {"song_id": song_id, "title": title, "artist_id": artist_id, "artist_name": artist}
        song |= {"duration": duration, "year": 1997, "artist_location": "", "num_songs": 1}
        song |= {"artist_latitude": None, "artist_longitude": None}
        (extra / f"{song_id}.json").write_text(json.dumps(song), encoding="utf-8")
    first = (UDACITY / "log_data" / "2018" / "11" / "2018-11-05-events.json").read_text().splitlines()
    base = json.loads(next(line for line in first if '"NextSong"' in line))
    events = [
        base | {"artist": artist, "song": "Army Of Me", "length": 200.0, "sessionId": 90001, "itemInSession": n}
        for n, artist in enumerate(["Björk", "BjÃ\x83Â¶rk", "bjÃ\x83Â¶rk"])
    ]
    (root / "log_data" / "names.json").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return root


@pytest.fixture
def repaired_db(embedded: Database) -> Iterator[Database]:
    """A second fresh database, for a load with the repair to compare with."""
    from conftest import _fresh_database
    from musicstream.config import Settings

    yield Database(Settings(database_url=_fresh_database(embedded, "ms_names_repaired"), home=embedded.settings.home))
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS ms_names_repaired WITH (FORCE)")


def test_repair_names_brings_a_database_loaded_as_given_to_a_repaired_load(
    db: Database, repaired_db: Database, with_catalog: Path
) -> None:
    from musicstream.load.repair import repair_names
    from test_order_independence import snapshot

    local_db = repaired_db
    assert run_load(local_db, [with_catalog]).status == "succeeded"
    assert run_load(db, [with_catalog], LoadOptions(repair_names=False)).status == "succeeded"
    undo = "SELECT count(*) FROM trackplays WHERE track_id = 'SOZZNAMES00000001'"
    assert scalar(local_db, undo) == 28 and scalar(db, undo) == 0  # the repair lets the plays meet the catalog
    result = repair_names(db)
    # every damaged spelling the database holds: all those read but one, which no row keeps (rule 7 keeps a name's
    # smallest spelling, and "BjÃ\x83Â¶rk" < "bjÃ\x83Â¶rk")
    expected = expected_repairs(with_catalog)
    assert result.spellings == len(expected) - 1 and result.plays_moved > 28
    assert snapshot(db) == snapshot(local_db)
    assert scalar(db, undo) == 28
    stored = rows(db, "SELECT original, repaired, first_file, first_line FROM name_repairs")
    assert {r[0]: r[1] for r in stored} == {k: v[0] for k, v in expected.items() if k != "bjÃ\x83Â¶rk"}
    assert {(r[2], r[3]) for r in stored} == {(None, 0)}
    with db.connect(autocommit=True) as conn:
        assert damaged_names(conn) == []
        assert all(c.passed for c in run_checks(conn))
    assert repair_names(db).spellings == 0


def test_repair_names_killed_before_its_commit_changes_nothing(db: Database, with_catalog: Path) -> None:
    import os
    import subprocess
    import sys

    from test_order_independence import snapshot

    assert run_load(db, [with_catalog], LoadOptions(repair_names=False)).status == "succeeded"
    before = snapshot(db)
    env = {**os.environ, "MUSICSTREAM_DATABASE_URL": db.conninfo, "MUSICSTREAM_KILL_AT": "repair-names:commit"}
    killed = subprocess.run([sys.executable, "-m", "musicstream", "repair-names"], env=env, capture_output=True)
    assert killed.returncode == -9
    assert snapshot(db) == before and rows(db, "SELECT * FROM name_repairs") == []
    env.pop("MUSICSTREAM_KILL_AT")
    dry = subprocess.run(
        [sys.executable, "-m", "musicstream", "repair-names", "--dry-run", "--json"], env=env, capture_output=True
    )
    assert dry.returncode == 0 and json.loads(dry.stdout)["spellings_repaired"] > 100
    assert snapshot(db) == before
    done = subprocess.run(
        [sys.executable, "-m", "musicstream", "repair-names"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "Repaired" in done.stdout and done.stderr == ""
    assert plays_by_artist(db, "Björk") > 33


def test_the_setting_comes_from_the_option_the_environment_or_the_file(db: Database, tmp_path: Path) -> None:
    """--no-repair-names, MUSICSTREAM_REPAIR_NAMES and [load] repair_names, in that order of precedence (dry runs:
    the staged repairs are counted, nothing is written)."""
    from test_settings import run

    day = tmp_path / "in" / "log_data" / "day.json"
    day.parent.mkdir(parents=True)
    day.write_bytes((UDACITY / "log_data" / "2018" / "11" / "2018-11-02-events.json").read_bytes())
    project = tmp_path / "project"
    project.mkdir()

    def repaired(*args: str, **env: str) -> int:
        code, out, err = run(
            project, "load", "--dry-run", "--json", *args, str(day.parent.parent),
            env={"MUSICSTREAM_DATABASE_URL": db.conninfo, **env},
        )  # fmt: skip
        assert code == 0, err
        return int(json.loads(out)["names_repaired"])

    assert repaired() > 0
    assert repaired("--no-repair-names") == 0
    assert repaired(MUSICSTREAM_REPAIR_NAMES="0") == 0
    assert repaired("--repair-names", MUSICSTREAM_REPAIR_NAMES="0") > 0
    (project / "musicstream.toml").write_text("[load]\nrepair_names = false\n")
    assert repaired() == 0
    assert repaired(MUSICSTREAM_REPAIR_NAMES="1") > 0
