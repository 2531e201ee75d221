"""Rule 9: any order and any split of the files over several runs ends in the same tables as one run.

The file set mixes real udacity days with song files that arrive "late" (rule 8): a catalog song matching a
popular play by normalised name within 1 s, and another song by the same artist, which moves every play of that
artist to the catalog artist. A second copy of a log file under another name checks rule 2.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import UDACITY, rows
from musicstream import run_load
from musicstream.db.connection import Database
from musicstream.db.schema import ROLLUP_TABLES

DAYS = ("2018-11-02", "2018-11-05", "2018-11-21", "2018-11-28")
LATE_SONGS = [
    {
        "num_songs": 1,
        "artist_id": "ARZZTEST000000001",
        "artist_latitude": 35.1,
        "artist_longitude": -85.3,
        "artist_location": "Kentucky",
        "artist_name": "DWIGHT  yoakam ",
        "song_id": "SOZZTEST000000001",
        "title": "you're the ONE",
        "duration": 239.9,
        "year": 1990,
    },
    {
        "num_songs": 1,
        "artist_id": "ARZZTEST000000001",
        "artist_latitude": None,
        "artist_longitude": None,
        "artist_location": "",
        "artist_name": "Dwight Yoakam",
        "song_id": "SOZZTEST000000002",
        "title": "A Song Nobody Played",
        "duration": 100.0,
        "year": 0,
    },
]


def build_corpus(root: Path) -> list[Path]:
    """Four udacity days (one sent twice under another name), the catalog, and late catalog songs (rule 8)."""
    shutil.copytree(UDACITY / "song_data", root / "song_data")
    logs = root / "log_data"
    logs.mkdir()
    for day in DAYS:
        shutil.copy(UDACITY / "log_data" / "2018" / "11" / f"{day}-events.json", logs / f"{day}-events.json")
    shutil.copy(logs / f"{DAYS[0]}-events.json", logs / "resent-copy.json")
    late = root / "song_data" / "Z"
    late.mkdir()
    for song in LATE_SONGS:
        (late / f"{song['song_id']}.json").write_text(json.dumps(song))
    return sorted(p for p in root.rglob("*.json"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """The star schema compared on natural keys (surrogate trackplay_id left out)."""
    return {
        "trackplays": rows(
            db,
            """SELECT user_id, session_id, item_in_session, start_time, tier, p.track_id, p.artist_id, location,
                      user_agent, song_title, artist_name, length_ms
               FROM trackplays p JOIN play_names USING (name_id) ORDER BY 1, 2, 3""",
        ),
        "users": rows(db, "SELECT user_id, first_name, last_name, gender, tier FROM users ORDER BY 1"),
        "tracks": rows(db, "SELECT * FROM tracks ORDER BY track_id"),
        "artists": rows(db, "SELECT * FROM artists ORDER BY artist_id"),
        "timetb": rows(db, "SELECT * FROM timetb ORDER BY start_time"),
        "rollup_sessions": rows(db, "SELECT * FROM rollup_sessions ORDER BY 1, 2, 3, 4, 5, 6"),
        "rollup_hours": rows(db, "SELECT * FROM rollup_hours ORDER BY 1, 2, 3"),
        "rollup_day_tops": rows(db, "SELECT * FROM rollup_day_tops ORDER BY 1, 2, 3, 4"),
        "rollup_day_floors": rows(db, "SELECT * FROM rollup_day_floors ORDER BY 1, 2, 3"),
        # listener numbers follow the order users first appear: the bitmaps differ, the users they name do not
        "rollup_day_sets": rows(
            db,
            """SELECT day, tier, dim, value, plays, length_ms, catalog_plays, first_play, last_play, listeners,
                      ARRAY(SELECT u.user_id FROM users u WHERE bit_is_set(s.users, u.listener_no) ORDER BY 1),
                      ARRAY(SELECT u.user_id FROM users u WHERE bit_is_set(s.openers, u.listener_no) ORDER BY 1),
                      ARRAY(SELECT u.user_id FROM users u WHERE bit_is_set(s.arrivals, u.listener_no) ORDER BY 1)
               FROM rollup_day_sets s ORDER BY 1, 2, 3, 4""",
        ),
        "rollup_session_lengths": rows(db, "SELECT * FROM rollup_session_lengths ORDER BY 1, 2, 3"),
        "rollup_spanning_sessions": rows(db, "SELECT * FROM rollup_spanning_sessions ORDER BY 1, 2, 3"),
        "rollup_session_days": rows(db, "SELECT * FROM rollup_session_days ORDER BY 1, 2, 3"),
        "rollup_user_days": rows(db, "SELECT * FROM rollup_user_days ORDER BY 1, 2, 3"),
        "play_names": rows(
            db,
            """SELECT title_key, artist_key, length_ms, song_title, artist_name, track_id, artist_id
               FROM play_names ORDER BY 1, 2, 3""",
        ),
    }


def reset(db: Database) -> None:
    with db.connect() as conn:
        conn.execute(
            "TRUNCATE trackplays, play_names, users, tracks, artists, timetb, rejects, name_repairs_by_file, "
            "loaded_files, run_files, " + ", ".join(("etl_runs", *ROLLUP_TABLES))
        )


@pytest.fixture(scope="module")
def one_run(corpus: list[Path], embedded: Database, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from conftest import _fresh_database
    from musicstream.config import Settings

    url = _fresh_database(embedded, "ms_order_baseline")
    base = Database(Settings(database_url=url, home=embedded.settings.home))
    run_load(base, corpus)
    return snapshot(base)


def test_late_catalog_reconciles(db: Database, corpus: list[Path], one_run: Any) -> None:
    logs = [p for p in corpus if "log_data" in p.parts]
    songs = [p for p in corpus if "song_data" in p.parts]
    run_load(db, logs)
    assert rows(db, "SELECT count(*) FROM trackplays WHERE track_id LIKE 'SO%%'") == [(0,)]
    inferred_before = rows(db, "SELECT count(*) FROM artists WHERE is_inferred")[0][0]
    run_load(db, songs)
    assert snapshot(db) == one_run
    # the popular song matched the late catalog song within 1 s, by normalised names
    assert (
        rows(
            db,
            "SELECT count(*), min(p.track_id) FROM trackplays p JOIN play_names n USING (name_id) "
            "WHERE song_title = 'You''re The One' AND artist_name = 'Dwight Yoakam'",
        )[0][1]
        == "SOZZTEST000000001"
    )
    # the other Dwight Yoakam play moved to the catalog artist, with an inferred track
    assert rows(
        db,
        "SELECT p.track_id LIKE 'IT-%%', p.artist_id FROM trackplays p JOIN play_names n USING (name_id) "
        "WHERE song_title = 'Listen (LP Version)'",
    ) == [(True, "ARZZTEST000000001")]
    assert rows(db, "SELECT count(*) FROM artists WHERE is_inferred")[0][0] < inferred_before
    assert rows(db, "SELECT count(*) FROM artists WHERE artist_id LIKE 'IA-%%' AND lower(name) LIKE '%%yoakam%%'") == [
        (0,)
    ]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_order_and_split_gives_the_same_tables(
    db: Database, corpus: list[Path], one_run: Any, data: st.DataObject
) -> None:
    order = data.draw(st.permutations(corpus), label="order")
    cuts = data.draw(st.lists(st.integers(1, len(order) - 1), max_size=3, unique=True), label="cuts")
    bounds = [0, *sorted(cuts), len(order)]
    reset(db)
    for start, stop in itertools.pairwise(bounds):
        run_load(db, order[start:stop])
    assert snapshot(db) == one_run


def test_order_baseline_cleanup(embedded: Database) -> None:
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS ms_order_baseline WITH (FORCE)"))


@pytest.mark.parametrize("smallest_in", ["a.json", "b.json"])
def test_events_of_one_key_at_one_instant_pick_the_same_play_whatever_the_file_names(
    db: Database, tmp_path: Path, smallest_in: str
) -> None:
    """Rule 2 within a run: of two events with one natural key and one ts but different content, the one whose
    content sorts first wins, whichever file (name, read order) holds it. The local merge once took whichever
    row its sort met first, and a Spark run could pick the other (a CI failure of test_spark's hostile corpus)."""
    from test_rejects import event

    logs = tmp_path / "log_data"
    logs.mkdir()
    other = "b.json" if smallest_in == "a.json" else "a.json"
    (logs / smallest_in).write_text(json.dumps(event(song="Alpha", location=None)) + "\n")
    (logs / other).write_text(json.dumps(event(song="Zulu")) + "\n" + json.dumps(event(song="Alpha")) + "\n")
    result = run_load(db, [tmp_path])
    assert (result.records_loaded, result.duplicates) == (1, 2)
    assert "natural_key" not in result.timings  # the first load's unsorted insert met the repeated key, and gave way
    # "Alpha" sorts before "Zulu"; of the two "Alpha"s, a NULL location sorts last
    assert rows(db, "SELECT song_title, location FROM trackplays JOIN play_names USING (name_id)") == [
        ("Alpha", "Phoenix-Mesa-Scottsdale, AZ")
    ]
    assert rows(db, "SELECT count(*) FROM play_names") == [(1,)]


def test_a_first_load_without_repeated_keys_inserts_unsorted_and_keeps_the_key(db: Database, tmp_path: Path) -> None:
    """A first load whose plays repeat no natural key inserts them without insert_plays' sort, its key's
    index built at once; the table ends with the same key, which then refuses a repeated play as before."""
    from test_rejects import event

    logs = tmp_path / "log_data"
    logs.mkdir()
    (logs / "a.json").write_text(
        "".join(json.dumps(event(song=song, itemInSession=item)) + "\n" for item, song in enumerate("ABC"))
    )
    result = run_load(db, [tmp_path])
    assert (result.records_loaded, result.duplicates) == (3, 0)
    assert "natural_key" in result.timings
    assert rows(
        db, "SELECT item_in_session, song_title FROM trackplays JOIN play_names USING (name_id) ORDER BY 1"
    ) == [
        (0, "A"),
        (1, "B"),
        (2, "C"),
    ]
    assert rows(
        db,
        "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'trackplays_natural_key'",
    ) == [("u", "UNIQUE (user_id, session_id, item_in_session)")]
    with pytest.raises(psycopg.errors.UniqueViolation), psycopg.connect(db.conninfo) as conn:
        conn.execute(
            "INSERT INTO trackplays (start_time, user_id, tier, track_id, artist_id, session_id, item_in_session,"
            " name_id) SELECT start_time, user_id, tier, track_id, artist_id, session_id, item_in_session, name_id"
            " FROM trackplays"
            " LIMIT 1"
        )


def test_a_first_load_takes_its_start_times_without_the_lookup(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an empty timetb, insert_time runs without its lookup of stored times (new_times_only); plays sharing
    a start time still give one row, the key comes back, and a later run's times are looked up again."""
    from musicstream.load import merge
    from test_rejects import event

    taken: list[str] = []
    execute = merge.execute

    def spy(m: Any, step: Any, statement: str | None = None, **kwargs: Any) -> int:
        if step.name == "insert_time":
            taken.append(statement or step.name)
        return execute(m, step, statement, **kwargs)

    monkeypatch.setattr(merge, "execute", spy)
    first, second = tmp_path / "first" / "log_data", tmp_path / "second" / "log_data"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    ts = 1541106106796
    (first / "a.json").write_text(  # three plays, two of them at the same instant (two users)
        json.dumps(event(ts=ts))
        + "\n"
        + json.dumps(event(ts=ts, userId="9"))
        + "\n"
        + json.dumps(event(ts=ts + 1000, itemInSession=2))
        + "\n"
    )
    result = run_load(db, [first.parent])
    assert (result.records_loaded, result.rows_added["timetb"], taken) == (3, 2, ["insert_time_first"])
    assert rows(db, "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'timetb_pkey'") == [
        ("p", "PRIMARY KEY (start_time)")
    ]
    (second / "b.json").write_text(  # one known instant, one new
        json.dumps(event(ts=ts, itemInSession=3)) + "\n" + json.dumps(event(ts=ts + 5000, itemInSession=4)) + "\n"
    )
    result = run_load(db, [second.parent])
    assert (result.records_loaded, result.rows_added["timetb"], taken[1:]) == (2, 1, ["insert_time"])
    assert rows(db, "SELECT start_time, weekday FROM timetb ORDER BY 1") == rows(
        db, "SELECT DISTINCT start_time, to_char(start_time, 'FMDay') FROM trackplays ORDER BY 1"
    )
    assert rows(db, "SELECT count(*) FROM timetb") == [(3,)]


def _without(statement: str, *clauses: str) -> str:
    """``statement`` less the clauses given as regular expressions (each must be found once), its comments gone."""
    text = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
    for clause in clauses:
        text, found = re.subn(clause, "", text, flags=re.DOTALL)
        assert found == 1, clause
    return " ".join(text.replace(";", "").split())


def test_insert_time_first_is_insert_time_less_the_lookup_and_the_order() -> None:
    from musicstream.db.sqlfiles import named_statements

    statements = named_statements("load/merge")
    written, first = statements["insert_time"], statements["insert_time_first"]
    assert "NOT EXISTS" in written and "ORDER BY" in written
    assert _without(
        written, r"\nWHERE NOT EXISTS \(SELECT 1 FROM timetb [^\n]*\)", r"\nORDER BY start_time"
    ) == _without(first)


def test_insert_plays_first_is_insert_plays_less_the_winners_and_the_lookup() -> None:
    """A first load's insert_plays: the same columns from the same join, without DISTINCT ON, the lookup of stored
    keys and the ORDER BY."""
    from musicstream.db.sqlfiles import named_statements

    statements = named_statements("load/merge")
    written, first = statements["insert_plays"], statements["insert_plays_first"]
    for part in ("DISTINCT ON", "NOT EXISTS", "ORDER BY"):
        assert part in written and part not in first
    assert _without(
        written, r"DISTINCT ON \([^)]*\)\s*", r"\nWHERE NOT EXISTS \(\n.*?\n\)", r"\nORDER BY [^;]*"
    ) == _without(first)
