-- The set-based half of a load: staged rows → star schema. Statements run in this order, each by name.
-- Rules are those of docs/rules.md; ids are compared in the "C" collation so every server orders alike.

-- name: touched_artist_keys
-- Artist names whose catalog changes in this run: plays naming them must be resolved again (rule 8).
CREATE TEMP TABLE touched_artist_keys ON COMMIT DROP AS
SELECT artist_key FROM stage_songs
UNION
SELECT t.artist_key FROM tracks t JOIN stage_songs s USING (track_id);

-- name: merge_artists
-- Rule 5: an artist named by several songs takes the details of the song with the smallest song id; records of
-- the same song id, the details that sort first (name, location, latitude, longitude; "C" order, NULLs last). A
-- total order, compared the same way in the upsert, so that any load order ends alike (rule 9).
WITH src AS (
    SELECT DISTINCT ON (artist_id) artist_id, artist_name, location, latitude, longitude, track_id
    FROM stage_songs
    ORDER BY artist_id, track_id, artist_name COLLATE "C", location COLLATE "C", latitude, longitude
), ins AS (
    INSERT INTO artists AS a (artist_id, name, location, latitude, longitude, is_inferred, source_track_id)
    SELECT artist_id, artist_name, location, latitude, longitude, FALSE, track_id FROM src
    ON CONFLICT (artist_id) DO UPDATE
    SET name = excluded.name, location = excluded.location, latitude = excluded.latitude,
        longitude = excluded.longitude, source_track_id = excluded.source_track_id
    WHERE (excluded.source_track_id, excluded.name COLLATE "C", coalesce(excluded.location, chr(1114111)) COLLATE "C",
           coalesce(excluded.latitude, 'Infinity'), coalesce(excluded.longitude, 'Infinity'))
        < (a.source_track_id, a.name COLLATE "C", coalesce(a.location, chr(1114111)) COLLATE "C",
           coalesce(a.latitude, 'Infinity'), coalesce(a.longitude, 'Infinity'))
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) FROM ins;

-- name: merge_tracks
-- Rule 5: the same song id with different details keeps the record that sorts first by (title, artist_id,
-- duration, year, artist's name key; "C" order, NULLs last), in any load order: the upsert compares the same way.
WITH src AS (
    SELECT DISTINCT ON (track_id) *
    FROM stage_songs
    ORDER BY track_id, title COLLATE "C", artist_id, duration, year, artist_key
), ins AS (
    INSERT INTO tracks AS t (track_id, title, artist_id, year, duration, is_inferred, title_key, artist_key)
    SELECT track_id, title, artist_id, year, duration, FALSE, title_key, artist_key FROM src
    ON CONFLICT (track_id) DO UPDATE
    SET title = excluded.title, artist_id = excluded.artist_id, year = excluded.year,
        duration = excluded.duration, title_key = excluded.title_key, artist_key = excluded.artist_key
    WHERE (excluded.title COLLATE "C", excluded.artist_id, coalesce(excluded.duration, 'Infinity'),
           coalesce(excluded.year, 2147483647), excluded.artist_key)
        < (t.title COLLATE "C", t.artist_id, coalesce(t.duration, 'Infinity'), coalesce(t.year, 2147483647),
           t.artist_key)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) FROM ins;

-- name: max_ids
SELECT coalesce((SELECT max(trackplay_id) FROM trackplays), 0), coalesce((SELECT max(name_id) FROM play_names), 0);

-- name: stage_names
-- The (title, artist, length) this run's plays name; a name's spelling is the smallest seen ("C" collation).
CREATE TEMP TABLE stage_names ON COMMIT DROP AS
SELECT title_key, artist_key, length_ms,
       min(song_title COLLATE "C") AS song_title, min(artist_name COLLATE "C") AS artist_name
FROM stage_plays
GROUP BY artist_key, title_key, length_ms;

-- name: names_to_resolve
-- Names new to the database, and known names whose artist a catalog change in this run touches (rule 8).
CREATE TEMP TABLE names_to_resolve ON COMMIT DROP AS
SELECT row_number() OVER () AS k_id, * FROM (
SELECT NULL::int AS name_id, s.title_key, s.artist_key, s.length_ms, s.song_title, s.artist_name,
       NULL::text COLLATE "C" AS old_track_id, NULL::text COLLATE "C" AS old_artist_id
FROM stage_names s
WHERE NOT EXISTS (
    SELECT 1 FROM play_names n
    WHERE n.artist_key = s.artist_key AND n.title_key = s.title_key AND n.length_ms = s.length_ms
)
UNION ALL
SELECT name_id, title_key, artist_key, length_ms, song_title, artist_name, track_id, artist_id
FROM play_names
WHERE artist_key IN (SELECT artist_key FROM touched_artist_keys)
) k;

-- name: resolve
-- Rules 6 and 7: catalog track by normalised title + artist within the tolerance (closest, then smallest id);
-- else catalog artist by normalised name (smallest id) or an inferred artist; inferred track per
-- (title, resolved artist, length in ms). Inferred ids: a prefix + md5 of the normalised key. The constants
-- ({{...}}) come from musicstream/rules.py.
CREATE TEMP TABLE resolution ON COMMIT DROP AS
WITH track_match AS (
    SELECT DISTINCT ON (k.k_id) k.k_id, t.track_id, t.artist_id
    FROM names_to_resolve k
    JOIN tracks t
      ON NOT t.is_inferred AND t.artist_key = k.artist_key AND t.title_key = k.title_key
     AND abs(t.duration::numeric - k.length_ms / 1000.0) <= {{match_tolerance_s}}
    ORDER BY k.k_id, abs(t.duration::numeric - k.length_ms / 1000.0), t.track_id
), artist_match AS (
    SELECT artist_key, min(artist_id) AS artist_id
    FROM tracks
    WHERE NOT is_inferred AND artist_key IN (SELECT artist_key FROM names_to_resolve)
    GROUP BY artist_key
), resolved AS (
    SELECT k.*, tm.track_id AS catalog_track_id,
           coalesce(tm.artist_id, am.artist_id, {{inferred_artist_prefix}} || left(md5(k.artist_key), {{inferred_id_hex}})) AS artist_id,
           (tm.artist_id IS NULL AND am.artist_id IS NULL) AS artist_inferred
    FROM names_to_resolve k
    LEFT JOIN track_match tm USING (k_id)
    LEFT JOIN artist_match am USING (artist_key)
)
SELECT name_id, title_key, artist_key, length_ms, song_title, artist_name, old_track_id, old_artist_id,
       artist_id, artist_inferred,
       coalesce(catalog_track_id,
                {{inferred_track_prefix}}
                || left(md5(title_key || chr({{key_separator_code}}) || artist_id || chr({{key_separator_code}}) || length_ms::text),
                        {{inferred_id_hex}})) AS track_id,
       catalog_track_id IS NULL AS track_inferred
FROM resolved;

-- name: inferred_artists
-- New inferred artists; plain INSERT of rows not there yet, in key order (cheaper than ON CONFLICT: loads are
-- serialised by the load lock, so nothing else inserts meanwhile).
INSERT INTO artists (artist_id, name, is_inferred)
SELECT artist_id, min(artist_name COLLATE "C"), TRUE
FROM resolution r
WHERE artist_inferred AND NOT EXISTS (SELECT 1 FROM artists a WHERE a.artist_id = r.artist_id)
GROUP BY artist_id
ORDER BY artist_id;

-- name: inferred_tracks
INSERT INTO tracks (track_id, title, artist_id, duration, is_inferred, title_key, artist_key)
SELECT track_id, min(song_title COLLATE "C"), min(artist_id), min(length_ms) * 0.001, TRUE,
       min(title_key), min(artist_key)
FROM resolution r
WHERE track_inferred AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.track_id = r.track_id)
GROUP BY track_id
ORDER BY track_id;

-- name: insert_names
-- New names with their resolution, in key order.
INSERT INTO play_names (title_key, artist_key, length_ms, song_title, artist_name, track_id, artist_id)
SELECT title_key, artist_key, length_ms, song_title, artist_name, track_id, artist_id
FROM resolution
WHERE name_id IS NULL
ORDER BY artist_key, title_key, length_ms;

-- name: name_spellings
-- A known name takes a smaller spelling seen in this run.
UPDATE play_names n
SET song_title = least(n.song_title, s.song_title), artist_name = least(n.artist_name, s.artist_name)
FROM stage_names s
WHERE n.artist_key = s.artist_key AND n.title_key = s.title_key AND n.length_ms = s.length_ms
  AND (s.song_title < n.song_title COLLATE "C" OR s.artist_name < n.artist_name COLLATE "C");

-- name: update_names
-- Known names whose resolution a catalog change moved (rule 8).
UPDATE play_names n
SET track_id = r.track_id, artist_id = r.artist_id
FROM resolution r
WHERE n.name_id = r.name_id AND (r.old_track_id, r.old_artist_id) IS DISTINCT FROM (r.track_id, r.artist_id);

-- name: inferred_artist_names
-- Rule 7: an inferred artist's name is the smallest spelling of the names resolving to it, in any load order:
-- the names resolved in this run, and known names spelt in this run (play_names holds their smallest spelling
-- by now, name_spellings).
UPDATE artists a SET name = r.name
FROM (
    SELECT artist_id, min(artist_name COLLATE "C") AS name FROM (
        SELECT artist_id, artist_name FROM resolution WHERE artist_inferred
        UNION ALL
        SELECT n.artist_id, n.artist_name
        FROM play_names n JOIN stage_names s USING (artist_key, title_key, length_ms)
        WHERE n.name_id <= %(after_name)s
    ) c
    GROUP BY 1
) r
WHERE a.artist_id = r.artist_id AND a.is_inferred AND r.name < a.name COLLATE "C";

-- name: inferred_track_titles
-- Rule 7: an inferred track's title is the smallest spelling of the names resolving to it (as for artists).
UPDATE tracks t SET title = r.title
FROM (
    SELECT track_id, min(song_title COLLATE "C") AS title FROM (
        SELECT track_id, song_title FROM resolution WHERE track_inferred
        UNION ALL
        SELECT n.track_id, n.song_title
        FROM play_names n JOIN stage_names s USING (artist_key, title_key, length_ms)
        WHERE n.name_id <= %(after_name)s
    ) c
    GROUP BY 1
) r
WHERE t.track_id = r.track_id AND t.is_inferred AND r.title < t.title COLLATE "C";

-- name: merge_users
-- Rule 3: a user's row carries the attributes of the user's latest event by (ts, session, item). Before the
-- plays: trackplays.user_id references users. A new user gets the next listener number (schema 9: bit n of the
-- report's bitmaps), in user id order within the run.
WITH src AS (
    SELECT s.*, e.user_id IS NULL AS is_new
    FROM stage_users s
    LEFT JOIN users e USING (user_id)
), numbered AS (
    SELECT src.*,
           CASE WHEN is_new
                THEN (SELECT coalesce(max(listener_no), -1) FROM users)
                     + row_number() OVER (PARTITION BY is_new ORDER BY user_id)
           END AS listener_no
    FROM src
), ins AS (
    INSERT INTO users AS u (user_id, first_name, last_name, gender, tier, last_event_ts, last_session_id, last_item,
                            listener_no)
    SELECT user_id, first_name, last_name, gender, tier, ts, session_id, item_in_session, listener_no FROM numbered
    ON CONFLICT (user_id) DO UPDATE
    SET first_name = excluded.first_name, last_name = excluded.last_name, gender = excluded.gender,
        tier = excluded.tier, last_event_ts = excluded.last_event_ts,
        last_session_id = excluded.last_session_id, last_item = excluded.last_item
    WHERE (excluded.last_event_ts, excluded.last_session_id, excluded.last_item)
        > (u.last_event_ts, u.last_session_id, u.last_item)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) FROM ins;

-- name: insert_plays
-- Rules 1 and 2: a play per NextSong event; a natural key seen before (in the database or earlier in this
-- run) is a duplicate and changes nothing. Within the run the earliest event of a key wins; of events at the same
-- instant, the one whose content sorts first (byte order, NULLs last), so that neither file names nor read order
-- choose (sql/spark/star.sql `facts` says the same). A first load into an empty table, its natural key
-- deferred, runs insert_plays_first instead (the sort of every staged play is about 3 of this one's 7 s on 1M plays).
INSERT INTO trackplays (start_time, user_id, tier, track_id, artist_id, session_id, item_in_session,
                        location, user_agent, name_id)
SELECT DISTINCT ON (p.user_id, p.session_id, p.item_in_session)
       TIMESTAMP '1970-01-01' + p.ts * INTERVAL '1 millisecond', p.user_id, p.tier, n.track_id, n.artist_id,
       p.session_id, p.item_in_session, p.location, p.user_agent, n.name_id
FROM stage_plays p
JOIN play_names n USING (artist_key, title_key, length_ms)
-- A plain NOT EXISTS, which the planner makes an anti-join: an index probe per staged play (an OR around it, as
-- before, kept it a subplan that hashed every stored key: a cost that grew with the table, not with the run; 1M
-- plays stored: 3.3 s → 2.8 s for one more day). With no plays before this run the lookup's condition is false
-- at planning, and the anti-join reads nothing.
WHERE NOT EXISTS (
    SELECT 1 FROM trackplays t
    WHERE %(after_play)s > 0
      AND t.user_id = p.user_id AND t.session_id = p.session_id AND t.item_in_session = p.item_in_session
)
ORDER BY p.user_id, p.session_id, p.item_in_session, p.ts, p.song_title COLLATE "C", p.artist_name COLLATE "C",
         p.length_ms, p.tier COLLATE "C", p.location COLLATE "C" NULLS LAST, p.user_agent COLLATE "C" NULLS LAST;


-- name: insert_plays_first
-- insert_plays on a first load (an empty fact table, its natural key deferred): the same plays from the same join,
-- without the DISTINCT ON and ORDER BY that pick each repeated key's winner and without the lookup of stored keys
-- (none are stored; its anti-join still ran once per staged play: 0.7 s of the step's 4.5 s at 1M). The key's
-- index, built at once after it (load/merge.py `_insert_plays`), shows that no key repeats; when one does, the
-- attempt is rolled back and insert_plays runs as written.
INSERT INTO trackplays (start_time, user_id, tier, track_id, artist_id, session_id, item_in_session,
                        location, user_agent, name_id)
SELECT TIMESTAMP '1970-01-01' + p.ts * INTERVAL '1 millisecond', p.user_id, p.tier, n.track_id, n.artist_id,
       p.session_id, p.item_in_session, p.location, p.user_agent, n.name_id
FROM stage_plays p
JOIN play_names n USING (artist_key, title_key, length_ms);

-- name: drop_unused_names
-- A name added by this run that only duplicates of known plays used.
DELETE FROM play_names n
WHERE n.name_id > %(after_name)s AND NOT EXISTS (SELECT 1 FROM trackplays p WHERE p.name_id = n.name_id);

-- name: insert_time
-- Rule 4: one row per distinct start time of the plays this run added, in UTC (date_part: a double, cheaper than
-- extract's numeric; the weekday's English name as to_char's 'FMDay' gives it, whatever the server's locale).
INSERT INTO timetb (start_time, hour, day, week, month, year, weekday)
SELECT start_time, date_part('hour', start_time), date_part('day', start_time), date_part('week', start_time),
       date_part('month', start_time), date_part('year', start_time),
       (ARRAY['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'])
           [date_part('dow', start_time)::int + 1]
FROM (SELECT DISTINCT start_time FROM trackplays WHERE trackplay_id > %(after_play)s) s
WHERE NOT EXISTS (SELECT 1 FROM timetb t WHERE t.start_time = s.start_time)
ORDER BY start_time;


-- name: insert_time_first
-- insert_time into a timetb that was empty when the run began (its key deferred: nothing else writes it in a
-- run): every distinct start time of the run's plays is new, so no lookup of stored times and no order; the key,
-- built after, checks that they are distinct.
INSERT INTO timetb (start_time, hour, day, week, month, year, weekday)
SELECT start_time, date_part('hour', start_time), date_part('day', start_time), date_part('week', start_time),
       date_part('month', start_time), date_part('year', start_time),
       (ARRAY['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'])
           [date_part('dow', start_time)::int + 1]
FROM (SELECT DISTINCT start_time FROM trackplays WHERE trackplay_id > %(after_play)s) s;

-- name: reresolve_plays
-- Rule 8: known plays move to the catalog track and artist a later song file gives them.
UPDATE trackplays p
SET track_id = r.track_id, artist_id = r.artist_id
FROM resolution r
WHERE p.name_id = r.name_id
  AND (r.old_track_id, r.old_artist_id) IS DISTINCT FROM (r.track_id, r.artist_id)
  AND p.trackplay_id <= %(after_play)s;

-- name: delete_orphan_tracks
-- Inferred tracks no name resolves to any more (names exist only while a play uses them).
DELETE FROM tracks t
WHERE t.is_inferred
  AND t.track_id IN (SELECT old_track_id FROM resolution UNION ALL SELECT track_id FROM resolution)
  AND NOT EXISTS (SELECT 1 FROM play_names n WHERE n.track_id = t.track_id);

-- name: delete_orphan_artists
DELETE FROM artists a
WHERE a.is_inferred
  AND a.artist_id IN (SELECT old_artist_id FROM resolution UNION ALL SELECT artist_id FROM resolution)
  AND NOT EXISTS (SELECT 1 FROM play_names n WHERE n.artist_id = a.artist_id)
  AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.artist_id = a.artist_id);

-- name: hand_over_days
-- The hand-over to the rollups (load/steps.py, Handover): the days this run added plays to (new_play) ...
CREATE TEMP TABLE touched_days ON COMMIT DROP AS
SELECT DISTINCT start_time::date AS day, TRUE AS new_play FROM trackplays WHERE trackplay_id > %(after_play)s;

-- name: hand_over_names
-- ... the known names rule 8 moved to another track or artist in this run ...
CREATE TEMP TABLE touched_names ON COMMIT DROP AS
SELECT name_id FROM resolution
WHERE name_id IS NOT NULL AND (old_track_id, old_artist_id) IS DISTINCT FROM (track_id, artist_id);

-- name: hand_over_moved_days
-- ... and the days of their known plays.
INSERT INTO touched_days (day, new_play)
SELECT DISTINCT p.start_time::date, FALSE
FROM touched_names t
JOIN trackplays p ON p.name_id = t.name_id
WHERE p.trackplay_id <= %(after_play)s;

-- name: refresh_mtimes
-- Files found unchanged by their digest: the manifest learns their time, so the next run need not read them.
UPDATE loaded_files f SET mtime_ns = m.mtime_ns FROM stage_mtimes m WHERE f.path = m.path;

-- name: replace_rejects
-- A file read again replaces its rejects: the table tells the state of each file as last read.
DELETE FROM rejects WHERE file IN (SELECT path FROM stage_files);

-- name: insert_rejects
INSERT INTO rejects (run_id, file, line, reason, raw)
SELECT %(run_id)s, file, line, reason, raw FROM stage_rejects ORDER BY file, line;

-- name: record_files
-- The manifest, written in the same transaction as the rows: a file is loaded exactly when it is listed. Each run's
-- files are kept as well (run_files: the manifest keeps a file's last read only).
WITH history AS (
    INSERT INTO run_files (run_id, path, kind, size_bytes, records, rejects)
    SELECT %(run_id)s, path, kind, size_bytes, records, rejects FROM stage_files
)
INSERT INTO loaded_files AS f (path, kind, size_bytes, sha256, records, rejects, run_id, mtime_ns)
SELECT path, kind, size_bytes, sha256, records, rejects, %(run_id)s, mtime_ns FROM stage_files
ON CONFLICT (path) DO UPDATE
SET kind = excluded.kind, size_bytes = excluded.size_bytes, sha256 = excluded.sha256,
    records = excluded.records, rejects = excluded.rejects, run_id = excluded.run_id, loaded_at = now(),
    mtime_ns = excluded.mtime_ns;

-- name: replace_repairs
-- A file read again replaces its repairs of names (rule 6), as it does its rejects.
DELETE FROM name_repairs_by_file WHERE file IN (SELECT path FROM stage_files);

-- name: insert_repairs
INSERT INTO name_repairs_by_file (file, original, repaired, line, count, run_id)
SELECT file, original, min(repaired), min(line), sum(count), %(run_id)s
FROM stage_repairs
GROUP BY file, original
ORDER BY file, original;
