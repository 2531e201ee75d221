-- The Spark engine's staging: unlogged tables in a schema of the run's own ({schema}), which executors fill
-- with COPY in transactions of their own. Their columns are those of load/staging.sql (the one definition,
-- created just before as temporary tables and copied here with LIKE), plus the partition that wrote the row
-- (a retried task replaces its partition's rows). The load's one transaction merges from here, then drops the
-- schema; the next run drops the schema a killed run left.

CREATE SCHEMA {schema};

CREATE UNLOGGED TABLE {schema}.stage_songs (
    LIKE pg_temp.stage_songs, part INT DEFAULT current_setting('musicstream.part', true)::int
);

CREATE UNLOGGED TABLE {schema}.stage_plays (
    LIKE pg_temp.stage_plays, part INT DEFAULT current_setting('musicstream.part', true)::int
);

CREATE UNLOGGED TABLE {schema}.stage_users (
    LIKE pg_temp.stage_users, part INT DEFAULT current_setting('musicstream.part', true)::int
);

CREATE UNLOGGED TABLE {schema}.stage_rejects (
    LIKE pg_temp.stage_rejects, part INT DEFAULT current_setting('musicstream.part', true)::int
);

CREATE UNLOGGED TABLE {schema}.stage_files (LIKE pg_temp.stage_files);

-- Unchanged files whose modification time the manifest learns (the local engine's quick check; empty here).
CREATE UNLOGGED TABLE {schema}.stage_mtimes (LIKE pg_temp.stage_mtimes);

-- The partitions whose rows are committed, per job: a retried task deletes its earlier rows only when listed.
CREATE UNLOGGED TABLE {schema}.stage_done (job INT, part INT, PRIMARY KEY (job, part));

CREATE UNLOGGED TABLE {schema}.stage_repairs (
    LIKE pg_temp.stage_repairs, part INT DEFAULT current_setting('musicstream.part', true)::int
);
