-- The report's other figures from rows that do not grow with the plays (docs/schema.md, "Report rollups that do not grow with the plays").
--
-- Listeners are counted with bitmaps: every user gets a listener number (0, 1, 2, ... in the order users first
-- appear), and a set of listeners is a bit string with bit n set for listener n. A period's distinct listeners
-- are the bit count of the OR of its days' bitmaps: exact, whatever the period, in microseconds.
--
-- rollup_day_sets: per UTC day and tier, the day's figures (dim 'day'), and the same per location and per user
-- agent; each row's plays, length, catalog plays, first and last play, and its listeners' bitmap. The load
-- recomputes the rows of every day it touches from rollup_sessions (rule 8's moves included).
--
-- rollup_user_days: per day, tier and user, the first and last play (for the tier changes).
--
-- rollup_session_days: sessions counted without their pairs. A period's sessions are those active on one of its
-- days whose previous active day (on the same tier, or on any tier: tiers '*') falls before the period; so each
-- day keeps how many of its sessions had which previous active day.

-- The hours of the day (UTC) a rollup row's plays fall in: bit h set for hour h.
ALTER TABLE rollup_sessions ADD COLUMN IF NOT EXISTS hours INT NOT NULL DEFAULT 0;
UPDATE rollup_sessions r SET hours = h.hours
FROM (
    SELECT start_time::date AS day, tier, user_id, session_id, coalesce(md5(location), '') AS location_key,
           coalesce(md5(user_agent), '') AS agent_key, bit_or(1 << date_part('hour', start_time)::int) AS hours
    FROM trackplays
    GROUP BY 1, 2, 3, 4, 5, 6
) h
WHERE r.day = h.day AND r.tier = h.tier AND r.user_id = h.user_id AND r.session_id = h.session_id
  AND coalesce(md5(r.location), '') = h.location_key AND coalesce(md5(r.user_agent), '') = h.agent_key;

ALTER TABLE users ADD COLUMN IF NOT EXISTS listener_no INT;
UPDATE users u SET listener_no = n.no
FROM (SELECT user_id, row_number() OVER (ORDER BY user_id) - 1 AS no FROM users) n
WHERE u.user_id = n.user_id;
CREATE UNIQUE INDEX IF NOT EXISTS users_listener_no_key ON users (listener_no);

-- The union of bitmaps of any lengths (shorter ones padded with zeros); bit_count() of it counts the listeners.
CREATE OR REPLACE FUNCTION bits_or(a varbit, b varbit)
RETURNS varbit
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN a IS NULL THEN b
        WHEN b IS NULL THEN a
        WHEN length(a) < length(b) THEN (a || repeat('0', length(b) - length(a))::varbit) | b
        ELSE a | (b || repeat('0', length(a) - length(b))::varbit)
    END
$$;

CREATE OR REPLACE AGGREGATE bits_union(varbit) (SFUNC = bits_or, STYPE = varbit, COMBINEFUNC = bits_or,
                                                 PARALLEL = SAFE);

-- Whether bit n of a bitmap is set (false past its end).
CREATE OR REPLACE FUNCTION bit_is_set(b varbit, n int)
RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT n IS NOT NULL AND n >= 0 AND n < length(b) AND get_bit(b, n) = 1
$$;

CREATE TABLE IF NOT EXISTS rollup_day_sets (
    day           DATE NOT NULL,
    tier          TEXT NOT NULL,
    dim           TEXT NOT NULL CHECK (dim IN ('day', 'location', 'agent')),
    value         TEXT,  -- the location or user agent (NULL: none given); NULL for 'day'
    plays         INT NOT NULL,
    length_ms     BIGINT NOT NULL,
    catalog_plays INT NOT NULL,
    first_play    TIMESTAMP NOT NULL,
    last_play     TIMESTAMP NOT NULL,
    listeners     INT NOT NULL,
    users         VARBIT NOT NULL
);
-- A location can be longer than a btree entry may be: the key holds its MD5 (as rollup_sessions does).
CREATE UNIQUE INDEX IF NOT EXISTS rollup_day_sets_key
    ON rollup_day_sets (day, tier, dim, md5(value)) NULLS NOT DISTINCT;

CREATE TABLE IF NOT EXISTS rollup_session_days (
    day      DATE NOT NULL,
    tiers    TEXT NOT NULL,  -- 'free', 'paid', or '*' for the two together
    prev_day DATE,           -- the session's previous day with plays on those tiers (NULL: none)
    sessions INT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS rollup_session_days_key
    ON rollup_session_days (day, tiers, prev_day) NULLS NOT DISTINCT;

-- A session's days (refresh_session_days looks up the days of the sessions a run touched).
CREATE INDEX IF NOT EXISTS rollup_sessions_session ON rollup_sessions (user_id, session_id, day);

-- Per day, tier and user: the user's first and last play of the day on the tier, as positions (start time in
-- microseconds since the epoch, session, item) that compare in play order, and the hours with plays.
-- tier_changes reads the rows of the users with plays on both tiers in the period; free_to_paid and
-- hourly_pattern read the period's rows.
CREATE TABLE IF NOT EXISTS rollup_user_days (
    day      DATE NOT NULL,
    tier     TEXT NOT NULL,
    user_id  INT NOT NULL,
    first_at BIGINT[] NOT NULL,
    last_at  BIGINT[] NOT NULL,
    hours    INT NOT NULL,  -- the hours of the day (UTC) with plays: bit h for hour h
    PRIMARY KEY (day, tier, user_id)
);

-- The bits set in a bitmap, as listener numbers.
CREATE OR REPLACE FUNCTION bit_positions(b varbit)
RETURNS SETOF int
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (n - 1)::int FROM string_to_table(b::text, NULL) WITH ORDINALITY AS t(bit, n) WHERE bit = '1'
$$;

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

-- The figures of the data already loaded.
SELECT refresh_day_sets(ARRAY(SELECT DISTINCT day FROM rollup_sessions));
SELECT refresh_session_days('-infinity');
ANALYZE users, rollup_sessions, rollup_day_sets, rollup_session_days, rollup_user_days;
