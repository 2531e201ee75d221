-- Support for `musicstream report` and the curated queries: the plays of a period as one inlinable function,
-- and the indexes that period filters and per-artist questions use.

CREATE INDEX IF NOT EXISTS trackplays_start_time_idx ON trackplays (start_time);
CREATE INDEX IF NOT EXISTS trackplays_artist_idx ON trackplays (artist_id);

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
