-- The figures of `musicstream report`. Every statement takes %(since)s, %(until)s (dates, inclusive, UTC; NULL =
-- open), %(tier)s ('free', 'paid' or NULL) and, for top lists, %(top)s. Times are UTC.
-- They read the rollups the load keeps (schema 0006: report_sessions, report_hours; 0008: report_top), whose
-- rows are per day, so the period filter selects whole rows and the figures are exact.

-- name: headline
-- Listeners: the union of the days' bitmaps (schema 9); sessions: report_session_count.
SELECT coalesce(sum(plays), 0) AS plays,
       coalesce(bit_count(bits_union(users)), 0) AS listeners,
       coalesce(sum(length_ms), 0) / 3600000.0 AS listening_hours,
       report_session_count(%(since)s::date, %(until)s::date, %(tier)s::text) AS sessions,
       min(first_play) AS first_play,
       max(last_play) AS last_play
FROM report_day_sets(%(since)s::date, %(until)s::date, %(tier)s::text, 'day');

-- name: daily_listeners
-- Distinct listeners per day, every day from the first to the last play (days without plays count as 0).
WITH daily AS (
    SELECT day, bit_count(bits_union(users)) AS listeners, sum(plays) AS plays
    FROM report_day_sets(%(since)s::date, %(until)s::date, %(tier)s::text, 'day')
    GROUP BY 1
)
SELECT d::date AS day, coalesce(daily.listeners, 0) AS listeners, coalesce(daily.plays, 0) AS plays
FROM generate_series((SELECT min(day) FROM daily), (SELECT max(day) FROM daily), INTERVAL '1 day') d
LEFT JOIN daily ON daily.day = d::date
ORDER BY 1;

-- name: monthly_window
-- Distinct listeners in the last 30 days of the period (ending at the last day with plays): the MAU.
WITH days AS (SELECT * FROM report_day_sets(%(since)s::date, %(until)s::date, %(tier)s::text, 'day')),
last AS (SELECT max(day) AS day FROM days)
SELECT coalesce(bit_count(bits_union(s.users)), 0) AS mau, min(last.day) - 29 AS window_start,
       min(last.day) AS window_end
FROM days s, last
WHERE s.day >= last.day - 29;

-- name: retention
-- Weekly cohorts of new listeners (schema 9's day bitmaps): a cohort is the listeners (on the tier) of an ISO week
-- of the period (Monday to Sunday, UTC, cut to the period) with no play on record before that week's first day
-- of the period; each week of the period from the cohort's on, how many of them played in it. Week offsets with no
-- plays at all count 0. The bitmaps of the days before the period are read for "no play before" only.
WITH days AS (
    SELECT day, bits_union(users) AS users
    FROM report_day_sets(NULL, %(until)s::date, %(tier)s::text, 'day')
    GROUP BY day
), known AS (
    SELECT day, users,
           bits_union(users) OVER (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
    FROM days
), weeks AS (
    SELECT date_trunc('week', day)::date AS week, bits_union(users) AS users,
           (array_agg(before ORDER BY day))[1] AS before
    FROM known
    WHERE day >= coalesce(%(since)s::date, '-infinity'::date)
    GROUP BY 1
), cohorts AS (
    -- the week's listeners less those seen before (the earlier bitmap padded to the week's length, then negated)
    SELECT week, bits_and(users, ~bits_or(before, users & ~users)) AS users
    FROM weeks
), span AS (
    SELECT w::date AS week
    FROM generate_series((SELECT min(week) FROM weeks), (SELECT max(week) FROM weeks), INTERVAL '7 days') w
)
SELECT c.week AS cohort, (s.week - c.week) / 7 AS weeks_later, bit_count(c.users) AS new_listeners,
       coalesce(bit_count(bits_and(c.users, w.users)), 0) AS active
FROM cohorts c
JOIN span s ON s.week >= c.week
LEFT JOIN weeks w ON w.week = s.week
ORDER BY 1, 2;

-- name: top_tracks
-- report_top (schema 0008): exact, from the per-day top lists the load keeps.
SELECT r.ranking, r.key AS track_id, t.title, a.name AS artist, t.is_inferred, r.plays, r.listeners
FROM (
    SELECT 'plays' AS ranking, * FROM report_top('track', %(since)s::date, %(until)s::date, %(tier)s::text, %(top)s, 'plays')
    UNION ALL
    SELECT 'listeners', * FROM report_top('track', %(since)s::date, %(until)s::date, %(tier)s::text, %(top)s, 'listeners')
) r
JOIN tracks t ON t.track_id = r.key
JOIN artists a ON a.artist_id = t.artist_id
ORDER BY r.ranking DESC, CASE r.ranking WHEN 'plays' THEN r.plays ELSE r.listeners END DESC,
         CASE r.ranking WHEN 'plays' THEN r.listeners ELSE r.plays END DESC, r.key COLLATE "C";

-- name: top_artists
SELECT r.ranking, r.key AS artist_id, a.name, a.is_inferred, r.plays, r.listeners
FROM (
    SELECT 'plays' AS ranking, * FROM report_top('artist', %(since)s::date, %(until)s::date, %(tier)s::text, %(top)s, 'plays')
    UNION ALL
    SELECT 'listeners', * FROM report_top('artist', %(since)s::date, %(until)s::date, %(tier)s::text, %(top)s, 'listeners')
) r
JOIN artists a ON a.artist_id = r.key
ORDER BY r.ranking DESC, CASE r.ranking WHEN 'plays' THEN r.plays ELSE r.listeners END DESC,
         CASE r.ranking WHEN 'plays' THEN r.listeners ELSE r.plays END DESC, r.key COLLATE "C";

-- name: hour_weekday
-- Plays by ISO weekday (1 = Monday) and hour of day, UTC.
SELECT extract(isodow FROM day)::int AS weekday, hour, sum(plays) AS plays
FROM report_hours(%(since)s::date, %(until)s::date, %(tier)s::text)
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: tiers
-- Plays and distinct listeners on each tier (a user who changed tier counts on both).
SELECT tier, sum(plays) AS plays, bit_count(bits_union(users)) AS listeners
FROM report_day_sets(%(since)s::date, %(until)s::date, %(tier)s::text, 'day')
GROUP BY tier
ORDER BY tier;

-- name: current_tiers
-- Listeners of the period by their tier at their latest event.
WITH period AS (SELECT bits_union(users) AS users FROM report_day_sets(%(since)s::date, %(until)s::date, %(tier)s::text, 'day'))
SELECT u.tier, count(*) AS users
FROM users u, period
WHERE bit_is_set(period.users, u.listener_no)
GROUP BY u.tier
ORDER BY u.tier;

-- name: tier_changes
-- Users whose plays over time show an upgrade (some free play before some paid play, in the order (start_time,
-- session_id, item_in_session)) or a downgrade (paid before free), from the per-day bitmaps (schemas 9 and 10): a
-- user upgraded when they played paid on a day after a day with a free play, or on a day they played free before
-- paid (the day's paid arrivals); downgrades the other way round. "changed": users with plays on both tiers.
WITH days AS (
    SELECT free, paid, free_arrivals, paid_arrivals,
           coalesce(bits_union(free) OVER earlier, free & ~free) AS free_before,
           coalesce(bits_union(paid) OVER earlier, free & ~free) AS paid_before
    FROM report_day_tiers(%(since)s::date, %(until)s::date)
    WINDOW earlier AS (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT coalesce(bit_count(bits_union((paid & free_before) | paid_arrivals)), 0) AS upgraded,
       coalesce(bit_count(bits_union((free & paid_before) | free_arrivals)), 0) AS downgraded,
       coalesce(bit_count(bits_union(free) & bits_union(paid)), 0) AS changed
FROM days;

-- name: top_locations
SELECT coalesce(value, '(unknown)') AS location, sum(plays) AS plays, bit_count(bits_union(users)) AS listeners
FROM report_day_sets(%(since)s::date, %(until)s::date, %(tier)s::text, 'location')
GROUP BY 1
ORDER BY plays DESC, listeners DESC, location
LIMIT %(top)s;

-- name: user_agents
-- Every distinct user agent with its plays and listeners; families are derived in Python.
SELECT coalesce(value, '') AS user_agent, sum(plays) AS plays, bit_count(bits_union(users)) AS listeners
FROM report_day_sets(%(since)s::date, %(until)s::date, %(tier)s::text, 'agent')
GROUP BY 1
ORDER BY plays DESC, user_agent;

-- name: catalog_match
SELECT coalesce(sum(catalog_plays), 0) AS matched, coalesce(sum(plays), 0) AS plays
FROM report_day_sets(%(since)s::date, %(until)s::date, %(tier)s::text, 'day');

-- name: coverage
-- What the database holds, whatever the filters: the days with plays and how many (an empty period says so).
SELECT min(day) AS first_day, max(day) AS last_day, coalesce(sum(plays), 0) AS plays FROM rollup_hours;

-- name: recent_runs
SELECT run_id, started_at, status, files_read, records_read, rejects, duplicates
FROM etl_runs
ORDER BY run_id DESC
LIMIT 5;
