-- Every file each run read. The manifest (loaded_files) keeps a file's last read only, so a run whose files a later
-- run read again (--full, or a changed file) had none left to show; `musicstream runs show N` reads this table.
CREATE TABLE IF NOT EXISTS run_files (
    run_id     BIGINT NOT NULL REFERENCES etl_runs (run_id),
    path       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('song', 'log')),
    size_bytes BIGINT NOT NULL,
    records    BIGINT NOT NULL,
    rejects    BIGINT NOT NULL,
    PRIMARY KEY (run_id, path)
);

-- The runs before this table: what the manifest still holds of them.
INSERT INTO run_files (run_id, path, kind, size_bytes, records, rejects)
SELECT run_id, path, kind, size_bytes, records, rejects FROM loaded_files
ON CONFLICT DO NOTHING;

-- Which process runs a load (its process id on the loader's machine) and its session (the server's backend): a
-- load that waits for the lock says whom it waits for.
ALTER TABLE etl_runs ADD COLUMN IF NOT EXISTS pid INT;
ALTER TABLE etl_runs ADD COLUMN IF NOT EXISTS backend_pid INT;
