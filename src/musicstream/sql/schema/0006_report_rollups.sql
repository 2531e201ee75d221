-- Rollups for `musicstream report`: small tables the load keeps exact in its own transaction (load/merge.sql),
-- so that most figures need not scan every play of the period. Rows are per UTC day, so any --since/--until
-- (days) and --tier filter selects whole rows. See docs/schema.md.

-- The plays of one (day, tier, user, session, location, user agent): how many, their length (play_names), how
-- many are on a catalog track, and the first and last by (start_time, item_in_session).
CREATE TABLE IF NOT EXISTS rollup_sessions (
    day           DATE NOT NULL,
    tier          TEXT NOT NULL,
    user_id       INT NOT NULL,
    session_id    INT NOT NULL,
    location      TEXT,
    user_agent    TEXT,
    plays         INT NOT NULL,
    length_ms     BIGINT NOT NULL,
    catalog_plays INT NOT NULL,
    first_play    TIMESTAMP NOT NULL,
    first_item    INT NOT NULL,
    last_play     TIMESTAMP NOT NULL,
    last_item     INT NOT NULL
);
-- Locations and user agents can be longer than a btree entry may be (a 50 MB event is loaded): the key holds
-- their MD5.
CREATE UNIQUE INDEX IF NOT EXISTS rollup_sessions_key
    ON rollup_sessions (day, tier, user_id, session_id, md5(location), md5(user_agent)) NULLS NOT DISTINCT;

-- Plays per (day, hour of day, tier), UTC.
CREATE TABLE IF NOT EXISTS rollup_hours (
    day   DATE NOT NULL,
    hour  INT NOT NULL,
    tier  TEXT NOT NULL,
    plays INT NOT NULL,
    PRIMARY KEY (day, hour, tier)
);

-- Databases loaded before this version: the rollups of the plays they hold.
INSERT INTO rollup_sessions (day, tier, user_id, session_id, location, user_agent, plays, length_ms, catalog_plays,
                             first_play, first_item, last_play, last_item)
SELECT day, tier, user_id, session_id, location, user_agent, plays, length_ms, catalog_plays,
       first_play, items[1], last_play, items[cardinality(items)]
FROM (
    SELECT p.start_time::date AS day, p.tier, p.user_id, p.session_id, p.location, p.user_agent,
           count(*) AS plays, sum(n.length_ms) AS length_ms, count(*) FILTER (WHERE NOT t.is_inferred) AS catalog_plays,
           min(p.start_time) AS first_play, max(p.start_time) AS last_play,
           array_agg(p.item_in_session ORDER BY p.start_time, p.item_in_session) AS items
    FROM trackplays p
    JOIN play_names n USING (name_id)
    LEFT JOIN tracks t ON t.track_id = p.track_id
    GROUP BY 1, 2, 3, 4, 5, 6
) s
ORDER BY 1, 2, 3, 4;

INSERT INTO rollup_hours (day, hour, tier, plays)
SELECT start_time::date, extract(hour FROM start_time)::int, tier, count(*)
FROM trackplays
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;

-- The rollup rows of a period (days inclusive, UTC; NULL = open) on one tier (NULL = both); inlinable like
-- report_plays.
CREATE OR REPLACE FUNCTION report_sessions(p_since date, p_until date, p_tier text)
RETURNS SETOF rollup_sessions
LANGUAGE sql STABLE
AS $$
    SELECT * FROM rollup_sessions
    WHERE day >= coalesce(p_since, '-infinity'::date)
      AND day <= coalesce(p_until, 'infinity'::date)
      AND (p_tier IS NULL OR tier = p_tier)
$$;

CREATE OR REPLACE FUNCTION report_hours(p_since date, p_until date, p_tier text)
RETURNS SETOF rollup_hours
LANGUAGE sql STABLE
AS $$
    SELECT * FROM rollup_hours
    WHERE day >= coalesce(p_since, '-infinity'::date)
      AND day <= coalesce(p_until, 'infinity'::date)
      AND (p_tier IS NULL OR tier = p_tier)
$$;
