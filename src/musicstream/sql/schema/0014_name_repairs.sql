-- Rule 6's repairs of names, the original kept: per file, each damaged spelling read, what it was repaired to, the
-- first line it was on and how many times it was read. A file read again replaces its rows, as it does its
-- rejects. A repair of names a database already held (`musicstream repair-names`) has no file.
CREATE TABLE IF NOT EXISTS name_repairs_by_file (
    file     TEXT,
    original TEXT NOT NULL,
    repaired TEXT NOT NULL,
    line     BIGINT NOT NULL,
    count    BIGINT NOT NULL,
    run_id   BIGINT REFERENCES etl_runs (run_id)
);
CREATE INDEX IF NOT EXISTS name_repairs_by_file_file_idx ON name_repairs_by_file (file);

-- One row per damaged spelling: what it became, the file and line where it is first seen (in path order, the order
-- files are read in), and how many times it was read in all.
CREATE OR REPLACE VIEW name_repairs AS
SELECT original, min(repaired) AS repaired,
       (array_agg(file ORDER BY file COLLATE "C" NULLS LAST, line))[1] AS first_file,
       (array_agg(line ORDER BY file COLLATE "C" NULLS LAST, line))[1] AS first_line,
       sum(count)::bigint AS count
FROM name_repairs_by_file
GROUP BY original;
