-- A run stopped by the user (Ctrl-C) has its own status: `status` and the etl_runs table tell it from a failure.
ALTER TABLE etl_runs DROP CONSTRAINT IF EXISTS etl_runs_status_check;
ALTER TABLE etl_runs ADD CONSTRAINT etl_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned', 'interrupted'));
