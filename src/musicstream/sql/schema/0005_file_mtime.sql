-- Each loaded file's modification time (ns since the epoch), beside its size and SHA-256: a file whose size and
-- modification time are the manifest's is unchanged without being read again (the rsync and make heuristic).
-- NULL where it is not known (object storage) or was too recent to trust: such files are hashed.
ALTER TABLE loaded_files ADD COLUMN IF NOT EXISTS mtime_ns BIGINT;
