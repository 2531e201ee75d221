-- Repairing the names a database already holds (rule 6; `musicstream repair-names`, load/repair.py): the repairs
-- (name_fixes: original, repaired, and the repaired name's key) are computed in Python by the rule's one definition
-- and copied in; these statements apply them, in the load's lock and one transaction, then the merge's own
-- statements resolve the affected names again, as a late catalog file does (rule 8).

-- name: create_fixes
CREATE TEMP TABLE name_fixes (
    original TEXT COLLATE "C" PRIMARY KEY, repaired TEXT COLLATE "C", repaired_key TEXT COLLATE "C",
    original_key TEXT COLLATE "C"
) ON COMMIT DROP;

-- name: record_repairs
-- The repairs, kept with the originals: no file (they were stored names), line 0, and how many stored rows held each
-- (plays naming it, catalog tracks and artists).
INSERT INTO name_repairs_by_file (file, original, repaired, line, count)
SELECT NULL, f.original, f.repaired, 0,
       (SELECT count(*) FROM trackplays p JOIN play_names n USING (name_id)
         WHERE n.song_title = f.original OR n.artist_name = f.original)
       + (SELECT count(*) FROM tracks t WHERE NOT t.is_inferred AND t.title = f.original)
       + (SELECT count(*) FROM artists a WHERE NOT a.is_inferred AND a.name = f.original)
FROM name_fixes f
ORDER BY f.original;

-- name: touched_artist_keys
-- The artist keys whose names are resolved again: the keys a repaired catalog track had and has, and those of the
-- play names repaired (filled by the statements below).
CREATE TEMP TABLE touched_artist_keys (artist_key TEXT COLLATE "C") ON COMMIT DROP;

-- name: repair_tracks
-- Catalog tracks: the title and its key, and the artist key, repaired (rule 6 reads a song file's title and artist
-- name; the track keeps the key of the name its song file gave).
WITH fixed AS (
    SELECT t.track_id, t.artist_key AS old_artist_key,
           coalesce(ft.repaired, t.title) AS title, coalesce(ft.repaired_key, t.title_key) AS title_key,
           coalesce(fa.repaired_key, t.artist_key) AS artist_key
    FROM tracks t
    LEFT JOIN name_fixes ft ON ft.original = t.title
    LEFT JOIN (SELECT original_key, min(repaired_key) AS repaired_key FROM name_fixes GROUP BY 1) fa
      ON fa.original_key = t.artist_key
    WHERE NOT t.is_inferred AND (ft.original IS NOT NULL OR fa.original_key IS NOT NULL)
), touched AS (
    INSERT INTO touched_artist_keys SELECT old_artist_key FROM fixed UNION SELECT artist_key FROM fixed
)
UPDATE tracks t SET title = f.title, title_key = f.title_key, artist_key = f.artist_key
FROM fixed f
WHERE t.track_id = f.track_id;

-- name: repair_artists
UPDATE artists a SET name = f.repaired
FROM name_fixes f
WHERE NOT a.is_inferred AND a.name = f.original;

-- name: renamed_names
-- The play names with a repaired title or artist, their new spelling and keys, and the name each is kept as: a
-- name that already had those keys, else the smallest of the repaired names that now share them.
CREATE TEMP TABLE renamed_names ON COMMIT DROP AS
WITH r AS (
    SELECT n.name_id, n.length_ms, n.track_id AS old_track_id, n.artist_id AS old_artist_id,
           coalesce(ft.repaired, n.song_title) AS song_title, coalesce(fa.repaired, n.artist_name) AS artist_name,
           coalesce(ft.repaired_key, n.title_key) AS title_key, coalesce(fa.repaired_key, n.artist_key) AS artist_key
    FROM play_names n
    LEFT JOIN name_fixes ft ON ft.original = n.song_title
    LEFT JOIN name_fixes fa ON fa.original = n.artist_name
    WHERE ft.original IS NOT NULL OR fa.original IS NOT NULL
)
SELECT r.*, coalesce(
           (SELECT k.name_id FROM play_names k
             WHERE k.title_key = r.title_key AND k.artist_key = r.artist_key AND k.length_ms = r.length_ms
               AND k.name_id NOT IN (SELECT name_id FROM r)),
           min(r.name_id) OVER (PARTITION BY r.title_key, r.artist_key, r.length_ms)) AS keep_id
FROM r;

-- name: move_plays_to_kept_names
UPDATE trackplays p SET name_id = r.keep_id
FROM renamed_names r
WHERE p.name_id = r.name_id AND r.keep_id <> r.name_id;

-- name: drop_merged_names
DELETE FROM play_names n USING renamed_names r WHERE n.name_id = r.name_id AND r.keep_id <> r.name_id;

-- name: repair_play_names
-- The kept names take the repaired keys and the smallest spelling (rule 7's spelling); their artist keys are
-- resolved again.
WITH kept AS (
    SELECT keep_id, min(title_key) AS title_key, min(artist_key) AS artist_key,
           min(song_title COLLATE "C") AS song_title, min(artist_name COLLATE "C") AS artist_name
    FROM renamed_names
    GROUP BY keep_id
), touched AS (
    INSERT INTO touched_artist_keys SELECT artist_key FROM kept
)
UPDATE play_names n
SET title_key = k.title_key, artist_key = k.artist_key,
    song_title = CASE WHEN n.name_id IN (SELECT name_id FROM renamed_names) THEN k.song_title
                      ELSE least(n.song_title, k.song_title COLLATE "C") END,
    artist_name = CASE WHEN n.name_id IN (SELECT name_id FROM renamed_names) THEN k.artist_name
                       ELSE least(n.artist_name, k.artist_name COLLATE "C") END
FROM kept k
WHERE n.name_id = k.keep_id;

-- name: plays_follow_names
-- Rule 8, as reresolve_plays: the plays of every name resolved again (and those just moved to a kept name) take
-- their name's track and artist.
UPDATE trackplays p SET track_id = n.track_id, artist_id = n.artist_id
FROM play_names n
WHERE p.name_id = n.name_id
  AND (n.name_id IN (SELECT name_id FROM resolution) OR n.name_id IN (SELECT keep_id FROM renamed_names))
  AND (p.track_id, p.artist_id) IS DISTINCT FROM (n.track_id, n.artist_id);

-- name: delete_merged_orphans
-- The inferred rows that only names merged into another used (the merge's delete_orphan_* see the names resolved).
WITH tracks_gone AS (
    DELETE FROM tracks t
    WHERE t.is_inferred AND t.track_id IN (SELECT old_track_id FROM renamed_names)
      AND NOT EXISTS (SELECT 1 FROM play_names n WHERE n.track_id = t.track_id)
    RETURNING t.track_id
)
DELETE FROM artists a
WHERE a.is_inferred AND a.artist_id IN (SELECT old_artist_id FROM renamed_names)
  AND NOT EXISTS (SELECT 1 FROM play_names n WHERE n.artist_id = a.artist_id)
  AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.artist_id = a.artist_id
                   AND t.track_id NOT IN (SELECT track_id FROM tracks_gone));

-- name: hand_over_names
-- The hand-over to the rollups (load/steps.py, Handover; no play is new): the names resolved again and those that
-- plays moved to ...
CREATE TEMP TABLE touched_names ON COMMIT DROP AS
SELECT name_id FROM resolution WHERE name_id IS NOT NULL
UNION
SELECT keep_id FROM renamed_names;

-- name: hand_over_days
-- ... and the days of their plays.
CREATE TEMP TABLE touched_days ON COMMIT DROP AS
SELECT DISTINCT p.start_time::date AS day, FALSE AS new_play
FROM touched_names t
JOIN trackplays p ON p.name_id = t.name_id;
