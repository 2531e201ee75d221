-- Spark SQL: the star schema of docs/rules.md computed from one run's parsed rows, for the Parquet output.
-- Each statement mirrors a step of load/merge.sql on an empty database, so the tables come out equal to a fresh
-- PostgreSQL load. Strings compare in byte order (Spark's default, like the "C" collation); PostgreSQL sorts
-- NULLs last, so orderings say so. Input views: plays, songs (their names read repaired by rule 6), latest_users
-- (rule 3: each user's latest event, reduced by engines/lake.py with the local engine's own rule,
-- transform/records.py `latest_of`), and repairs (rule 6's repairs, per file).

-- name: catalog_tracks
-- Rule 5: one record per song id, the one that sorts first by (title, artist_id, duration, year, artist key).
CREATE OR REPLACE TEMP VIEW catalog_tracks AS
SELECT track_id, title, artist_id, year, duration, duration_num, title_key, artist_key
FROM (
    SELECT *, row_number() OVER (
        PARTITION BY track_id
        ORDER BY title, artist_id, duration ASC NULLS LAST, year ASC NULLS LAST, artist_key, path, line) AS pick
    FROM songs
) WHERE pick = 1;

-- name: catalog_artists
-- Rule 5: an artist named by several songs takes the details of the song with the smallest song id; records of
-- the same song id, the details that sort first (name, location, latitude, longitude; NULLs last).
CREATE OR REPLACE TEMP VIEW catalog_artists AS
SELECT artist_id, artist_name AS name, location, latitude, longitude, FALSE AS is_inferred,
       track_id AS source_track_id
FROM (
    SELECT *, row_number() OVER (
        PARTITION BY artist_id
        ORDER BY track_id, artist_name, location ASC NULLS LAST, latitude ASC NULLS LAST, longitude ASC NULLS LAST,
                 path, line) AS pick
    FROM songs
) WHERE pick = 1;

-- name: names
-- The (title, artist, length) the plays name; a name's spelling is the smallest seen.
CREATE OR REPLACE TEMP VIEW names AS
SELECT title_key, artist_key, length_ms, min(song_title) AS song_title, min(artist_name) AS artist_name
FROM plays
GROUP BY title_key, artist_key, length_ms;

-- name: resolution
-- Rules 6 and 7: catalog track by normalised title + artist within the tolerance (closest, then smallest id), computed
-- in decimals like PostgreSQL's numeric; else the catalog artist by normalised name (smallest id) or an inferred
-- artist; inferred track per (title, resolved artist, length in ms). Ids: a prefix + md5 of the key. The
-- constants ({{...}}) come from musicstream/rules.py.
CREATE OR REPLACE TEMP VIEW resolution AS
WITH track_match AS (
    SELECT title_key, artist_key, length_ms, track_id AS catalog_track_id, artist_id AS catalog_artist_id
    FROM (
        SELECT n.title_key, n.artist_key, n.length_ms, t.track_id, t.artist_id,
               row_number() OVER (
                   PARTITION BY n.title_key, n.artist_key, n.length_ms
                   ORDER BY abs(t.duration_num * 1000 - n.length_ms), t.track_id) AS pick
        FROM names n
        JOIN catalog_tracks t
          ON t.artist_key = n.artist_key AND t.title_key = n.title_key
         AND abs(t.duration_num * 1000 - n.length_ms) <= {{match_tolerance_ms}}
    ) WHERE pick = 1
), artist_match AS (
    SELECT artist_key, min(artist_id) AS named_artist_id FROM catalog_tracks GROUP BY artist_key
), resolved AS (
    SELECT n.title_key, n.artist_key, n.length_ms, n.song_title, n.artist_name, tm.catalog_track_id,
           coalesce(tm.catalog_artist_id, am.named_artist_id, concat({{inferred_artist_prefix}}, left(md5(n.artist_key), {{inferred_id_hex}})))
               AS artist_id,
           (tm.catalog_artist_id IS NULL AND am.named_artist_id IS NULL) AS artist_inferred
    FROM names n
    LEFT JOIN track_match tm
      ON tm.title_key = n.title_key AND tm.artist_key = n.artist_key AND tm.length_ms = n.length_ms
    LEFT JOIN artist_match am ON am.artist_key = n.artist_key
)
SELECT title_key, artist_key, length_ms, song_title, artist_name, artist_id, artist_inferred,
       coalesce(catalog_track_id,
                concat({{inferred_track_prefix}}, left(md5(concat(title_key, char({{key_separator_code}}), artist_id,
                    char({{key_separator_code}}), CAST(length_ms AS STRING))), {{inferred_id_hex}})))
           AS track_id,
       catalog_track_id IS NULL AS track_inferred
FROM resolved;

-- name: facts
-- Rules 1 and 2: one play per natural key, the earliest event winning (of events at the same instant, the one whose
-- content sorts first, as load/merge.sql's insert_plays), with what its name resolves to.
CREATE OR REPLACE TEMP VIEW facts AS
SELECT CAST(timestamp_millis(p.ts) AS TIMESTAMP_NTZ) AS start_time, p.user_id, p.tier, r.track_id, r.artist_id,
       p.session_id, p.item_in_session, p.location, p.user_agent,
       r.song_title, r.artist_name, p.length_ms
FROM (
    SELECT *, row_number() OVER (
        PARTITION BY user_id, session_id, item_in_session
        ORDER BY ts, song_title, artist_name, length_ms, tier, location ASC NULLS LAST, user_agent ASC NULLS LAST
    ) AS pick
    FROM plays
) p
JOIN resolution r ON r.title_key = p.title_key AND r.artist_key = p.artist_key AND r.length_ms = p.length_ms
WHERE p.pick = 1;

-- name: trackplays
CREATE OR REPLACE TEMP VIEW trackplays AS
SELECT *, year(start_time) AS year, month(start_time) AS month FROM facts;

-- name: tracks
-- Catalog tracks, and the inferred tracks that kept plays use (rule 7; orphans of duplicates go, as in merge.sql).
CREATE OR REPLACE TEMP VIEW tracks AS
SELECT track_id, title, artist_id, year, duration, FALSE AS is_inferred, title_key, artist_key FROM catalog_tracks
UNION ALL
SELECT track_id, min(song_title), min(artist_id), CAST(NULL AS INT), CAST(min(length_ms) AS DOUBLE) / 1000, TRUE,
       min(title_key), min(artist_key)
FROM resolution
WHERE track_inferred AND track_id IN (SELECT track_id FROM facts)
GROUP BY track_id;

-- name: artists
CREATE OR REPLACE TEMP VIEW artists AS
SELECT artist_id, name, location, latitude, longitude, is_inferred, source_track_id FROM catalog_artists
UNION ALL
SELECT artist_id, min(artist_name), CAST(NULL AS STRING), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), TRUE,
       CAST(NULL AS STRING)
FROM resolution
WHERE artist_inferred AND artist_id IN (SELECT artist_id FROM facts)
GROUP BY artist_id;

-- name: users
CREATE OR REPLACE TEMP VIEW users AS
SELECT user_id, first_name, last_name, gender, tier, ts AS last_event_ts, session_id AS last_session_id,
       item_in_session AS last_item
FROM latest_users;

-- name: timetb
-- Rule 4: one row per distinct play start time, in UTC; ISO week; English weekday name.
CREATE OR REPLACE TEMP VIEW timetb AS
SELECT start_time, hour(start_time) AS hour, day(start_time) AS day, weekofyear(start_time) AS week,
       month(start_time) AS month, year(start_time) AS year, date_format(start_time, 'EEEE') AS weekday
FROM (SELECT DISTINCT start_time FROM facts);

-- name: name_repairs
-- Rule 6's repairs of names, as the database's name_repairs view gives them: per damaged spelling, what it became,
-- the file and line where it is first seen (in path order) and how many times it was read.
CREATE OR REPLACE TEMP VIEW name_repairs AS
SELECT original, min(repaired) AS repaired, min(struct(path, line)).path AS first_file,
       min(struct(path, line)).line AS first_line, sum(records) AS count
FROM repairs
GROUP BY original;
