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

ALTER TABLE users ADD COLUMN IF NOT EXISTS listener_no INT;
UPDATE users u SET listener_no = n.no
FROM (SELECT user_id, row_number() OVER (ORDER BY user_id) - 1 AS no FROM users) n
WHERE u.user_id = n.user_id;
CREATE UNIQUE INDEX IF NOT EXISTS users_listener_no_key ON users (listener_no);

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

-- backfill: rollups  (a database that holds plays gets its rollups rebuilt from them: load/rollups.py)
