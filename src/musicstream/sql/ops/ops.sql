-- The operator commands' reads and writes (musicstream runs, rejects, forget). Values are parameters.

-- name: runs
SELECT run_id, started_at, finished_at, status, engine, full_reload, files_read, files_skipped, records_read,
       records_loaded, records_skipped, duplicates, rejects,
       round(extract(epoch FROM finished_at - started_at)::numeric, 1) AS seconds, error
FROM etl_runs
ORDER BY run_id DESC
LIMIT %(limit)s;

-- name: run
SELECT run_id, started_at, finished_at, status, engine, full_reload, files_read, files_skipped, records_read,
       records_loaded, records_skipped, duplicates, rejects, rows_added,
       round(extract(epoch FROM finished_at - started_at)::numeric, 1) AS seconds, error
FROM etl_runs
WHERE run_id = %(run_id)s;

-- name: run_files
-- The files this run read (also those a later run read again).
SELECT path, kind, size_bytes, records, rejects
FROM run_files
WHERE run_id = %(run_id)s
ORDER BY path;

-- name: run_reasons
SELECT reason, count(*) AS records,
       (array_agg(file || CASE WHEN line > 0 THEN ':' || line ELSE '' END ORDER BY file, line))[1] AS example
FROM rejects
WHERE run_id = %(run_id)s
GROUP BY reason
ORDER BY 2 DESC, 1;

-- name: rejects
SELECT run_id, file, line, reason, raw
FROM rejects
WHERE (%(run_id)s::bigint IS NULL OR run_id = %(run_id)s::bigint)
  AND (%(reason)s::text IS NULL OR reason ILIKE '%%' || %(reason)s::text || '%%')
ORDER BY run_id DESC, file, line
LIMIT %(limit)s;

-- name: forget
-- Files leave the manifest (so that the next load reads them again): each path given, or every file under it.
DELETE FROM loaded_files
WHERE path = ANY(%(paths)s::text[])
   OR EXISTS (SELECT 1 FROM unnest(%(paths)s::text[]) p WHERE starts_with(path, rtrim(p, '/') || '/'))
RETURNING path;
