-- Hourly pattern: plays and listeners by hour of day (UTC), optionally on one tier.
-- param tier text null: 'free', 'paid' or null for both
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
SELECT h AS hour_utc, coalesce(c.plays, 0) AS plays, coalesce(c.listeners, 0) AS listeners,
       round(100.0 * coalesce(c.plays, 0) / nullif(sum(coalesce(c.plays, 0)) OVER (), 0), 1) AS percent
FROM generate_series(0, 23) h
LEFT JOIN (
    SELECT extract(hour FROM start_time)::int AS hour, count(*) AS plays, count(DISTINCT user_id) AS listeners
    FROM report_plays(%(since)s::date, %(until)s::date, %(tier)s::text)
    GROUP BY 1
) c ON c.hour = h
ORDER BY h;
