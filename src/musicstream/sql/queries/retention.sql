-- Weekly retention: of the listeners active in a week (ISO weeks, Monday to Sunday, UTC), how many came back the next week.
-- param since date null: first day, UTC (null: from the start); weeks are cut to the period
-- param until date null: last day, UTC, inclusive (null: to the end)
-- param tier tier null: 'free', 'paid' or null for both
WITH weeks AS (
    -- each week's listeners as one bitmap (schema 9): the union of its days'
    SELECT date_trunc('week', day)::date AS week, bits_union(users) AS users
    FROM report_day_sets(%(since)s::date, %(until)s::date, %(tier)s::text, 'day')
    GROUP BY 1
), span AS (
    SELECT w::date AS week
    FROM generate_series((SELECT min(week) FROM weeks), (SELECT max(week) FROM weeks), INTERVAL '7 days') w
)
SELECT s.week AS week_start, coalesce(bit_count(w.users), 0) AS listeners,
       -- |this ∩ next| = |this| + |next| - |this ∪ next|; the last week has no next week
       CASE WHEN s.week = (SELECT max(week) FROM weeks) THEN NULL
            ELSE coalesce(bit_count(w.users) + bit_count(n.users) - bit_count(bits_or(w.users, n.users)), 0)
       END AS came_back_next_week,
       CASE WHEN s.week = (SELECT max(week) FROM weeks) THEN NULL
            ELSE round(100.0 * coalesce(bit_count(w.users) + bit_count(n.users) - bit_count(bits_or(w.users, n.users)), 0)
                       / nullif(bit_count(w.users), 0), 1)
       END AS percent
FROM span s
LEFT JOIN weeks w ON w.week = s.week
LEFT JOIN weeks n ON n.week = s.week + 7
ORDER BY s.week;
