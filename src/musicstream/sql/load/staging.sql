-- Staging tables for one load run: temporary (unlogged, private to the run's session), dropped at commit.

CREATE TEMP TABLE stage_songs (
    track_id TEXT COLLATE "C", title TEXT, artist_id TEXT COLLATE "C", artist_name TEXT, year INT,
    duration NUMERIC, location TEXT, latitude NUMERIC, longitude NUMERIC,
    title_key TEXT COLLATE "C", artist_key TEXT COLLATE "C"
) ON COMMIT DROP;

CREATE TEMP TABLE stage_plays (
    user_id INT, session_id INT, item_in_session INT, ts BIGINT, tier TEXT, location TEXT, user_agent TEXT,
    song_title TEXT, artist_name TEXT, length_ms INT, title_key TEXT COLLATE "C", artist_key TEXT COLLATE "C"
) ON COMMIT DROP;

CREATE TEMP TABLE stage_users (
    ts BIGINT, session_id INT, item_in_session INT, user_id INT,
    first_name TEXT, last_name TEXT, gender TEXT, tier TEXT
) ON COMMIT DROP;

CREATE TEMP TABLE stage_rejects (file TEXT, line BIGINT, reason TEXT, raw TEXT) ON COMMIT DROP;

CREATE TEMP TABLE stage_mtimes (path TEXT, mtime_ns BIGINT) ON COMMIT DROP;

CREATE TEMP TABLE stage_files (
    path TEXT, kind TEXT, size_bytes BIGINT, sha256 TEXT, records BIGINT, rejects BIGINT, mtime_ns BIGINT
) ON COMMIT DROP;

-- Rule 6's repairs of names, per file read: (file, original, repaired, first line, count); a big file's slices
-- each give their own rows, which the merge adds up.
CREATE TEMP TABLE stage_repairs (file TEXT, original TEXT, repaired TEXT, line BIGINT, count BIGINT) ON COMMIT DROP;
