-- Top tracks and artists of any period without reading every play of it (docs/schema.md, "Report rollups that do not grow with the plays").
-- The lists and report_top(), which reads them: sql/rollups/functions/day_tops.sql.

-- A key's plays on given days, read by index (report_top counts a key missing from some lists on those days
-- only). The same names as before, now with the start time: they still serve the foreign keys and rule 8.
DROP INDEX IF EXISTS trackplays_track_idx;
CREATE INDEX trackplays_track_idx ON trackplays (track_id, start_time);
DROP INDEX IF EXISTS trackplays_artist_idx;
CREATE INDEX trackplays_artist_idx ON trackplays (artist_id, start_time);

CREATE TABLE IF NOT EXISTS rollup_day_tops (
    day       DATE NOT NULL,
    tier      TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('track', 'artist')),
    key       TEXT COLLATE "C" NOT NULL,
    plays     INT NOT NULL,
    listeners INT NOT NULL,
    users     INT[] NOT NULL,
    PRIMARY KEY (day, tier, kind, key)
);
CREATE INDEX IF NOT EXISTS rollup_day_tops_key ON rollup_day_tops (kind, key);

CREATE TABLE IF NOT EXISTS rollup_day_floors (
    day   DATE NOT NULL,
    tier  TEXT NOT NULL,
    kind  TEXT NOT NULL,
    plays INT NOT NULL,  -- the most plays of a key not in the day's list (0: the list holds every key)
    PRIMARY KEY (day, tier, kind)
);

-- backfill: rollups  (a database that holds plays gets its rollups rebuilt from them: load/rollups.py)
