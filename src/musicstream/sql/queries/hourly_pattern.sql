-- Hourly pattern: plays and listeners by hour of day (UTC), optionally on one tier.
-- param tier text null: 'free', 'paid' or null for both
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
WITH plays AS (
    SELECT hour, sum(plays) AS plays
    FROM report_hours(%(since)s::date, %(until)s::date, %(tier)s::text)
    GROUP BY hour
), listeners AS (
    SELECT hour, bit_count(bits_union(users)) AS listeners
    FROM rollup_hour_sets
    WHERE day >= coalesce(%(since)s::date, '-infinity'::date) AND day <= coalesce(%(until)s::date, 'infinity'::date)
      AND (%(tier)s::text IS NULL OR tier = %(tier)s::text)
    GROUP BY hour
)
SELECT h AS hour_utc, coalesce(p.plays, 0) AS plays, coalesce(l.listeners, 0) AS listeners,
       round(100.0 * coalesce(p.plays, 0) / nullif(sum(coalesce(p.plays, 0)) OVER (), 0), 1) AS percent
FROM generate_series(0, 23) h
LEFT JOIN plays p ON p.hour = h
LEFT JOIN listeners l ON l.hour = h
ORDER BY h;
