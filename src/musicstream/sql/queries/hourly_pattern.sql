-- Hourly pattern: plays and listeners by hour of day (UTC), optionally on one tier.
-- param tier text null: 'free', 'paid' or null for both
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
WITH plays AS (
    SELECT hour, sum(plays) AS plays
    FROM report_hours(%(since)s::date, %(until)s::date, %(tier)s::text)
    GROUP BY hour
), user_hours AS (
    -- per listener of the period, the hours of the day with plays (schema 9, rollup_user_days)
    SELECT user_id, bit_or(hours) AS hours
    FROM rollup_user_days
    WHERE day >= coalesce(%(since)s::date, '-infinity'::date) AND day <= coalesce(%(until)s::date, 'infinity'::date)
      AND (%(tier)s::text IS NULL OR tier = %(tier)s::text)
    GROUP BY user_id
), listeners AS (
    SELECT h.hour, count(*) AS listeners
    FROM user_hours u
    CROSS JOIN generate_series(0, 23) h(hour)
    WHERE u.hours & (1 << h.hour) <> 0
    GROUP BY h.hour
)
SELECT h AS hour_utc, coalesce(p.plays, 0) AS plays, coalesce(l.listeners, 0) AS listeners,
       round(100.0 * coalesce(p.plays, 0) / nullif(sum(coalesce(p.plays, 0)) OVER (), 0), 1) AS percent
FROM generate_series(0, 23) h
LEFT JOIN plays p ON p.hour = h
LEFT JOIN listeners l ON l.hour = h
ORDER BY h;
