-- The Spark engine's staging: unlogged tables in a schema of the run's own ({schema}), which executors fill
-- with COPY in transactions of their own. Columns as in load/staging.sql, plus the partition that wrote the
-- row (a retried task replaces its partition's rows). The load's one transaction merges from here, then drops
-- the schema; the next run drops the schema a killed run left.

CREATE SCHEMA {schema};

CREATE UNLOGGED TABLE {schema}.stage_songs (
    track_id TEXT COLLATE "C", title TEXT, artist_id TEXT COLLATE "C", artist_name TEXT, year INT,
    duration NUMERIC, location TEXT, latitude NUMERIC, longitude NUMERIC,
    title_key TEXT COLLATE "C", artist_key TEXT COLLATE "C",
    part INT DEFAULT current_setting('musicstream.part', true)::int
);

CREATE UNLOGGED TABLE {schema}.stage_plays (
    user_id INT, session_id INT, item_in_session INT, ts BIGINT, tier TEXT, location TEXT, user_agent TEXT,
    song_title TEXT, artist_name TEXT, length_ms INT, title_key TEXT COLLATE "C", artist_key TEXT COLLATE "C",
    part INT DEFAULT current_setting('musicstream.part', true)::int
);

CREATE UNLOGGED TABLE {schema}.stage_users (
    ts BIGINT, session_id INT, item_in_session INT, user_id INT,
    first_name TEXT, last_name TEXT, gender TEXT, tier TEXT,
    part INT DEFAULT current_setting('musicstream.part', true)::int
);

CREATE UNLOGGED TABLE {schema}.stage_rejects (
    file TEXT, line BIGINT, reason TEXT, raw TEXT,
    part INT DEFAULT current_setting('musicstream.part', true)::int
);

CREATE UNLOGGED TABLE {schema}.stage_files (
    path TEXT, kind TEXT, size_bytes BIGINT, sha256 TEXT, records BIGINT, rejects BIGINT, mtime_ns BIGINT
);

-- Unchanged files whose modification time the manifest learns (the local engine's quick check; empty here).
CREATE UNLOGGED TABLE {schema}.stage_mtimes (path TEXT, mtime_ns BIGINT);

-- The partitions whose rows are committed, per job: a retried task deletes its earlier rows only when listed.
CREATE UNLOGGED TABLE {schema}.stage_done (job INT, part INT, PRIMARY KEY (job, part));
