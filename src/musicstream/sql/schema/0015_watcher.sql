-- The watcher (`musicstream watch`): what `status` shows of it. One row per database, as one watcher runs at a time
-- (it holds an advisory lock for its whole life; the lock, not this row, says whether it runs). It writes the row
-- when it starts, after each batch and now and then while it waits; each batch's rows are the run's own (etl_runs).
CREATE TABLE IF NOT EXISTS watcher (
    one            BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    pid            INT NOT NULL,
    host           TEXT NOT NULL,
    backend_pid    INT,
    paths          TEXT[] NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    seen_at        TIMESTAMPTZ NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('watching', 'loading', 'stopped')),
    files_waiting  INT NOT NULL DEFAULT 0,
    bytes_waiting  BIGINT NOT NULL DEFAULT 0,
    oldest_waiting TIMESTAMPTZ,
    last_run_id    BIGINT,
    last_batch_at  TIMESTAMPTZ,
    last_batch_files INT,
    last_batch_lag REAL,
    batches        BIGINT NOT NULL DEFAULT 0,
    stopped_at     TIMESTAMPTZ
);
