-- Conversion free to paid: of the users whose first play was on the free tier, how many later played on paid.
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
WITH firsts AS (
    SELECT DISTINCT ON (user_id) user_id, tier AS first_tier, start_time AS first_play
    FROM report_plays(%(since)s::date, %(until)s::date, NULL)
    ORDER BY user_id, start_time, session_id, item_in_session
), upgrades AS (
    SELECT p.user_id, min(p.start_time) AS first_paid_play
    FROM report_plays(%(since)s::date, %(until)s::date, 'paid') p
    JOIN firsts f ON f.user_id = p.user_id AND f.first_tier = 'free'
    GROUP BY p.user_id
)
SELECT count(*) FILTER (WHERE f.first_tier = 'free') AS started_free,
       count(u.user_id) AS converted,
       round(100.0 * count(u.user_id) / nullif(count(*) FILTER (WHERE f.first_tier = 'free'), 0), 1)
           AS conversion_percent,
       round((avg(extract(epoch FROM u.first_paid_play - f.first_play)) / 86400.0)::numeric, 1)
           AS avg_days_to_convert
FROM firsts f
LEFT JOIN upgrades u USING (user_id);
