-- The local engine's quick check against the manifest: the run's file listing, COPYed in, compared in one join
-- (a million listed files cost a temporary table, not a million-entry dictionary in the loader).

-- name: create_listing
CREATE TEMP TABLE stage_listing (ord INT, path TEXT, size_bytes BIGINT, mtime_ns BIGINT) ON COMMIT DROP;

-- name: known_files
-- Listed files the manifest holds with the same size: unchanged when the modification time is the same too (the
-- quick check), else to be hashed and compared with the manifest's SHA-256.
SELECT l.ord, f.sha256, coalesce(f.mtime_ns = l.mtime_ns, false) AS same_time
FROM stage_listing l
JOIN loaded_files f ON f.path = l.path AND f.size_bytes = l.size_bytes
ORDER BY l.ord;
