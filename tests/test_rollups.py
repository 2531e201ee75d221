"""The report's rollups (schema 0006) and the report built on them.

- After loads in any order and split, with a late catalog that moves known plays (rule 8), the rollups equal
  aggregates computed here from trackplays (with window functions, not the load's SQL).
- The migration fills them for a database loaded before it.
- The report equals the report of the statements it had before the rollups (their text is kept below) for
  several filters.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import rows
from musicstream import run_load
from musicstream.db.connection import Database
from musicstream.db.schema import migrate
from musicstream.report import ReportFilters, build_report
from musicstream.report import build as report_build
from test_keys import back_to_version_6
from test_order_independence import build_corpus, reset

# The rollups as the report needs them, from the plays: first and last by (start_time, item_in_session) per row.
SESSIONS_FROM_PLAYS = """
WITH plays AS (
    SELECT p.start_time::date AS day, p.tier, p.user_id, p.session_id, p.location, p.user_agent, p.start_time,
           p.item_in_session, n.length_ms, t.is_inferred,
           row_number() OVER w_first AS from_first, row_number() OVER w_last AS from_last
    FROM trackplays p
    JOIN play_names n ON n.name_id = p.name_id
    JOIN tracks t ON t.track_id = p.track_id
    WINDOW w_first AS (PARTITION BY p.start_time::date, p.tier, p.user_id, p.session_id, p.location, p.user_agent
                       ORDER BY p.start_time, p.item_in_session),
           w_last AS (PARTITION BY p.start_time::date, p.tier, p.user_id, p.session_id, p.location, p.user_agent
                      ORDER BY p.start_time DESC, p.item_in_session DESC)
)
SELECT day, tier, user_id, session_id, location, user_agent, count(*)::int, sum(length_ms)::bigint,
       sum(CASE WHEN is_inferred THEN 0 ELSE 1 END)::int,
       max(start_time) FILTER (WHERE from_first = 1), max(item_in_session) FILTER (WHERE from_first = 1),
       max(start_time) FILTER (WHERE from_last = 1), max(item_in_session) FILTER (WHERE from_last = 1)
FROM plays
GROUP BY day, tier, user_id, session_id, location, user_agent
ORDER BY 1, 2, 3, 4, 5, 6
"""
HOURS_FROM_PLAYS = """
SELECT date_trunc('day', start_time)::date, date_part('hour', start_time)::int, tier, count(*)::int
FROM trackplays GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_corpus(tmp_path_factory.mktemp("rollup_corpus"))


def rollups(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "sessions": rows(
            db,
            """SELECT day, tier, user_id, session_id, location, user_agent, plays, length_ms, catalog_plays,
                      first_play, first_item, last_play, last_item
               FROM rollup_sessions ORDER BY 1, 2, 3, 4, 5, 6""",
        ),
        "hours": rows(db, "SELECT day, hour, tier, plays FROM rollup_hours ORDER BY 1, 2, 3"),
    }


def from_plays(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {"sessions": rows(db, SESSIONS_FROM_PLAYS), "hours": rows(db, HOURS_FROM_PLAYS)}


def test_rollups_follow_a_late_catalog(db: Database, corpus: list[Path]) -> None:
    logs = [p for p in corpus if "log_data" in p.parts]
    songs = [p for p in corpus if "song_data" in p.parts]
    run_load(db, logs[:2])
    assert rollups(db) == from_plays(db)
    assert rows(db, "SELECT sum(catalog_plays) FROM rollup_sessions") == [(0,)]  # no catalog yet
    run_load(db, logs[2:])
    assert rollups(db) == from_plays(db)
    run_load(db, songs)  # rule 8 moves known plays to catalog tracks
    after = rollups(db)
    assert after == from_plays(db)
    matched = rows(db, "SELECT sum(catalog_plays) FROM rollup_sessions")[0][0]
    assert (
        matched
        == rows(db, "SELECT count(*) FROM trackplays p JOIN tracks t USING (track_id) WHERE NOT t.is_inferred")[0][0]
    )
    assert matched > 0
    assert sum(r[6] for r in after["sessions"]) == rows(db, "SELECT count(*) FROM trackplays")[0][0]
    # NULL locations and agents are rows like any other (the unique index treats NULLs as equal)
    assert rows(db, "SELECT count(*) FROM trackplays WHERE location IS NULL")[0][0] == 0 or any(
        r[4] is None for r in after["sessions"]
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_rollups_equal_the_plays_in_any_order_and_split(
    db: Database,
    corpus: list[Path],
    data: st.DataObject,
) -> None:
    order = data.draw(st.permutations(corpus), label="order")
    cuts = data.draw(st.lists(st.integers(1, len(order) - 1), max_size=3, unique=True), label="cuts")
    bounds = [0, *sorted(cuts), len(order)]
    reset(db)
    for start, stop in itertools.pairwise(bounds):
        run_load(db, order[start:stop])
        assert rollups(db) == from_plays(db)


def test_migration_fills_the_rollups_of_a_loaded_database(db: Database, corpus: list[Path]) -> None:
    run_load(db, corpus)
    expected = from_plays(db)
    assert expected["sessions"]
    with db.connect(autocommit=True) as conn:
        back_to_version_6(conn)
        conn.execute("DROP TABLE rollup_sessions, rollup_hours CASCADE")
        conn.execute("DELETE FROM schema_migrations WHERE version = 6")
        assert migrate(conn) == [6, 7]
    assert rollups(db) == expected


# The report's statements before the rollups (musicstream 0.x, sql/report/report.sql), kept verbatim as the
# reference: every figure from the plays of the period.
OLD_STATEMENTS = {
    "headline": """
WITH per_session AS (
    SELECT p.user_id, p.session_id, count(*) AS plays, sum(n.length_ms) AS length_ms,
           min(p.start_time) AS first_play, max(p.start_time) AS last_play
    FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text) p
    JOIN play_names n USING (name_id)
    GROUP BY p.user_id, p.session_id
)
SELECT coalesce(sum(plays), 0) AS plays,
       count(DISTINCT user_id) AS listeners,
       coalesce(sum(length_ms), 0) / 3600000.0 AS listening_hours,
       count(*) AS sessions,
       min(first_play) AS first_play,
       max(last_play) AS last_play
FROM per_session
""",
    "daily_listeners": """
WITH daily AS (
    SELECT start_time::date AS day, count(DISTINCT user_id) AS listeners, count(*) AS plays
    FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text)
    GROUP BY 1
)
SELECT d::date AS day, coalesce(daily.listeners, 0) AS listeners, coalesce(daily.plays, 0) AS plays
FROM generate_series((SELECT min(day) FROM daily), (SELECT max(day) FROM daily), INTERVAL '1 day') d
LEFT JOIN daily ON daily.day = d::date
ORDER BY 1
""",
    "monthly_window": """
WITH last AS (SELECT max(start_time)::date AS day FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text))
SELECT count(DISTINCT p.user_id) AS mau, min(last.day) - 29 AS window_start, min(last.day) AS window_end
FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text) p, last
WHERE p.start_time >= last.day - 29
""",
    "hour_weekday": """
SELECT extract(isodow FROM start_time)::int AS weekday, extract(hour FROM start_time)::int AS hour,
       count(*) AS plays
FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text)
GROUP BY 1, 2
ORDER BY 1, 2
""",
    "tiers": """
SELECT tier, count(*) AS plays, count(DISTINCT user_id) AS listeners
FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text)
GROUP BY tier
ORDER BY tier
""",
    "current_tiers": """
SELECT u.tier, count(*) AS users
FROM users u
WHERE u.user_id IN (SELECT user_id FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text))
GROUP BY u.tier
ORDER BY u.tier
""",
    "tier_changes": """
WITH seq AS (
    SELECT user_id, tier,
           lag(tier) OVER (PARTITION BY user_id ORDER BY start_time, session_id, item_in_session) AS previous
    FROM report_plays(%(since)s::date, %(until)s::date, NULL)
)
SELECT count(DISTINCT user_id) FILTER (WHERE previous = 'free' AND tier = 'paid') AS upgraded,
       count(DISTINCT user_id) FILTER (WHERE previous = 'paid' AND tier = 'free') AS downgraded,
       count(DISTINCT user_id) FILTER (WHERE previous <> tier) AS changed
FROM seq
""",
    "top_locations": """
SELECT coalesce(location, '(unknown)') AS location, count(*) AS plays, count(DISTINCT user_id) AS listeners
FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text)
GROUP BY 1
ORDER BY plays DESC, listeners DESC, location
LIMIT %(top)s
""",
    "user_agents": """
SELECT coalesce(user_agent, '') AS user_agent, count(*) AS plays, count(DISTINCT user_id) AS listeners
FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text)
GROUP BY 1
ORDER BY plays DESC, user_agent
""",
    "catalog_match": """
SELECT count(*) FILTER (WHERE NOT t.is_inferred) AS matched, count(*) AS plays
FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text) p
JOIN tracks t USING (track_id)
""",
}

FILTERS = [
    ReportFilters(),
    ReportFilters(tier="free"),
    ReportFilters(tier="paid", top=3),
    ReportFilters(since=dt.date(2018, 11, 5), until=dt.date(2018, 11, 21)),
    ReportFilters(since=dt.date(2018, 11, 21), tier="paid"),
    ReportFilters(until=dt.date(2018, 11, 4), tier="free", top=5),
    ReportFilters(since=dt.date(2018, 11, 15), until=dt.date(2018, 11, 15)),
    ReportFilters(since=dt.date(2019, 1, 1)),  # no plays
]


def _old_report(db: Database, filters: ReportFilters, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    current = report_build.named_statements("report/report")
    with monkeypatch.context() as patch:
        patch.setattr(report_build, "named_statements", lambda name: {**current, **OLD_STATEMENTS})
        with db.connect() as conn:
            return build_report(conn, filters)


def test_report_equals_the_report_from_the_plays(
    db: Database,
    udacity: Path,
    corpus: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the whole sample in two runs (catalog last, so rule 8 moves plays), plus the corpus's late catalog songs
    logs = sorted((udacity / "log_data").rglob("*.json"))
    run_load(db, logs[: len(logs) // 2])
    run_load(db, [udacity / "song_data", *logs[len(logs) // 2 :]])
    run_load(db, [p for p in corpus if "song_data" in p.parts and "Z" in p.parts])
    assert rows(db, "SELECT count(*) FROM trackplays")[0][0] == 6820
    current = report_build.named_statements("report/report")
    assert set(OLD_STATEMENTS) < set(current)
    assert all(" ".join(OLD_STATEMENTS[n].split()) not in " ".join(current[n].split()) for n in OLD_STATEMENTS)
    seen_changes = False
    for filters in FILTERS:
        with db.connect() as conn:
            new = build_report(conn, filters)
        old = _old_report(db, filters, monkeypatch)
        assert json.dumps(new, default=str, sort_keys=True) == json.dumps(old, default=str, sort_keys=True), filters
        assert new == old, filters
        seen_changes |= new["tier_changes"]["upgraded"] > 0 and new["tier_changes"]["downgraded"] > 0
    assert seen_changes


def _synthetic_events(seed: int) -> list[dict[str, Any]]:
    """Plays built to stress the rollups: tiers switching back and forth within and across sessions, equal start
    times in different sessions and items, sessions crossing midnight, locations and agents missing or changing."""
    import random

    rng = random.Random(seed)
    start = 1541030400000  # 2018-11-01 00:00 UTC
    songs = [("Song A", "Artist A", 200.0), ("Song B", "Artist B", 123.4), ("Intro", "Artist C", 61.0)]
    events = []
    for user in range(1, 13):
        for session in rng.sample(range(100, 130), 3):
            ts = start + rng.randrange(0, 6 * 86400000, 3600000) - rng.choice([0, 60000])
            for item in range(rng.randrange(1, 7)):
                song, artist, length = rng.choice(songs)
                events.append(
                    {
                        "artist": artist,
                        "auth": "Logged In",
                        "firstName": f"U{user}",
                        "gender": "F",
                        "itemInSession": item,
                        "lastName": "Test",
                        "length": length,
                        "level": rng.choice(["free", "paid"]),
                        "location": rng.choice(["Here, XX", "There, YY", None]),
                        "method": "PUT",
                        "page": "NextSong",
                        "registration": 1540000000000.0,
                        "sessionId": session,
                        "song": song,
                        "status": 200,
                        "ts": ts,
                        "userAgent": rng.choice(['"Mozilla/5.0 (Macintosh)"', '"Mozilla/5.0 (Windows NT 6.1)"', None]),
                        "userId": str(user),
                    }
                )
                ts += rng.choice([0, 0, 30000, 3600000])  # equal times, and a session may cross midnight
    return events


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_report_equals_the_report_from_the_plays_on_synthetic_plays(
    db: Database, tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _synthetic_events(seed)
    half = len(events) // 2
    for part, chunk in enumerate((events[:half], events[half:])):
        path = tmp_path / f"part{part}.json"
        path.write_text("\n".join(json.dumps(e) for e in chunk) + "\n")
        run_load(db, [path])
    assert rows(db, "SELECT count(*) FROM trackplays")[0][0] == len(events)
    assert rollups(db) == from_plays(db)
    filters = [
        ReportFilters(),
        ReportFilters(tier="paid"),
        ReportFilters(tier="free"),
        ReportFilters(since=dt.date(2018, 11, 2), until=dt.date(2018, 11, 4)),
        ReportFilters(since=dt.date(2018, 11, 3), tier="free"),
        ReportFilters(until=dt.date(2018, 11, 2)),
    ]
    changes = set()
    for f in filters:
        with db.connect() as conn:
            new = build_report(conn, f)
        assert new == _old_report(db, f, monkeypatch), f
        changes.add(tuple(new["tier_changes"].values()))
    assert len(changes) > 1
