-- Listening by location over time: the top locations of the period, with their plays and listeners week by week (ISO weeks, UTC).
-- param top count 5: how many locations (by plays in the period)
-- param since date null: first day, UTC (null: from the start); weeks are cut to the period
-- param until date null: last day, UTC, inclusive (null: to the end)
WITH rows AS (
    SELECT * FROM report_day_sets(%(since)s::date, %(until)s::date, NULL, 'location')
), top AS (
    SELECT value, sum(plays) AS plays
    FROM rows
    GROUP BY value
    ORDER BY sum(plays) DESC, value COLLATE "C" NULLS LAST
    LIMIT %(top)s::int
)
SELECT coalesce(r.value, '(unknown)') AS location, date_trunc('week', r.day)::date AS week_start,
       sum(r.plays) AS plays, bit_count(bits_union(r.users)) AS listeners
FROM rows r
JOIN top t ON t.value IS NOT DISTINCT FROM r.value
GROUP BY r.value, t.plays, 2
ORDER BY t.plays DESC, r.value COLLATE "C" NULLS LAST, 2;
