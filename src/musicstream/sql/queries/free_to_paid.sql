-- Conversion free to paid: of the users whose first play was on the free tier, how many later played on paid.
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
WITH ends AS (
    -- per user: the first play of the period (its tier) and the first paid one, as positions (microseconds since
    -- the epoch, session, item) from the per-day rollup (schema 9)
    SELECT user_id, min(first_at) AS first_at, min(first_at) FILTER (WHERE tier = 'paid') AS paid_at,
           (array_agg(tier ORDER BY first_at))[1] AS first_tier
    FROM rollup_user_days
    WHERE day >= coalesce(%(since)s::date, '-infinity'::date) AND day <= coalesce(%(until)s::date, 'infinity'::date)
    GROUP BY user_id
)
SELECT count(*) FILTER (WHERE first_tier = 'free') AS started_free,
       count(*) FILTER (WHERE first_tier = 'free' AND paid_at IS NOT NULL) AS converted,
       round(100.0 * count(*) FILTER (WHERE first_tier = 'free' AND paid_at IS NOT NULL)
             / nullif(count(*) FILTER (WHERE first_tier = 'free'), 0), 1) AS conversion_percent,
       round(avg(paid_at[1] - first_at[1]) FILTER (WHERE first_tier = 'free') / 86400000000.0, 1)
           AS avg_days_to_convert
FROM ends;
