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

-- Who changed tier within a day, and on which tier each listener's day began (dim 'day' rows only): on a tier's
-- row, "openers" are the listeners whose first play of the day was on that tier, "arrivals" those with a play on
-- it after a play on the other tier that day (on the paid row: the day's upgrades; on the free row: downgrades).
ALTER TABLE rollup_day_sets ADD COLUMN IF NOT EXISTS openers VARBIT, ADD COLUMN IF NOT EXISTS arrivals VARBIT;

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

-- backfill: rollups  (a database that holds plays gets its rollups rebuilt from them: load/rollups.py)
