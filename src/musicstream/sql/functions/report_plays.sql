-- The plays of a period, for the report and the curated queries.
--
-- Repeatable: `musicstream init` applies this file again whenever it changes (db/schema.py); it holds the one
-- current body of each function below.

-- The plays between two dates (inclusive, UTC; NULL = open) on one tier (NULL = both). A single-SELECT SQL
-- function: the planner inlines it, so filters reach the indexes.
CREATE OR REPLACE FUNCTION report_plays(p_since date, p_until date, p_tier text)
RETURNS SETOF trackplays
LANGUAGE sql STABLE
AS $$
    SELECT * FROM trackplays
    WHERE start_time >= coalesce(p_since, '-infinity'::date)
      AND start_time < coalesce(p_until + 1, 'infinity'::date)
      AND (p_tier IS NULL OR tier = p_tier)
$$;
