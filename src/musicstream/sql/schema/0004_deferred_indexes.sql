-- Secondary indexes that a bulk load dropped from an empty table and builds again when it commits (db/bulk.py).
-- Kept in a table, so that a load that dies before its commit leaves the definitions for the next load.
CREATE TABLE IF NOT EXISTS deferred_indexes (
    index_name TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
