-- Readers of rollup_sessions and rollup_hours (maintained by sql/rollups/maintain.sql).
--
-- Repeatable: `musicstream init` applies this file again whenever it changes (db/schema.py); it holds the one
-- current body of each function below.

-- The rollup rows of a period (days inclusive, UTC; NULL = open) on one tier (NULL = both); inlinable like
-- report_plays.
CREATE OR REPLACE FUNCTION report_sessions(p_since date, p_until date, p_tier text)
RETURNS SETOF rollup_sessions
LANGUAGE sql STABLE
AS $$
    SELECT * FROM rollup_sessions
    WHERE day >= coalesce(p_since, '-infinity'::date)
      AND day <= coalesce(p_until, 'infinity'::date)
      AND (p_tier IS NULL OR tier = p_tier)
$$;

CREATE OR REPLACE FUNCTION report_hours(p_since date, p_until date, p_tier text)
RETURNS SETOF rollup_hours
LANGUAGE sql STABLE
AS $$
    SELECT * FROM rollup_hours
    WHERE day >= coalesce(p_since, '-infinity'::date)
      AND day <= coalesce(p_until, 'infinity'::date)
      AND (p_tier IS NULL OR tier = p_tier)
$$;
