-- Session length distribution: sessions by number of songs played, with their typical duration.
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
WITH sessions AS (
    SELECT user_id, session_id, sum(plays) AS songs,
           extract(epoch FROM max(last_play) - min(first_play)) / 60.0 AS minutes
    FROM report_sessions(%(since)s::date, %(until)s::date, NULL)
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
ORDER BY bucket;
