-- Session lengths and tier changes of any period without reading every session or user-day (docs/schema.md,
-- "Report rollups that do not grow with the plays").
--
-- rollup_session_lengths: per UTC day, the sessions whose plays all fall on that day, counted by length bucket
-- (session_bucket: songs played) and duration in whole seconds (last play's start minus first play's start),
-- with their songs. A period's median duration per bucket is read from these counts exactly.
--
-- rollup_spanning_sessions: the sessions with plays on more than one day (across midnight, or a session id used
-- again on a later day), with their plays and first and last play per day: session_lengths adds up their part
-- in a period.
--
-- rollup_day_sets.openers / .arrivals (dim 'day'): per day and tier, the listeners whose day began on the tier,
-- and those who played the tier after a play on the other one that day. With the days' listener bitmaps they give
-- the report's upgrades and downgrades and free_to_paid's starting tier as bitmap operations.

-- The length bucket of a session by the songs it played (one definition: the load and session_lengths use it).
CREATE OR REPLACE FUNCTION session_bucket(songs bigint)
RETURNS int
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN songs <= 1 THEN 1 WHEN songs <= 5 THEN 2 WHEN songs <= 10 THEN 3
                WHEN songs <= 20 THEN 4 WHEN songs <= 50 THEN 5 ELSE 6 END
$$;

-- A session's duration as session_lengths counts it: whole seconds from its first play's start to its last's.
CREATE OR REPLACE FUNCTION session_seconds(first_play timestamp, last_play timestamp)
RETURNS int
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT floor(extract(epoch FROM last_play - first_play))::int
$$;

-- The intersection of two bitmaps of any lengths (the bits set in both).
CREATE OR REPLACE FUNCTION bits_and(a varbit, b varbit)
RETURNS varbit
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN length(a) < length(b) THEN a & substring(b FROM 1 FOR length(a))
        ELSE substring(a FROM 1 FOR length(b)) & b
    END
$$;

-- Who changed tier within a day, and on which tier each listener's day began (dim 'day' rows only): on a tier's
-- row, "openers" are the listeners whose first play of the day was on that tier, "arrivals" those with a play on
-- it after a play on the other tier that day (on the paid row: the day's upgrades; on the free row: downgrades).
ALTER TABLE rollup_day_sets ADD COLUMN IF NOT EXISTS openers VARBIT, ADD COLUMN IF NOT EXISTS arrivals VARBIT;

-- The bitmap of some listener numbers (bit n set for listener n; as long as the whole bytes it needs).
CREATE OR REPLACE FUNCTION listener_bitmap(p_listeners int[])
RETURNS varbit
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(('x' || string_agg(repeat('00', byte - prev - 1) || lpad(to_hex(bits), 2, '0'), '' ORDER BY byte))::varbit,
                    B'')
    FROM (
        SELECT byte, bits, lag(byte, 1, -1) OVER (ORDER BY byte) AS prev
        FROM (SELECT n / 8 AS byte, bit_or(128 >> (n % 8)) AS bits FROM unnest(p_listeners) n GROUP BY 1) b
    ) g
$$;

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

CREATE TABLE IF NOT EXISTS rollup_session_lengths (
    day      DATE NOT NULL,
    bucket   INT NOT NULL,
    seconds  INT NOT NULL,
    sessions INT NOT NULL,
    songs    BIGINT NOT NULL,
    PRIMARY KEY (day, bucket, seconds)
);

CREATE TABLE IF NOT EXISTS rollup_spanning_sessions (
    user_id    INT NOT NULL,
    session_id INT NOT NULL,
    day        DATE NOT NULL,
    plays      INT NOT NULL,
    first_play TIMESTAMP NOT NULL,
    last_play  TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, session_id, day)
);

-- A user's rows of rollup_user_days by tier and day (free_to_paid and the report's tier changes look up the first
-- and last play of a few users instead of reading every row of the period).
CREATE INDEX IF NOT EXISTS rollup_user_days_user ON rollup_user_days (user_id, tier, day) INCLUDE (first_at, last_at);

-- The session lengths of the sessions with plays on some days (the load calls it with the days it added plays
-- to; the migration with every day). Those sessions' rows are aggregated per day: on the given days from the day
-- index, on other days by session (index rollup_sessions_session; skipped when the given days are every day with
-- plays, as in a first load). A session on a single day is counted in that day's row; the others are (re)listed as
-- spanning, and the other days they touch are counted again (a session counted on its one day before may now span
-- two).
CREATE OR REPLACE FUNCTION refresh_session_lengths(p_days date[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_more date[];
BEGIN
    IF cardinality(p_days) IS NULL OR cardinality(p_days) = 0 THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE session_parts ON COMMIT DROP AS
    SELECT user_id, session_id, day, sum(plays)::int AS plays, min(first_play) AS first_play,
           max(last_play) AS last_play
    FROM rollup_sessions
    WHERE day = ANY(p_days)
    GROUP BY 1, 2, 3;
    IF EXISTS (SELECT 1 FROM rollup_hours WHERE day <> ALL(p_days)) THEN
        INSERT INTO session_parts (user_id, session_id, day, plays, first_play, last_play)
        SELECT t.user_id, t.session_id, o.day, o.plays, o.first_play, o.last_play
        FROM (SELECT DISTINCT user_id, session_id FROM session_parts) t
        CROSS JOIN LATERAL (
            SELECT r.day, sum(r.plays)::int AS plays, min(r.first_play) AS first_play, max(r.last_play) AS last_play
            FROM rollup_sessions r
            WHERE r.user_id = t.user_id AND r.session_id = t.session_id AND r.day <> ALL(p_days)
            GROUP BY r.day
        ) o;
    END IF;
    CREATE TEMP TABLE session_spans ON COMMIT DROP AS
    SELECT user_id, session_id, min(day) AS first_day, max(day) AS last_day, sum(plays) AS songs,
           session_seconds(min(first_play), max(last_play)) AS seconds
    FROM session_parts
    GROUP BY 1, 2;
    DELETE FROM rollup_spanning_sessions s
    USING session_spans t
    WHERE s.user_id = t.user_id AND s.session_id = t.session_id;
    INSERT INTO rollup_spanning_sessions (user_id, session_id, day, plays, first_play, last_play)
    SELECT p.user_id, p.session_id, p.day, p.plays, p.first_play, p.last_play
    FROM session_parts p
    JOIN session_spans s ON s.user_id = p.user_id AND s.session_id = p.session_id
    WHERE s.first_day < s.last_day;
    v_more := ARRAY(SELECT DISTINCT day FROM session_parts WHERE day <> ALL(p_days));
    DELETE FROM rollup_session_lengths WHERE day = ANY(p_days) OR day = ANY(v_more);
    INSERT INTO rollup_session_lengths (day, bucket, seconds, sessions, songs)
    SELECT first_day, session_bucket(songs), seconds, count(*), sum(songs)
    FROM session_spans
    WHERE first_day = last_day
    GROUP BY 1, 2, 3;
    INSERT INTO rollup_session_lengths (day, bucket, seconds, sessions, songs)
    SELECT day, session_bucket(songs), seconds, count(*), sum(songs)
    FROM (
        SELECT r.day, sum(r.plays) AS songs, session_seconds(min(r.first_play), max(r.last_play)) AS seconds
        FROM rollup_sessions r
        WHERE r.day = ANY(v_more)
          AND NOT EXISTS (SELECT 1 FROM rollup_spanning_sessions s
                          WHERE s.user_id = r.user_id AND s.session_id = r.session_id)
        GROUP BY r.day, r.user_id, r.session_id
    ) one_day
    GROUP BY 1, 2, 3;
    DROP TABLE session_parts, session_spans;
END
$$;

-- The figures of the data already loaded.
SELECT refresh_day_tier_moves(ARRAY(SELECT DISTINCT day FROM rollup_user_days));
SELECT refresh_session_lengths(ARRAY(SELECT DISTINCT day FROM rollup_sessions));
ANALYZE rollup_day_sets, rollup_session_lengths, rollup_spanning_sessions, rollup_user_days;
