-- Conversion free to paid: of the users whose first play was on the free tier, how many later played on paid.
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
-- From the per-day listener bitmaps (schemas 9 and 10): a listener's first day in the period is the first day
-- their bit is set, and they started free when that day's first play was free (the day's free openers). The days
-- to convert are looked up (rollup_user_days, by index) for the converted users only.
WITH firsts AS (  -- the listeners each day adds: not heard on an earlier day of the period
    SELECT free_openers,
           (free | paid) & ~coalesce(bits_union(free | paid) OVER (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING
                                                                    AND 1 PRECEDING), free & ~free) AS new
    FROM report_day_tiers(%(since)s::date, %(until)s::date)
), started AS (
    SELECT bits_union(new & free_openers) AS free FROM firsts
), sets AS (
    SELECT s.free, s.free & p.paid AS converted
    FROM started s, (SELECT bits_union(paid) AS paid FROM report_day_tiers(%(since)s::date, %(until)s::date)) p
), waits AS (  -- microseconds from the first play (free) to the first paid play
    SELECT (SELECT d.first_at[1] FROM rollup_user_days d
            WHERE d.user_id = u.user_id AND d.tier = 'paid'
              AND d.day >= coalesce(%(since)s::date, '-infinity'::date) AND d.day <= coalesce(%(until)s::date, 'infinity'::date)
            ORDER BY d.day LIMIT 1)
           - (SELECT d.first_at[1] FROM rollup_user_days d
              WHERE d.user_id = u.user_id AND d.tier = 'free'
                AND d.day >= coalesce(%(since)s::date, '-infinity'::date) AND d.day <= coalesce(%(until)s::date, 'infinity'::date)
              ORDER BY d.day LIMIT 1) AS micros
    FROM sets
    CROSS JOIN LATERAL bit_positions(sets.converted) AS b(no)
    JOIN users u ON u.listener_no = b.no
), figures AS (
    SELECT coalesce(bit_count(free), 0) AS started_free, coalesce(bit_count(converted), 0) AS converted,
           (SELECT avg(micros) FROM waits) AS avg_micros
    FROM sets
)
SELECT started_free, converted,
       round(100.0 * converted / nullif(started_free, 0), 1) AS conversion_percent,
       round(avg_micros / 86400000000.0, 1) AS avg_days_to_convert
FROM figures;
