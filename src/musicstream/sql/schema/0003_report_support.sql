-- Support for `musicstream report` and the curated queries: the plays of a period as one inlinable function,
-- and the indexes that period filters and per-artist questions use.

CREATE INDEX IF NOT EXISTS trackplays_start_time_idx ON trackplays (start_time);
CREATE INDEX IF NOT EXISTS trackplays_artist_idx ON trackplays (artist_id);
