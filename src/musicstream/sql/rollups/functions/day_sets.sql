-- rollup_day_sets, rollup_user_days and rollup_session_days: refreshed per touched day, and read.
--
-- Repeatable: `musicstream init` applies this file again whenever it changes (db/schema.py); it holds the one
-- current body of each function below.

-- The day sets of some days, from their rollup_sessions rows.
CREATE OR REPLACE FUNCTION refresh_day_sets(p_days date[])
RETURNS void
LANGUAGE plpgsql
SET enable_mergejoin = off
AS $$
BEGIN
    DELETE FROM rollup_day_sets WHERE day = ANY(p_days);
    DELETE FROM rollup_user_days WHERE day = ANY(p_days);
    INSERT INTO rollup_user_days (day, tier, user_id, first_at, last_at, hours)
    SELECT day, tier, user_id,
           min(ARRAY[(date_part('epoch', first_play) * 1000000)::bigint, session_id, first_item]),
           max(ARRAY[(date_part('epoch', last_play) * 1000000)::bigint, session_id, last_item]),
           bit_or(hours)
    FROM rollup_sessions
    WHERE day = ANY(p_days)
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3;
    CREATE TEMP TABLE day_set_rows ON COMMIT DROP AS
    SELECT r.day, r.tier, g.dim, g.value, r.plays, r.length_ms, r.catalog_plays, r.first_play, r.last_play,
           u.listener_no
    FROM rollup_sessions r
    JOIN users u USING (user_id)
    CROSS JOIN LATERAL (VALUES ('day', NULL::text), ('location', r.location), ('agent', r.user_agent)) g(dim, value)
    WHERE r.day = ANY(p_days);
    -- one pass: rows grouped by the byte of their listener's bit (bits OR-ed, figures summed), then each group's
    -- bytes written out as hex digits with the zero bytes between them
    INSERT INTO rollup_day_sets (day, tier, dim, value, plays, length_ms, catalog_plays, first_play, last_play,
                                 listeners, users)
    SELECT day, tier, dim, value, plays, length_ms, catalog_plays, first_play, last_play, bit_count(users), users
    FROM (
        SELECT day, tier, dim, value, sum(plays) AS plays, sum(length_ms) AS length_ms,
               sum(catalog_plays) AS catalog_plays, min(first_play) AS first_play, max(last_play) AS last_play,
               coalesce(('x' || string_agg(repeat('00', byte - prev - 1) || lpad(to_hex(bits), 2, '0'), ''
                                           ORDER BY byte))::varbit, B'') AS users
        FROM (
            SELECT *, lag(byte, 1, -1) OVER (PARTITION BY day, tier, dim, value ORDER BY byte) AS prev
            FROM (
                SELECT day, tier, dim, value, listener_no / 8 AS byte, bit_or(128 >> (listener_no % 8)) AS bits,
                       sum(plays) AS plays, sum(length_ms) AS length_ms, sum(catalog_plays) AS catalog_plays,
                       min(first_play) AS first_play, max(last_play) AS last_play
                FROM day_set_rows
                GROUP BY 1, 2, 3, 4, 5
            ) bytes
        ) gaps
        GROUP BY 1, 2, 3, 4
    ) sets;
    DROP TABLE day_set_rows;
END
$$;

-- The session counts of the days from p_from on (a day's counts depend on earlier days: a session's previous day).
CREATE OR REPLACE FUNCTION refresh_session_days(p_from date)
RETURNS void
LANGUAGE sql
AS $$
    DELETE FROM rollup_session_days WHERE day >= p_from;
    INSERT INTO rollup_session_days (day, tiers, prev_day, sessions)
    SELECT day, tiers, prev_day, count(*)
    FROM (
        SELECT day, tiers, lag(day) OVER (PARTITION BY user_id, session_id, tiers ORDER BY day) AS prev_day
        FROM (
            SELECT DISTINCT r.user_id, r.session_id, t.tiers, r.day
            FROM rollup_sessions r
            CROSS JOIN LATERAL (VALUES (r.tier), ('*')) t(tiers)
            WHERE (r.user_id, r.session_id) IN (SELECT user_id, session_id FROM rollup_sessions WHERE day >= p_from)
        ) active
    ) chained
    WHERE day >= p_from
    GROUP BY 1, 2, 3;
$$;

-- The rows of a period (days inclusive, NULL = open) on one tier (NULL = both).
CREATE OR REPLACE FUNCTION report_day_sets(p_since date, p_until date, p_tier text, p_dim text)
RETURNS SETOF rollup_day_sets
LANGUAGE sql
STABLE
AS $$
    SELECT * FROM rollup_day_sets
    WHERE dim = p_dim
      AND day >= coalesce(p_since, '-infinity'::date)
      AND day <= coalesce(p_until, 'infinity'::date)
      AND (p_tier IS NULL OR tier = p_tier)
$$;

-- The sessions with plays in a period on one tier (NULL = both).
CREATE OR REPLACE FUNCTION report_session_count(p_since date, p_until date, p_tier text)
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT coalesce(sum(sessions), 0)
    FROM rollup_session_days
    WHERE tiers = coalesce(p_tier, '*')
      AND day >= coalesce(p_since, '-infinity'::date)
      AND day <= coalesce(p_until, 'infinity'::date)
      AND (prev_day IS NULL OR prev_day < coalesce(p_since, '-infinity'::date))
$$;
