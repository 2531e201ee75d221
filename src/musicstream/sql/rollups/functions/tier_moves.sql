-- The openers and arrivals of rollup_day_sets (who changed tier within a day): refreshed per day, and read.
--
-- Repeatable: `musicstream init` applies this file again whenever it changes (db/schema.py); it holds the one
-- current body of each function below.

-- The openers and arrivals of some days, from their rollup_user_days rows (called after refresh_day_sets).
CREATE OR REPLACE FUNCTION refresh_day_tier_moves(p_days date[])
RETURNS void
LANGUAGE sql
AS $$
    UPDATE rollup_day_sets s
    SET openers = m.openers, arrivals = m.arrivals
    FROM (
        SELECT day, tier,
               listener_bitmap(array_agg(listener_no) FILTER (WHERE opened)) AS openers,
               listener_bitmap(array_agg(listener_no) FILTER (WHERE arrived)) AS arrivals
        FROM (
            SELECT d.day, d.tier, u.listener_no, o.first_at IS NULL OR d.first_at < o.first_at AS opened,
                   coalesce(o.first_at < d.last_at, false) AS arrived
            FROM rollup_user_days d
            JOIN users u ON u.user_id = d.user_id
            LEFT JOIN rollup_user_days o ON o.day = d.day AND o.user_id = d.user_id AND o.tier <> d.tier
            WHERE d.day = ANY(p_days)
        ) x
        GROUP BY day, tier
    ) m
    WHERE s.day = m.day AND s.tier = m.tier AND s.dim = 'day';
$$;

-- Per day of a period (days inclusive, NULL = open), per tier: the listeners, openers and arrivals, as bitmaps
-- all as long as the longest of the period (so that &, | and ~ apply). free_to_paid and the report's tier changes
-- read them.
CREATE OR REPLACE FUNCTION report_day_tiers(p_since date, p_until date)
RETURNS TABLE (day date, free varbit, paid varbit, free_openers varbit, paid_openers varbit, free_arrivals varbit,
               paid_arrivals varbit)
LANGUAGE sql
STABLE
AS $$
    WITH days AS (
        SELECT day,
               bits_union(users) FILTER (WHERE tier = 'free') AS free,
               bits_union(users) FILTER (WHERE tier = 'paid') AS paid,
               bits_union(openers) FILTER (WHERE tier = 'free') AS free_openers,
               bits_union(openers) FILTER (WHERE tier = 'paid') AS paid_openers,
               bits_union(arrivals) FILTER (WHERE tier = 'free') AS free_arrivals,
               bits_union(arrivals) FILTER (WHERE tier = 'paid') AS paid_arrivals
        FROM report_day_sets(p_since, p_until, NULL, 'day')
        GROUP BY day
    ), zero AS (
        SELECT repeat('0', max(greatest(length(free), length(paid))))::varbit AS bits FROM days
    )
    SELECT d.day, bits_or(coalesce(d.free, B''), z.bits), bits_or(coalesce(d.paid, B''), z.bits),
           bits_or(coalesce(d.free_openers, B''), z.bits), bits_or(coalesce(d.paid_openers, B''), z.bits),
           bits_or(coalesce(d.free_arrivals, B''), z.bits), bits_or(coalesce(d.paid_arrivals, B''), z.bits)
    FROM days d, zero z
    ORDER BY d.day
$$;
