-- Session length distribution: sessions by number of songs played, with their typical duration.
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
-- A session's songs and duration are those of its plays in the period; the duration is in whole seconds, from its
-- first play's start to its last's. Per-day counts (schema 10) give the sessions within one day; the few with
-- plays on more than one day are added up from their days in the period.
WITH spanning AS (
    SELECT session_bucket(sum(plays)) AS bucket, session_seconds(min(first_play), max(last_play)) AS seconds,
           sum(plays) AS songs
    FROM rollup_spanning_sessions
    WHERE day >= coalesce(%(since)s::date, '-infinity'::date) AND day <= coalesce(%(until)s::date, 'infinity'::date)
    GROUP BY user_id, session_id
), lengths AS (
    SELECT bucket, seconds, sum(sessions) AS sessions, sum(songs) AS songs
    FROM (
        SELECT bucket, seconds, sessions, songs
        FROM rollup_session_lengths
        WHERE day >= coalesce(%(since)s::date, '-infinity'::date) AND day <= coalesce(%(until)s::date, 'infinity'::date)
        UNION ALL
        SELECT bucket, seconds, 1, songs FROM spanning
    ) l
    GROUP BY bucket, seconds
), ranked AS (
    -- the median of n durations is the mean of those of rank (n - 1) / 2 and n / 2 (from 0, integer division)
    SELECT bucket, seconds, sessions, songs,
           sum(sessions) OVER (PARTITION BY bucket ORDER BY seconds) AS up_to,
           sum(sessions) OVER (PARTITION BY bucket) AS n
    FROM lengths
)
SELECT (ARRAY['1 song', '2-5 songs', '6-10 songs', '11-20 songs', '21-50 songs', 'over 50 songs'])[bucket]
           AS session_length,
       sum(sessions) AS sessions,
       round(100.0 * sum(sessions) / sum(sum(sessions)) OVER (), 1) AS percent,
       round(sum(songs) / sum(sessions), 1) AS avg_songs,
       round((min(seconds) FILTER (WHERE up_to > div(n - 1, 2)) + min(seconds) FILTER (WHERE up_to > div(n, 2)))
             / 120.0, 1) AS median_minutes
FROM ranked
GROUP BY bucket
ORDER BY bucket;
