"""The report's rollups (schema 0006) and the report built on them.

- After loads in any order and split, with a late catalog that moves known plays (rule 8), the rollups equal
  aggregates computed here from trackplays (with window functions, not the load's SQL).
- The migration fills them for a database loaded before it; a rebuild from the plays equals what the loads kept.
- The functions are applied again by `init` when their files change.
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
from psycopg import sql
from psycopg.rows import dict_row

from conftest import rows
from musicstream import run_load
from musicstream.db.connection import Database
from musicstream.db.schema import ROLLUP_TABLES, migrate
from musicstream.errors import SchemaError
from musicstream.load.rollups import rebuild
from musicstream.report import ReportFilters, build_report
from musicstream.report import build as report_build
from test_keys import back_to_version_6, back_to_version_9
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
       max(start_time) FILTER (WHERE from_last = 1), max(item_in_session) FILTER (WHERE from_last = 1),
       (SELECT sum(DISTINCT power(2, h))::int FROM unnest(array_agg(extract(hour FROM start_time)::int)) h)
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


# Sessions with all their plays on one day, by day, length bucket and whole seconds; the others, per day.
SESSION_LENGTHS_FROM_PLAYS = """
WITH s AS (
    SELECT user_id, session_id, count(DISTINCT start_time::date) AS days, min(start_time)::date AS day,
           count(*) AS songs, floor(extract(epoch FROM max(start_time) - min(start_time)))::int AS seconds
    FROM trackplays
    GROUP BY 1, 2
)
SELECT day, CASE WHEN songs = 1 THEN 1 WHEN songs <= 5 THEN 2 WHEN songs <= 10 THEN 3 WHEN songs <= 20 THEN 4
                 WHEN songs <= 50 THEN 5 ELSE 6 END AS bucket, seconds, count(*)::int, sum(songs)::bigint
FROM s
WHERE days = 1
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""
SPANNING_FROM_PLAYS = """
SELECT user_id, session_id, start_time::date, count(*)::int, min(start_time), max(start_time)
FROM trackplays
WHERE (user_id, session_id) IN (
    SELECT user_id, session_id FROM trackplays GROUP BY 1, 2 HAVING count(DISTINCT start_time::date) > 1
)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""
# Per day and tier: who began the day on the tier, and who played it after a play on the other tier that day (in
# the order start_time, session_id, item_in_session).
TIER_MOVES_FROM_PLAYS = """
SELECT day, tier,
       coalesce(array_agg(DISTINCT user_id ORDER BY user_id) FILTER (WHERE opened), '{}'),
       coalesce(array_agg(DISTINCT user_id ORDER BY user_id) FILTER (WHERE arrived), '{}')
FROM (
    SELECT p.start_time::date AS day, p.tier, p.user_id,
           row_number() OVER (PARTITION BY p.start_time::date, p.user_id
                              ORDER BY p.start_time, p.session_id, p.item_in_session) = 1 AS opened,
           EXISTS (SELECT 1 FROM trackplays q
                   WHERE q.user_id = p.user_id AND q.start_time::date = p.start_time::date AND q.tier <> p.tier
                     AND (q.start_time, q.session_id, q.item_in_session)
                         < (p.start_time, p.session_id, p.item_in_session)) AS arrived
    FROM trackplays p
) d
GROUP BY 1, 2
ORDER BY 1, 2
"""


def rollups(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "session_lengths": rows(db, "SELECT * FROM rollup_session_lengths ORDER BY 1, 2, 3"),
        "spanning": rows(
            db,
            """SELECT user_id, session_id, day, plays, first_play, last_play
               FROM rollup_spanning_sessions ORDER BY 1, 2, 3""",
        ),
        "tier_moves": rows(
            db,
            """SELECT day, tier,
                      ARRAY(SELECT u.user_id FROM users u WHERE bit_is_set(s.openers, u.listener_no) ORDER BY 1),
                      ARRAY(SELECT u.user_id FROM users u WHERE bit_is_set(s.arrivals, u.listener_no) ORDER BY 1)
               FROM rollup_day_sets s WHERE dim = 'day' ORDER BY 1, 2""",
        ),
        "sessions": rows(
            db,
            """SELECT day, tier, user_id, session_id, location, user_agent, plays, length_ms, catalog_plays,
                      first_play, first_item, last_play, last_item, hours
               FROM rollup_sessions ORDER BY 1, 2, 3, 4, 5, 6""",
        ),
        "hours": rows(db, "SELECT day, hour, tier, plays FROM rollup_hours ORDER BY 1, 2, 3"),
    }


def from_plays(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "session_lengths": rows(db, SESSION_LENGTHS_FROM_PLAYS),
        "spanning": rows(db, SPANNING_FROM_PLAYS),
        "tier_moves": rows(db, TIER_MOVES_FROM_PLAYS),
        "sessions": rows(db, SESSIONS_FROM_PLAYS),
        "hours": rows(db, HOURS_FROM_PLAYS),
    }


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
    tops = "SELECT * FROM rollup_day_tops ORDER BY 1, 2, 3, 4"
    floors = "SELECT * FROM rollup_day_floors ORDER BY 1, 2, 3"
    loaded_tops, loaded_floors = rows(db, tops), rows(db, floors)
    assert loaded_tops and loaded_floors
    with db.connect(autocommit=True) as conn:
        back_to_version_6(conn)
        conn.execute("DROP TABLE rollup_sessions, rollup_hours CASCADE")
        conn.execute("DELETE FROM schema_migrations WHERE version = 6")
        assert migrate(conn, rebuild) == [6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    assert rollups(db) == expected
    assert (rows(db, tops), rows(db, floors)) == (loaded_tops, loaded_floors)


def every_rollup(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every rollup table, in a stable order."""
    return {
        table: rows(
            db,
            sql.SQL("SELECT * FROM {} ORDER BY {}")
            .format(sql.Identifier(table), sql.SQL(", ").join(sql.Literal(n) for n in range(1, width + 1)))
            .as_string(None),  # type: ignore[arg-type]
        )
        for table, width in rows(
            db,
            "SELECT c.relname, count(*) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
            "WHERE c.relname = ANY(%s) AND NOT a.attisdropped GROUP BY 1 ORDER BY 1",
            (list(ROLLUP_TABLES),),
        )
    }


def test_a_rebuild_equals_what_the_loads_maintained(db: Database, corpus: list[Path]) -> None:
    """The rollups rebuilt from the stored plays (a migration's backfill) are, row for row, those the loads kept
    from their hand-overs, late catalog included; and a migration that asks for a backfill needs the rebuild."""
    logs = [p for p in corpus if "log_data" in p.parts]
    songs = [p for p in corpus if "song_data" in p.parts]
    run_load(db, logs[:3])
    run_load(db, logs[3:])
    run_load(db, songs)  # rule 8 moves known plays: the hand-over's names
    maintained = every_rollup(db)
    assert set(maintained) == set(ROLLUP_TABLES)
    assert [t for t, found in maintained.items() if not found] == ["rollup_spanning_sessions"]  # none in the corpus
    with db.connect() as conn, conn.transaction():
        rebuild(conn)
    assert every_rollup(db) == maintained
    with db.connect(autocommit=True) as conn:
        back_to_version_9(conn)  # migration 10 adds rollups: it asks for a backfill
        with pytest.raises(SchemaError, match="run `musicstream init`"):
            migrate(conn)
        conn.execute("TRUNCATE rollup_day_tops, rollup_sessions")
        assert migrate(conn, rebuild) == [10, 11, 12, 13, 14, 15]
    assert every_rollup(db) == maintained


def test_init_applies_a_changed_function_again(db: Database, corpus: list[Path]) -> None:
    """A database whose functions are not this version's (a body changed, or a file applied before it existed):
    commands that read it say to run `init`, and `init` applies the changed files, and only those."""
    from musicstream.db.schema import function_files, require_schema

    run_load(db, corpus[:4])
    with db.connect(autocommit=True) as conn:
        conn.execute("CREATE OR REPLACE FUNCTION day_tops_kept() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1'")
        conn.execute("UPDATE schema_functions SET sha256 = 'older' WHERE file = 'rollups/functions/day_tops'")
        before = dict(conn.execute("SELECT file, applied_at FROM schema_functions").fetchall())
        with pytest.raises(SchemaError, match=r"sql/rollups/functions/day_tops.sql.*run `musicstream init`"):
            require_schema(conn)
        assert migrate(conn, rebuild) == []
        assert conn.execute("SELECT day_tops_kept()").fetchone() == (500,)
        after = dict(conn.execute("SELECT file, applied_at FROM schema_functions").fetchall())
        require_schema(conn)
    assert set(after) == set(function_files())
    assert [f for f in after if after[f] != before[f]] == ["rollups/functions/day_tops"]


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
    "top_tracks": """
WITH counts AS (
    SELECT track_id, count(*) AS plays, count(DISTINCT user_id) AS listeners
    FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text)
    GROUP BY track_id
), ranked AS (
    (SELECT *, 'plays' AS ranking FROM counts ORDER BY plays DESC, listeners DESC, track_id LIMIT %(top)s)
    UNION ALL
    (SELECT *, 'listeners' FROM counts ORDER BY listeners DESC, plays DESC, track_id LIMIT %(top)s)
)
SELECT r.ranking, r.track_id, t.title, a.name AS artist, t.is_inferred, r.plays, r.listeners
FROM ranked r JOIN tracks t USING (track_id) JOIN artists a ON a.artist_id = t.artist_id
ORDER BY r.ranking DESC, CASE r.ranking WHEN 'plays' THEN r.plays ELSE r.listeners END DESC,
         CASE r.ranking WHEN 'plays' THEN r.listeners ELSE r.plays END DESC, r.track_id
""",
    "top_artists": """
WITH counts AS (
    SELECT artist_id, count(*) AS plays, count(DISTINCT user_id) AS listeners
    FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text)
    GROUP BY artist_id
), ranked AS (
    (SELECT *, 'plays' AS ranking FROM counts ORDER BY plays DESC, listeners DESC, artist_id LIMIT %(top)s)
    UNION ALL
    (SELECT *, 'listeners' FROM counts ORDER BY listeners DESC, plays DESC, artist_id LIMIT %(top)s)
)
SELECT r.ranking, r.artist_id, a.name, a.is_inferred, r.plays, r.listeners
FROM ranked r JOIN artists a USING (artist_id)
ORDER BY r.ranking DESC, CASE r.ranking WHEN 'plays' THEN r.plays ELSE r.listeners END DESC,
         CASE r.ranking WHEN 'plays' THEN r.listeners ELSE r.plays END DESC, r.artist_id
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


TOP_FROM_PLAYS = """
SELECT k, count(*), count(DISTINCT user_id)
FROM (
    SELECT CASE WHEN %(kind)s = 'track' THEN track_id ELSE artist_id END AS k, user_id
    FROM trackplays
    WHERE start_time >= coalesce(%(since)s::date, '-infinity'::date)
      AND start_time < coalesce(%(until)s::date + 1, 'infinity'::date)
      AND (%(tier)s::text IS NULL OR tier = %(tier)s::text)
) s
GROUP BY k
"""


def top_from_plays(db: Database, kind: str, filters: ReportFilters, n: int, by: str) -> list[tuple[str, int, int]]:
    """The N best keys counted here from every play of the period, ranked in Python (keys by code point: "C")."""
    params = {"kind": kind, "since": filters.since, "until": filters.until, "tier": filters.tier}
    counted = [(k, int(p), int(listeners)) for k, p, listeners in rows(db, TOP_FROM_PLAYS, params)]
    if by == "plays":
        counted.sort(key=lambda r: (-r[1], -r[2], r[0]))
    else:
        counted.sort(key=lambda r: (-r[2], -r[1], r[0]))
    return counted[:n]


@pytest.mark.parametrize("kept", [1, 3, 40])
def test_top_lists_are_exact_with_short_day_lists(db: Database, udacity: Path, corpus: list[Path], kept: int) -> None:
    """report_top with day lists of only `kept` keys, so that the threshold, the counting from the plays and the
    fallback all run: equal to the top lists counted from the plays, for many periods, tiers, lengths and both
    rankings, after a split load with a late catalog that moves plays (rule 8)."""
    with db.connect() as conn:
        conn.execute(
            f"CREATE OR REPLACE FUNCTION day_tops_kept() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT {kept}'"
        )
    logs = sorted((udacity / "log_data").rglob("*.json"))
    run_load(db, logs[::2])
    run_load(db, [udacity / "song_data", *logs[1::2]])
    run_load(db, [p for p in corpus if "song_data" in p.parts and "Z" in p.parts])
    longest = rows(db, "SELECT max(n) FROM (SELECT count(*) AS n FROM rollup_day_tops GROUP BY day, tier, kind) s")
    assert 0 < longest[0][0] <= kept
    # each list entry holds the key's plays that day, its listeners and who they are, as counted from the plays
    wrong_entries = """
        SELECT count(*) FROM rollup_day_tops t
        WHERE ROW(t.plays::bigint, t.listeners::bigint, t.users) IS DISTINCT FROM (
            SELECT ROW(count(*), count(DISTINCT p.user_id), array_agg(DISTINCT p.user_id ORDER BY p.user_id))
            FROM trackplays p
            WHERE p.start_time::date = t.day AND p.tier = t.tier
              AND CASE t.kind WHEN 'track' THEN p.track_id ELSE p.artist_id END = t.key
        )"""
    assert rows(db, wrong_entries) == [(0,)]
    paths: list[str] = []
    with db.connect() as conn:
        conn.add_notice_handler(lambda notice: paths.append(notice.message_primary or ""))
        conn.execute("SET client_min_messages = debug1")
        for filters in FILTERS:
            for kind in ("track", "artist"):
                for by in ("plays", "listeners"):
                    for n in (1, 5, 25):
                        got = conn.execute(
                            "SELECT key, plays, listeners FROM report_top(%s, %s, %s, %s, %s, %s)",
                            (kind, filters.since, filters.until, filters.tier, n, by),
                        ).fetchall()
                        assert got == top_from_plays(db, kind, filters, n, by), (kind, by, n, filters)
    fallback = sum("reading the plays" in m for m in paths)
    counted = [int(m.split(", ")[1].split()[0]) for m in paths if "from their plays" in m]
    assert len(counted) + fallback == len(paths) == len(FILTERS) * 12
    if kept == 1:
        assert fallback > 0, "lists of one key leave some top lists undecided"
    if kept == 3:
        assert any(counted), "keys missing from some lists are counted from their plays"
    if kept == 40:
        assert 0 in counted, "some top lists are answered from the lists alone"


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
    # a session used again days later (gaps between its days), on one tier then the other
    for item, (day, level) in enumerate([(0, "free"), (0, "paid"), (3, "free"), (5, "paid"), (5, "free")]):
        again = {**events[0], "userId": "99", "sessionId": 7, "itemInSession": item, "level": level}
        events.append({**again, "ts": start + day * 86400000 + 3600000 * (1 + item)})
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
    _curated_equal_the_old(db)


# The curated queries before the rollups (musicstream 0.x, sql/queries/), kept verbatim as the reference (but for
# session_lengths' durations, counted in whole seconds since schema 10).
OLD_QUERIES = {
    "hourly_pattern": """
SELECT h AS hour_utc, coalesce(c.plays, 0) AS plays, coalesce(c.listeners, 0) AS listeners,
       round(100.0 * coalesce(c.plays, 0) / nullif(sum(coalesce(c.plays, 0)) OVER (), 0), 1) AS percent
FROM generate_series(0, 23) h
LEFT JOIN (
    SELECT extract(hour FROM start_time)::int AS hour, count(*) AS plays, count(DISTINCT user_id) AS listeners
    FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text)
    GROUP BY 1
) c ON c.hour = h
ORDER BY h
""",
    "session_lengths": """
WITH sessions AS (
    SELECT user_id, session_id, count(*) AS songs,
           floor(extract(epoch FROM max(start_time) - min(start_time))) / 60.0 AS minutes
    FROM report_plays(%(since)s::date, %(until)s::date, NULL)
    GROUP BY user_id, session_id
), bucketed AS (
    SELECT CASE WHEN songs = 1 THEN 1 WHEN songs <= 5 THEN 2 WHEN songs <= 10 THEN 3
                WHEN songs <= 20 THEN 4 WHEN songs <= 50 THEN 5 ELSE 6 END AS bucket, songs, minutes
    FROM sessions
)
SELECT (ARRAY['1 song', '2-5 songs', '6-10 songs', '11-20 songs', '21-50 songs', 'over 50 songs'])[bucket]
           AS session_length,
       count(*) AS sessions,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS percent,
       round(avg(songs), 1) AS avg_songs,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes)::numeric, 1) AS median_minutes
FROM bucketed
GROUP BY bucket
ORDER BY bucket
""",
    "free_to_paid": """
WITH firsts AS (
    SELECT DISTINCT ON (user_id) user_id, tier AS first_tier, start_time AS first_play
    FROM report_plays(%(since)s::date, %(until)s::date, NULL)
    ORDER BY user_id, start_time, session_id, item_in_session
), upgrades AS (
    SELECT p.user_id, min(p.start_time) AS first_paid_play
    FROM report_plays(%(since)s::date, %(until)s::date, 'paid') p
    JOIN firsts f ON f.user_id = p.user_id AND f.first_tier = 'free'
    GROUP BY p.user_id
)
SELECT count(*) FILTER (WHERE f.first_tier = 'free') AS started_free,
       count(u.user_id) AS converted,
       round(100.0 * count(u.user_id) / nullif(count(*) FILTER (WHERE f.first_tier = 'free'), 0), 1)
           AS conversion_percent,
       round((avg(extract(epoch FROM u.first_paid_play - f.first_play)) / 86400.0)::numeric, 1)
           AS avg_days_to_convert
FROM firsts f
LEFT JOIN upgrades u USING (user_id)
""",
    "top_tracks": """
SELECT t.title, a.name AS artist, CASE WHEN t.is_inferred THEN 'inferred' ELSE 'catalog' END AS source,
       c.plays, c.listeners
FROM report_top('track', %(since)s::date, %(until)s::date, NULL, %(limit)s::int, 'plays') c
JOIN tracks t ON t.track_id = c.key
JOIN artists a ON a.artist_id = t.artist_id
ORDER BY c.plays DESC, c.listeners DESC, c.key COLLATE "C"
""",
}
# The queries added with the rollups, written here once more from the plays.
OLD_QUERIES["retention"] = """
WITH weeks AS (
    SELECT date_trunc('week', start_time)::date AS week, user_id
    FROM trackplays
    WHERE start_time >= coalesce(%(since)s::date, '-infinity'::date)
      AND start_time < coalesce(%(until)s::date + 1, 'infinity'::date)
      AND (%(tier)s::text IS NULL OR tier = %(tier)s::text)
    GROUP BY 1, 2
), span AS (
    SELECT w::date AS week
    FROM generate_series((SELECT min(week) FROM weeks), (SELECT max(week) FROM weeks), INTERVAL '7 days') w
), counts AS (
    SELECT s.week, (SELECT count(*) FROM weeks a WHERE a.week = s.week) AS listeners,
           (SELECT count(*) FROM weeks a JOIN weeks b ON b.user_id = a.user_id AND b.week = a.week + 7
            WHERE a.week = s.week) AS back
    FROM span s
)
SELECT week AS week_start, listeners,
       CASE WHEN week = (SELECT max(week) FROM weeks) THEN NULL ELSE back END AS came_back_next_week,
       CASE WHEN week = (SELECT max(week) FROM weeks) THEN NULL
            ELSE round(100.0 * back / nullif(listeners, 0), 1) END AS percent
FROM counts
ORDER BY week
"""
OLD_QUERIES["location_weeks"] = """
WITH plays AS (
    SELECT * FROM trackplays
    WHERE start_time >= coalesce(%(since)s::date, '-infinity'::date)
      AND start_time < coalesce(%(until)s::date + 1, 'infinity'::date)
), top AS (
    SELECT location, count(*) AS plays FROM plays
    GROUP BY location ORDER BY count(*) DESC, location COLLATE "C" NULLS LAST LIMIT %(top)s::int
)
SELECT coalesce(p.location, '(unknown)') AS location, date_trunc('week', p.start_time)::date AS week_start,
       count(*) AS plays, count(DISTINCT p.user_id) AS listeners
FROM plays p
JOIN top t ON t.location IS NOT DISTINCT FROM p.location
GROUP BY p.location, t.plays, 2
ORDER BY t.plays DESC, p.location COLLATE "C" NULLS LAST, 2
"""
QUERY_PARAMS = [
    {},
    {"since": "2018-11-05", "until": "2018-11-21"},
    {"since": "2018-11-21"},
    {"until": "2018-11-04"},
    {"since": "2018-11-15", "until": "2018-11-15"},
    {"since": "2019-01-01"},
]


def _curated_equal_the_old(db: Database) -> None:
    from musicstream import queries

    with db.connect() as conn:
        for name, old_sql in OLD_QUERIES.items():
            query = queries.get(name)
            for given in QUERY_PARAMS:
                tiers = ["null", "free", "paid"] if any(p.name == "tier" for p in query.params) else ["null"]
                for tier in tiers:
                    values = queries.bind(
                        query, [f"{k}={v}" for k, v in given.items()] + ([f"tier={tier}"] if len(tiers) > 1 else [])
                    )
                    _, new = queries.run(conn, query, values)
                    with conn.cursor(row_factory=dict_row) as cur:
                        old = cur.execute(old_sql, values).fetchall()
                    assert new == old, (name, values)


def test_curated_queries_equal_the_queries_on_the_plays(db: Database, udacity: Path, corpus: list[Path]) -> None:
    logs = sorted((udacity / "log_data").rglob("*.json"))
    run_load(db, logs[1::2])
    run_load(db, [udacity / "song_data", *logs[::2]])
    run_load(db, [p for p in corpus if "song_data" in p.parts and "Z" in p.parts])
    _curated_equal_the_old(db)
