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

-- backfill: rollups  (a database that holds plays gets its rollups rebuilt from them: load/rollups.py)
