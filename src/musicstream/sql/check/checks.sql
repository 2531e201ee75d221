-- Data-quality checks of the loaded tables. Each returns the number of offending rows; 0 passes.

-- name: plays_natural_key_unique
-- Every (user, session, item) is one play.
SELECT count(*) FROM (
    SELECT 1 FROM trackplays GROUP BY user_id, session_id, item_in_session HAVING count(*) > 1
) d;

-- name: plays_have_user
-- Every play's user is in users.
SELECT count(*) FROM trackplays p WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = p.user_id);

-- name: foreign_keys_in_place
-- The declared keys and foreign keys are in place (a killed first load leaves them off until the next load adds them).
SELECT count(*) FROM deferred_indexes WHERE definition LIKE 'ALTER TABLE%%';

-- name: plays_resolved
-- Every play has a track and an artist that exist (rule 7).
SELECT count(*) FROM trackplays p
WHERE NOT EXISTS (SELECT 1 FROM tracks t WHERE t.track_id = p.track_id)
   OR NOT EXISTS (SELECT 1 FROM artists a WHERE a.artist_id = p.artist_id);

-- name: plays_artist_agrees_with_track
-- A play's artist is its track's artist.
SELECT count(*) FROM trackplays p JOIN tracks t USING (track_id) WHERE t.artist_id <> p.artist_id;

-- name: timetb_covers_plays
-- timetb has a row for every play's start time (rule 4).
SELECT count(*) FROM (SELECT DISTINCT start_time FROM trackplays) p
WHERE NOT EXISTS (SELECT 1 FROM timetb t WHERE t.start_time = p.start_time);

-- name: timetb_only_play_times
-- timetb has no row that no play uses.
SELECT count(*) FROM timetb t WHERE NOT EXISTS (SELECT 1 FROM trackplays p WHERE p.start_time = t.start_time);

-- name: timetb_parts_agree
-- hour, day, week, month, year and weekday are those of start_time, in UTC.
SELECT count(*) FROM timetb
WHERE hour <> extract(hour FROM start_time) OR day <> extract(day FROM start_time)
   OR week <> extract(week FROM start_time) OR month <> extract(month FROM start_time)
   OR year <> extract(year FROM start_time) OR weekday <> to_char(start_time, 'FMDay');

-- name: tiers_valid
-- Tiers are 'free' or 'paid', in users and plays.
SELECT (SELECT count(*) FROM users WHERE tier NOT IN ({{tiers}}))
     + (SELECT count(*) FROM trackplays WHERE tier NOT IN ({{tiers}}));

-- name: tracks_have_artist
-- Every track's artist is in artists.
SELECT count(*) FROM tracks t WHERE NOT EXISTS (SELECT 1 FROM artists a WHERE a.artist_id = t.artist_id);

-- name: inferred_rows_used
-- Inferred tracks and artists exist only while a play uses them (rule 8).
SELECT (SELECT count(*) FROM tracks t
        WHERE t.is_inferred AND NOT EXISTS (SELECT 1 FROM trackplays p WHERE p.track_id = t.track_id))
     + (SELECT count(*) FROM artists a
        WHERE a.is_inferred AND NOT EXISTS (SELECT 1 FROM trackplays p WHERE p.artist_id = a.artist_id));

-- name: inferred_ids_prefixed
-- Inferred ids carry their prefix, catalog ids do not.
SELECT (SELECT count(*) FROM tracks WHERE is_inferred <> (track_id LIKE {{inferred_track_prefix}} || '%'))
     + (SELECT count(*) FROM artists WHERE is_inferred <> (artist_id LIKE {{inferred_artist_prefix}} || '%'));

-- name: runs_reconcile
-- Every finished run accounts for each record it read: loaded + skipped + duplicate + rejected.
SELECT count(*) FROM etl_runs
WHERE status = 'succeeded' AND records_read <> records_loaded + records_skipped + duplicates + rejects;

-- name: rejects_match_manifest
-- The rejects table holds exactly the rejects the manifest counts for each loaded file.
SELECT count(*) FROM loaded_files f
WHERE f.rejects <> (SELECT count(*) FROM rejects r WHERE r.file = f.path);

-- name: plays_agree_with_names
-- Every play has the track and artist its name (song, artist, length) resolves to (rules 6-8).
SELECT count(*) FROM trackplays p JOIN play_names n USING (name_id)
WHERE p.track_id <> n.track_id OR p.artist_id <> n.artist_id;
