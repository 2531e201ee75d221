-- Hourly pattern: plays and listeners by hour of day (UTC), optionally on one tier.
-- param tier tier null: 'free', 'paid' or null for both
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
    -- one pass over the listeners: per hour, how many have its bit set
    SELECT (h - 1)::int AS hour, n AS listeners
    FROM (
        SELECT ARRAY[
                 sum((hours >> 0) & 1),
                 sum((hours >> 1) & 1),
                 sum((hours >> 2) & 1),
                 sum((hours >> 3) & 1),
                 sum((hours >> 4) & 1),
                 sum((hours >> 5) & 1),
                 sum((hours >> 6) & 1),
                 sum((hours >> 7) & 1),
                 sum((hours >> 8) & 1),
                 sum((hours >> 9) & 1),
                 sum((hours >> 10) & 1),
                 sum((hours >> 11) & 1),
                 sum((hours >> 12) & 1),
                 sum((hours >> 13) & 1),
                 sum((hours >> 14) & 1),
                 sum((hours >> 15) & 1),
                 sum((hours >> 16) & 1),
                 sum((hours >> 17) & 1),
                 sum((hours >> 18) & 1),
                 sum((hours >> 19) & 1),
                 sum((hours >> 20) & 1),
                 sum((hours >> 21) & 1),
                 sum((hours >> 22) & 1),
                 sum((hours >> 23) & 1)
               ] AS counts
        FROM user_hours
    ) c
    CROSS JOIN LATERAL unnest(c.counts) WITH ORDINALITY AS per_hour(n, h)
)
SELECT h AS hour_utc, coalesce(p.plays, 0) AS plays, coalesce(l.listeners, 0) AS listeners,
       round(100.0 * coalesce(p.plays, 0) / nullif(sum(coalesce(p.plays, 0)) OVER (), 0), 1) AS percent
FROM generate_series(0, 23) h
LEFT JOIN plays p ON p.hour = h
LEFT JOIN listeners l ON l.hour = h
ORDER BY h;
