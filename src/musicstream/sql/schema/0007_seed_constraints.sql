-- The seed's data model, constraint for constraint (docs/schema.md, "Keys and types"): NOT NULL names,
-- NUMERIC durations and coordinates, and the fact table's foreign keys.

-- A user with no name on their latest event is named 'Unknown' (the unknown-member attribute); plays still load.
UPDATE users SET first_name = coalesce(first_name, 'Unknown'), last_name = coalesce(last_name, 'Unknown')
WHERE first_name IS NULL OR last_name IS NULL;
ALTER TABLE users ALTER COLUMN first_name SET NOT NULL, ALTER COLUMN last_name SET NOT NULL;

-- A catalog song without a duration is a reject from now on (it could never match a play anyway, rule 6); one
-- already stored cannot be turned into a reject here: say so rather than invent a duration.
DO $$
DECLARE
    missing bigint := (SELECT count(*) FROM tracks WHERE duration IS NULL);
BEGIN
    IF missing > 0 THEN
        RAISE EXCEPTION 'musicstream: % catalog tracks have no duration, which schema version 7 requires', missing
            USING HINT = 'Reload the data (musicstream init --reset, then load): such songs become rejects.';
    END IF;
END
$$;

-- NUMERIC keeps the decimals the song files wrote: a double's shortest text is exactly what it was read from.
-- Two views read those columns: they are dropped and made again with the grants they had (musicstream roles).
CREATE TEMP TABLE view_grants ON COMMIT DROP AS
SELECT c.relname AS view, CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END AS
       grantee, g.privilege_type
FROM pg_class c, aclexplode(c.relacl) g
WHERE c.relnamespace = 'sparkify'::regnamespace AND c.relname IN ('songs', 'artists') AND g.grantee <> c.relowner;
DROP VIEW IF EXISTS sparkify.songs;
DROP VIEW IF EXISTS sparkify.artists;
ALTER TABLE tracks ALTER COLUMN duration TYPE NUMERIC USING duration::text::numeric,
                   ALTER COLUMN duration SET NOT NULL;
ALTER TABLE artists ALTER COLUMN latitude TYPE NUMERIC USING latitude::text::numeric,
                    ALTER COLUMN longitude TYPE NUMERIC USING longitude::text::numeric;
CREATE VIEW sparkify.songs AS
SELECT track_id AS song_id, title, artist_id, year, duration FROM public.tracks WHERE NOT is_inferred;
CREATE VIEW sparkify.artists AS
SELECT artist_id, name, location, latitude, longitude FROM public.artists WHERE NOT is_inferred;
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM view_grants LOOP
        EXECUTE format('GRANT %s ON sparkify.%I TO %s', g.privilege_type, g.view, g.grantee);
    END LOOP;
END
$$;

-- Foreign keys, validated set-based here. Deleting an inferred track (rule 8) checks the plays by track_id: index
-- it, as artist_id already is.
CREATE INDEX IF NOT EXISTS trackplays_track_idx ON trackplays (track_id);
ALTER TABLE trackplays
    ADD CONSTRAINT trackplays_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id),
    ADD CONSTRAINT trackplays_track_id_fkey FOREIGN KEY (track_id) REFERENCES tracks (track_id),
    ADD CONSTRAINT trackplays_artist_id_fkey FOREIGN KEY (artist_id) REFERENCES artists (artist_id);
