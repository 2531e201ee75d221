"""The star schema, the report and the curated queries against an independent reference (tests/reference.py,
written from docs/rules.md without the project's code or SQL), on a generated sample plus files built to sit
exactly on and just past every rule's edges: 1.000 s and 1.001 s from a catalog duration, ties broken by id, the
same natural key twice in one run, users' latest events tied on time, Unicode spellings, NULLs and empties."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import reference
from conftest import rows
from musicstream import LoadOptions, run_load
from musicstream import queries as curated
from musicstream.db.connection import Database
from musicstream.generate import generate
from musicstream.report import ReportFilters, build_report

T0 = 1543190400000  # 2018-11-26 00:00:00 UTC, a Monday


def _song(song_id: str, title: str, artist_id: str, artist: str, duration: float, **extra: Any) -> dict[str, Any]:
    return {
        "num_songs": 1,
        "artist_id": artist_id,
        "artist_latitude": extra.get("latitude"),
        "artist_longitude": extra.get("longitude"),
        "artist_location": extra.get("location", ""),
        "artist_name": artist,
        "song_id": song_id,
        "title": title,
        "duration": duration,
        "year": extra.get("year", 0),
    }


SONGS = [
    # rule 6's tolerance: plays 1.000 s away match, 1.001 s away do not (both sides)
    _song("SOEDGE0000000001", "Edge Song", "AREDGE0000000001", "Edge Band", 300.0, year=2001, location="Oslo"),
    # rule 6's tie: two candidates 1.000 s away on either side: the smaller id wins; a closer one wins outright
    _song("SOTIEB0000000002", "Tie Song", "ARTIE00000000001", "Tie Band", 102.0),
    _song("SOTIEA0000000001", "Tie Song", "ARTIE00000000001", "Tie Band", 100.0),
    _song("SOCLOSE000000001", "Close Song", "ARCLOSE000000001", "Close Band", 200.0),
    _song("SOCLOSE000000002", "Close Song", "ARCLOSE000000001", "Close Band", 200.4),
    # rule 6's normalisation: full-width letters, case, runs of white space
    _song("SOWIDE0000000001", "Ｆｕｌｌ  Ｗｉｄｔｈ", "ARWIDE0000000001", "The   ARTIST", 150.25),
    # rule 7: two catalog artists share a normalised name: an unmatched play takes the smaller id
    _song("SOSHAREB00000001", "Known B", "ARSHARE000000002", "Shared Name", 90.0),
    _song("SOSHAREA00000001", "Known A", "ARSHARE000000001", "shared  name", 95.0),
    # rule 7: one catalog artist under two spellings that normalise apart: two play names, one inferred track
    _song("SOMULTI000000001", "Multi A", "ARMULTI000000001", "Multi Band", 70.0),
    _song("SOMULTI000000002", "Multi B", "ARMULTI000000001", "Multi Band feat. X", 71.0),
    # rule 6's reading of names: a song file's damaged title and artist name, repaired, meet correctly spelt plays
    _song("SONAME0000000001", "HoppÃ\x83Â\xadpolla", "ARNAME0000000001", "Sigur RÃ\x83Â³s", 270.0),
    # rule 5: an artist in two songs takes the details of the smaller song id; NULLs and empties
    _song("SODETB0000000002", "Detail B", "ARDET00000000001", "Detail Artist", 80.0, location="Berlin", latitude=52.5),
    _song("SODETA0000000001", "Detail A", "ARDET00000000001", "Detail Artist", 81.0, location="Paris", latitude=48.85),
]


def _event(user: int, session: int, item: int, ts: int, **extra: Any) -> dict[str, Any]:
    event = {
        "artist": "Edge Band",
        "auth": "Logged In",
        "firstName": f"First{user}",
        "gender": "F",
        "itemInSession": item,
        "lastName": f"Last{user}",
        "length": 300.0,
        "level": "free",
        "location": "Springfield, IL",
        "method": "PUT",
        "page": "NextSong",
        "registration": 1540344794796.0,
        "sessionId": session,
        "song": "Edge Song",
        "status": 200,
        "ts": ts,
        "userAgent": '"Mozilla/5.0 (Edge)"',
        "userId": str(user),
    }
    event.update(extra)
    return event


def _edge_events() -> list[dict[str, Any]]:
    m = 60_000
    return [
        # rule 6: 1.000 s and 1.001 s either side of 300.0
        _event(9001, 1, 0, T0, length=301.0),
        _event(9001, 1, 1, T0 + m, length=301.001),
        _event(9001, 1, 2, T0 + 2 * m, length=299.0),
        _event(9001, 1, 3, T0 + 3 * m, length=298.999),
        _event(9001, 1, 4, T0 + 4 * m, length=299.9995),  # 299.9995 s is 300.000 s to the millisecond (rule 6)
        _event(9001, 1, 5, T0 + 5 * m, song="Tie Song", artist="Tie Band", length=101.0),
        _event(9001, 1, 6, T0 + 6 * m, song="Close Song", artist="Close Band", length=200.3),
        _event(9001, 1, 7, T0 + 7 * m, song="full width", artist="the artist", length=150.0),
        _event(9001, 1, 8, T0 + 8 * m, song="Unknown Song", artist="SHARED NAME", length=61.0),
        _event(9001, 1, 9, T0 + 9 * m, song="Nobody's Song", artist="Nobody", length=62.0),
        _event(9001, 1, 10, T0 + 10 * m, song="nobody's   song", artist="NOBODY", length=62.0),
        # rule 7: an inferred artist's name and an inferred track's title are the smallest spellings of their names
        _event(9001, 1, 11, T0 + 11 * m, song="Other Song", artist="nobody", length=63.0),
        _event(9001, 1, 12, T0 + 12 * m, song="Shared Title", artist="Multi Band", length=80.0),
        _event(9001, 1, 13, T0 + 13 * m, song="SHARED TITLE", artist="multi band feat. x", length=80.0),
        # rule 6: correct spellings, damaged ones (double-encoded, a cut quote), one name once repaired
        _event(9001, 1, 14, T0 + 14 * m, song="Hoppípolla", artist="Sigur Rós", length=270.0),
        _event(9001, 1, 15, T0 + 15 * m, song="Hoppípolla", artist="Sigur RÃ\x83Â³s", length=270.0),
        _event(9001, 1, 16, T0 + 16 * m, song="Don\x19t Stop", artist="BjÃ\x83Â¶rk", length=120.0),
        _event(9001, 1, 17, T0 + 17 * m, song="Don’t Stop", artist="Björk", length=121.0),
        # rule 2: the same key twice in one run, the earlier event listed second: the earlier one wins
        _event(9002, 5, 0, T0 + 5000, location="Later, TX"),
        _event(9002, 5, 0, T0 + 1000, location="Earlier, TX"),
        # rule 3: a user's latest event by (ts, session, item): ties on ts go to the session, then to the item
        _event(9003, 7, 0, T0 + m, level="free", firstName="Ann"),
        _event(9003, 8, 0, T0 + m, level="paid", firstName="Bea", page="Home"),
        _event(9003, 8, 1, T0 + 2 * m, level="free", firstName="Cid", page="Home"),
        _event(9003, 8, 2, T0 + 2 * m, level="paid", firstName="Dot", page="Home"),
        # tier changes free → paid → free; an unnamed user; agents without quotes; empty location
        _event(9004, 9, 0, T0 + 3 * m, level="free"),
        _event(9004, 9, 1, T0 + 4 * m, level="paid"),
        _event(9004, 9, 2, T0 + 5 * m, level="free", firstName="", lastName=None, location="", userAgent="bare"),
        # rule 4: the last millisecond of 2018 (ISO week 1 of 2019, a Monday) and its Sunday before
        _event(9005, 11, 0, 1546300799999),
        _event(9005, 11, 1, 1546128000000, level="paid"),
        # rule 1: a logged-out play is skipped; a play at the first millisecond of a day
        _event(9005, 12, 0, T0 + 100, userId=""),
        _event(9005, 12, 1, T0 - 86_400_000),
        # values of other JSON types that convert (the careful path): lengths kept to the nearest millisecond
        _event(9006, 13, 0, T0 + 11 * m, userId=9006, length=123.4567, song="Odd Length"),
        _event(9006, 13, 1, T0 + 12 * m, sessionId="13", length="77.7777", song="Odd Length"),
        # the report's 30-day window ends on the last day with plays (2018-12-31): 12-02 is in it, 12-01 is not
        _event(9007, 14, 0, 1543622400000 + 3_600_000),
        _event(9008, 15, 0, 1543708800000 + 3_600_000),
    ]


def build_corpus(root: Path) -> Path:
    """A generated sample plus the rule-edge songs and events above, under ``root``."""
    generate(root, users=40, days=12, songs=300, seed=5, events=6000)
    for song in SONGS:
        folder = root / "song_data" / "E" / "D" / "G"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{song['song_id']}.json").write_text(json.dumps(song, ensure_ascii=False))
    # catalog songs the generated plays name, 1.000 s away from one of their lengths: matches on the edge
    logs = sorted((root / "log_data").rglob("*.json"))
    played = [json.loads(line) for line in logs[0].read_text().splitlines() if '"NextSong"' in line][:3]
    for n, e in enumerate(played):
        edge = _song(f"SOGEN{n:011d}", e["song"], f"ARGEN{n:011d}", e["artist"], e["length"] + (1.0, -1.0, 1.001)[n])
        (root / "song_data" / "E" / "D" / "G" / f"{edge['song_id']}.json").write_text(json.dumps(edge))
    edge_log = root / "log_data" / "edge" / "edges.json"
    edge_log.parent.mkdir(parents=True)
    edge_log.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in _edge_events()) + "\n")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="module")
def expected(corpus: Path) -> reference.Star:
    return reference.build([corpus])


STAR_SQL = {
    "trackplays": "SELECT user_id, session_id, item_in_session, start_time, tier, track_id, artist_id, location, "
    "user_agent FROM trackplays",
    "users": "SELECT user_id, first_name, last_name, gender, tier FROM users",
    "tracks": "SELECT track_id, title, artist_id, year, duration, is_inferred FROM tracks",
    "artists": "SELECT artist_id, name, location, latitude, longitude, is_inferred FROM artists",
    "timetb": "SELECT start_time, hour, day, week, month, year, weekday FROM timetb",
}


def star_of(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {table: sorted(rows(db, query)) for table, query in STAR_SQL.items()}


@pytest.fixture(scope="module")
def loaded(corpus: Path, embedded: Database) -> Any:
    from conftest import _fresh_database

    url = _fresh_database(embedded, "ms_reference")
    db = Database(type(embedded.settings)(database_url=url, home=embedded.settings.home))
    result = run_load(db, [corpus], LoadOptions(workers=1))
    assert result.status == "succeeded" and result.rejected == 0
    yield db
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS ms_reference WITH (FORCE)")


def test_star_equals_the_reference(loaded: Database, expected: reference.Star) -> None:
    found, want = star_of(loaded), expected.tables()
    for table in want:
        assert found[table] == want[table], table


@pytest.mark.parametrize("workers", [1, 2])
def test_native_parsing_equals_the_reference(
    corpus: Path, expected: reference.Star, db: Database, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """The same corpus with every log file parsed natively (its files are small: the Python path reads them by
    default), in this process and in worker processes."""
    monkeypatch.setenv("MUSICSTREAM_NATIVE_MIN_BYTES", "0")
    result = run_load(db, [corpus], LoadOptions(workers=workers))
    assert result.status == "succeeded" and result.rejected == 0
    assert result.native_lines > 6000  # every plain line (the edge file's odd ones take the Python path)
    found, want = star_of(db), expected.tables()
    for table in want:
        assert found[table] == want[table], table


def test_the_edges_are_where_the_rules_put_them(loaded: Database) -> None:
    """The edge cases by hand, so that a reference sharing a mistake with the loader cannot hide it."""
    track = dict(
        ((item, length), tid)
        for item, length, tid in rows(
            loaded,
            "SELECT item_in_session, length_ms, p.track_id FROM trackplays p JOIN play_names USING (name_id) "
            "WHERE user_id = 9001",
        )
    )
    assert track[(0, 301000)] == track[(2, 299000)] == track[(4, 300000)] == "SOEDGE0000000001"
    assert track[(1, 301001)].startswith("IT-") and track[(3, 298999)].startswith("IT-")
    assert track[(5, 101000)] == "SOTIEA0000000001"
    assert track[(6, 200300)] == "SOCLOSE000000002"
    assert track[(7, 150000)] == "SOWIDE0000000001"
    assert track[(9, 62000)] == track[(10, 62000)]  # one inferred track for both spellings
    assert track[(12, 80000)] == track[(13, 80000)]  # two names of one catalog artist: one inferred track
    assert rows(loaded, "SELECT title, artist_id FROM tracks WHERE track_id = %s", (track[(12, 80000)],)) == [
        ("SHARED TITLE", "ARMULTI000000001")
    ]
    named = "SELECT name FROM artists JOIN trackplays USING (artist_id) WHERE user_id = 9001 AND item_in_session = 11"
    assert rows(loaded, named) == [("NOBODY",)]
    assert rows(loaded, "SELECT artist_id FROM trackplays WHERE user_id = 9001 AND item_in_session = 8") == [
        ("ARSHARE000000001",)
    ]
    assert rows(loaded, "SELECT location FROM trackplays WHERE user_id = 9002") == [("Earlier, TX",)]
    assert rows(loaded, "SELECT first_name, tier FROM users WHERE user_id = 9003") == [("Dot", "paid")]
    assert rows(loaded, "SELECT first_name, last_name FROM users WHERE user_id = 9004") == [("Unknown", "Unknown")]
    assert rows(loaded, "SELECT location, latitude FROM artists WHERE artist_id = 'ARDET00000000001'") == [
        ("Paris", Decimal("48.85"))
    ]
    assert rows(loaded, "SELECT week, weekday FROM timetb WHERE start_time = '2018-12-31 23:59:59.999'") == [
        (1, "Monday")
    ]
    assert rows(loaded, "SELECT count(*) FROM trackplays WHERE user_id = 9005") == [(3,)]


FILTERS = [
    ReportFilters(),
    ReportFilters(since=dt.date(2018, 11, 26), until=dt.date(2018, 12, 2), tier="paid", top=5),
    ReportFilters(tier="free", top=3),
    ReportFilters(since=dt.date(2018, 11, 3), until=dt.date(2018, 11, 9)),
]


def _top(rows: list[dict[str, Any]], ident: str) -> list[tuple[Any, ...]]:
    return [(r[ident], r["plays"], r["listeners"]) for r in rows]


@pytest.mark.parametrize("filters", FILTERS, ids=["all", "paid-week", "free-top3", "first-week"])
def test_report_equals_the_reference(loaded: Database, expected: reference.Star, filters: ReportFilters) -> None:
    with loaded.connect() as conn:
        got = build_report(conn, filters)
        wide = build_report(conn, ReportFilters(filters.since, filters.until, filters.tier, top=1000))
    want = reference.report(expected, filters.since, filters.until, filters.tier, filters.top)
    everything = reference.report(expected, filters.since, filters.until, filters.tier, 1000)
    head = got["headline"]
    assert {k: head[k] for k in want["headline"]} == want["headline"]
    assert head["songs_per_session"] == (round(head["plays"] / head["sessions"], 2) if head["sessions"] else None)
    for kind, ident in (("top_tracks", "track_id"), ("top_artists", "artist_id")):
        assert _top(got[kind]["by_plays"], ident) == want[kind]["by_plays"], kind
        assert _top(got[kind]["by_listeners"], ident) == want[kind]["by_listeners"], kind
    assert [(d["day"], d["listeners"], d["plays"]) for d in got["daily"]] == want["daily"]
    assert got["hour_weekday"]["plays"] == want["hour_weekday"]
    assert {t: (got["tiers"]["plays"][t], got["tiers"]["listeners"][t]) for t in got["tiers"]["plays"]} == want["tiers"]
    assert got["tiers"]["current_tier_of_listeners"] == want["current_tiers"]
    assert {k: got["tier_changes"][k] for k in want["tier_changes"]} == want["tier_changes"]
    assert got["data_quality"]["matched_to_catalog"] == want["matched_to_catalog"]
    # lists ordered by a name: compared whole (the server's collation may order equal counts' names otherwise)
    assert sorted(_top(wide["locations"], "location")) == sorted(everything["locations"])
    assert [(r["plays"], r["listeners"]) for r in got["locations"]] == [r[1:] for r in want["locations"]]
    assert sorted(_top(wide["user_agents"], "user_agent")) == sorted(everything["user_agents"])
    assert [r["plays"] for r in got["user_agents"]] == [r[1] for r in want["user_agents"]]


@pytest.mark.parametrize(
    "period", [(None, None), (dt.date(2018, 11, 26), dt.date(2018, 12, 31))], ids=["all", "last-weeks"]
)
def test_curated_queries_equal_the_reference(
    loaded: Database, expected: reference.Star, period: tuple[dt.date | None, dt.date | None]
) -> None:
    since, until = period
    want = reference.queries(expected, since, until)
    dates = [f"since={since}", f"until={until}"] if since else []

    def answer(name: str, *params: str) -> list[dict[str, Any]]:
        query = curated.get(name)
        with loaded.connect() as conn:
            return curated.run(conn, query, curated.bind(query, [*dates, *params]))[1]

    titles = {t: title for t, title in rows(loaded, "SELECT track_id, title FROM tracks")}
    top = answer("top_tracks", "limit=15")
    assert [(r["title"], r["plays"], r["listeners"]) for r in top] == [
        (titles[t], p, n) for t, p, n in want["top_tracks"][:15]
    ]
    hourly = answer("hourly_pattern")
    assert [(r["hour_utc"], r["plays"], r["listeners"], r["percent"]) for r in hourly] == want["hourly_pattern"]
    lengths = answer("session_lengths")
    labels = ["1 song", "2-5 songs", "6-10 songs", "11-20 songs", "21-50 songs", "over 50 songs"]
    assert {r["session_length"]: (r["sessions"], r["avg_songs"], r["median_minutes"]) for r in lengths} == {
        labels[b - 1]: v for b, v in want["session_lengths"].items()
    }
    for artist in ("edge BAND", "Nobody", "detail artist"):  # the name compared case-insensitively
        fans = answer("artist_listeners", f"artist={artist}")
        assert [tuple(r.values()) for r in fans] == want["artist_listeners"].get(artist.lower(), []), artist
        assert fans or artist == "detail artist"
    (conversion,) = answer("free_to_paid")
    assert (conversion["started_free"], conversion["converted"]) == want["free_to_paid"]
    assert conversion["avg_days_to_convert"] == want["days_to_convert"]


def test_split_runs_with_a_late_catalog_equal_the_reference(corpus: Path, db: Database, tmp_path: Path) -> None:
    """The same files over three runs: the newer logs first, then the older ones with the edge file sent again
    under another name (duplicates of stored plays, rule 2), then the catalog last (rule 8 moves plays to it and
    removes the inferred rows no play uses). Rule 3: the older logs must not roll a user back."""
    logs = sorted(p for p in (corpus / "log_data").rglob("*.json") if "edge" not in p.parts)
    edge = corpus / "log_data" / "edge" / "edges.json"
    again = tmp_path / "log_data" / "again.json"
    again.parent.mkdir(parents=True)
    again.write_bytes(edge.read_bytes())
    # smaller spellings of an inferred track's title and artist's name arrive in a later run: they win (rule 7)
    spelled = tmp_path / "log_data" / "spelled.json"
    spelled.write_text(json.dumps(_event(9009, 16, 0, T0, song="NOBODY'S SONG", artist=" NOBODY", length=62.0)))
    half = len(logs) // 2
    for batch in ([*logs[half:], edge], [*logs[:half], again, spelled], [corpus / "song_data"]):
        result = run_load(db, batch, LoadOptions(workers=1))
        assert result.status == "succeeded" and result.reconciles
    assert result.rows_added["plays_moved_to_catalog"] > 0
    found, want = star_of(db), reference.build([corpus, spelled]).tables()
    assert ("NOBODY'S SONG",) in [t[1:2] for t in want["tracks"]] and (" NOBODY",) in [a[1:2] for a in want["artists"]]
    for table in want:
        assert found[table] == want[table], table
