-- Top tracks and artists of any period without reading every play of it (docs/SCHEMA.md, "Top lists").
--
-- Per UTC day and tier, the load keeps the K most played tracks and artists (rollup_day_tops: their plays, their
-- distinct listeners that day, and who those listeners are) and, per list, the plays of the best key it left out
-- (rollup_day_floors.plays: no key outside the list had more that day). The load recomputes the lists of every
-- day it adds plays to or moves plays in (rule 8), from that day's plays, in its own transaction.
--
-- report_top() answers "the N best keys of a period" from these lists with a threshold algorithm: a key's plays
-- in the period are at most the plays the lists show plus the floors of the lists it is missing from; keys are
-- taken in order of that bound and counted exactly (from the lists' listeners when the key is in every list
-- that matters, else from its own plays) until the N-th best counted beats every bound left. The answer is
-- exact; when the lists cannot decide (a very long top list, a flat day), it falls back to reading the plays.

-- A key's plays on given days, read by index (report_top counts a key missing from some lists on those days
-- only). The same names as before, now with the start time: they still serve the foreign keys and rule 8.
DROP INDEX IF EXISTS trackplays_track_idx;
CREATE INDEX trackplays_track_idx ON trackplays (track_id, start_time);
DROP INDEX IF EXISTS trackplays_artist_idx;
CREATE INDEX trackplays_artist_idx ON trackplays (artist_id, start_time);

CREATE TABLE IF NOT EXISTS rollup_day_tops (
    day       DATE NOT NULL,
    tier      TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('track', 'artist')),
    key       TEXT COLLATE "C" NOT NULL,
    plays     INT NOT NULL,
    listeners INT NOT NULL,
    users     INT[] NOT NULL,
    PRIMARY KEY (day, tier, kind, key)
);
CREATE INDEX IF NOT EXISTS rollup_day_tops_key ON rollup_day_tops (kind, key);

CREATE TABLE IF NOT EXISTS rollup_day_floors (
    day   DATE NOT NULL,
    tier  TEXT NOT NULL,
    kind  TEXT NOT NULL,
    plays INT NOT NULL,  -- the most plays of a key not in the day's list (0: the list holds every key)
    PRIMARY KEY (day, tier, kind)
);

-- The lists of some days, computed from their plays (the load calls it with the days it touched; the migration
-- with every day): plays counted per key, the day_tops_kept() best by plays (ties by key) kept with their listeners.
-- Two passes over the days' plays (counts, then the listeners of the keys kept), both hash joins and aggregates.
CREATE OR REPLACE FUNCTION day_tops_kept() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 500';

CREATE OR REPLACE FUNCTION refresh_day_tops(p_days date[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    p_keep int := day_tops_kept();
    lo timestamp := (SELECT min(d) FROM unnest(p_days) d);
    hi timestamp := (SELECT max(d) + 1 FROM unnest(p_days) d);
BEGIN
    DELETE FROM rollup_day_tops WHERE day = ANY(p_days);
    DELETE FROM rollup_day_floors WHERE day = ANY(p_days);
    IF lo IS NULL THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE day_ranked ON COMMIT DROP AS
    SELECT day, tier, kind, key, plays,
           row_number() OVER (PARTITION BY day, tier, kind ORDER BY plays DESC, key) AS rank
    FROM (
        SELECT p.start_time::date AS day, p.tier COLLATE "C" AS tier, k.kind, k.key, count(*) AS plays
        FROM trackplays p
        CROSS JOIN LATERAL (VALUES ('track', p.track_id), ('artist', p.artist_id)) k(kind, key)
        WHERE p.start_time >= lo AND p.start_time < hi AND p.start_time::date = ANY(p_days)
        GROUP BY 1, 2, 3, 4
    ) c;
    INSERT INTO rollup_day_floors (day, tier, kind, plays)
    SELECT day, tier, kind, coalesce(max(plays) FILTER (WHERE rank > p_keep), 0)
    FROM day_ranked
    GROUP BY 1, 2, 3;
    DELETE FROM day_ranked WHERE rank > p_keep;
    ANALYZE day_ranked;
    INSERT INTO rollup_day_tops (day, tier, kind, key, plays, listeners, users)
    SELECT r.day, r.tier, r.kind, r.key, min(r.plays), count(DISTINCT e.user_id),
           array_agg(DISTINCT e.user_id ORDER BY e.user_id)
    FROM (
        SELECT p.start_time::date AS day, p.tier COLLATE "C" AS tier, k.kind, k.key, p.user_id
        FROM trackplays p
        CROSS JOIN LATERAL (VALUES ('track', p.track_id), ('artist', p.artist_id)) k(kind, key)
        WHERE p.start_time >= lo AND p.start_time < hi AND p.start_time::date = ANY(p_days)
    ) e
    JOIN day_ranked r USING (day, tier, kind, key)
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4;
    DROP TABLE day_ranked;
END
$$;

-- The N best tracks or artists (p_kind) of a period (days inclusive, NULL = open) on one tier (NULL = both), by
-- plays (p_by 'plays': plays, then listeners, then key) or by distinct listeners ('listeners': listeners, then
-- plays, then key). Exact: see the head of this file.
CREATE OR REPLACE FUNCTION report_top(p_kind text, p_since date, p_until date, p_tier text, p_n int, p_by text)
RETURNS TABLE (key text, plays bigint, listeners bigint)
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    lo date := coalesce(p_since, '-infinity'::date);
    hi date := coalesce(p_until, 'infinity'::date);
    by_plays boolean := p_by = 'plays';
    unseen bigint;  -- the most plays a key in none of the period's lists can have: the sum of their floors
    cand record;
    keys text[] := '{}';
    counted_plays bigint[] := '{}';
    counted_listeners bigint[] := '{}';
    nth bigint;     -- the ranking's first value of the N-th best key counted so far
    n_plays bigint;
    n_listeners bigint;
    from_plays int := 0;  -- keys missing from some lists, counted there from their plays
    extra int[];          -- the listeners of those plays
BEGIN
    IF p_n < 1 THEN
        RETURN;
    END IF;
    SELECT coalesce(sum(f.plays), 0) INTO unseen
    FROM rollup_day_floors f
    WHERE f.kind = p_kind AND f.day BETWEEN lo AND hi AND (p_tier IS NULL OR f.tier = p_tier);
    FOR cand IN
        -- bound: the most a key can have in the period, on the ranking's first value (listeners <= plays)
        SELECT t.key AS k, unseen + sum(CASE WHEN by_plays THEN t.plays ELSE t.listeners END - f.plays) AS bound,
               sum(f.plays) = unseen AS in_every_list
        FROM rollup_day_tops t
        JOIN rollup_day_floors f USING (day, tier, kind)
        WHERE t.kind = p_kind AND t.day BETWEEN lo AND hi AND (p_tier IS NULL OR t.tier = p_tier)
        GROUP BY t.key
        ORDER BY bound DESC, t.key
    LOOP
        EXIT WHEN cardinality(keys) >= p_n AND cand.bound < nth;
        -- exact: the lists' plays and listeners, and the key's own plays on the days of the lists missing it that
        -- could hold some (read by index; none when the key is in every such list)
        SELECT coalesce(sum(t.plays), 0) INTO n_plays
        FROM rollup_day_tops t
        WHERE t.kind = p_kind AND t.key = cand.k AND t.day BETWEEN lo AND hi AND (p_tier IS NULL OR t.tier = p_tier);
        extra := '{}';
        IF NOT cand.in_every_list THEN
            from_plays := from_plays + 1;
            IF p_kind = 'track' THEN
                SELECT coalesce(array_agg(p.user_id), '{}') INTO extra
                FROM rollup_day_floors f
                JOIN trackplays p
                  ON p.track_id = cand.k AND p.start_time >= f.day AND p.start_time < f.day + 1 AND p.tier = f.tier
                WHERE f.kind = p_kind AND f.day BETWEEN lo AND hi AND (p_tier IS NULL OR f.tier = p_tier)
                  AND f.plays > 0
                  AND NOT EXISTS (SELECT 1 FROM rollup_day_tops t
                                  WHERE t.day = f.day AND t.tier = f.tier AND t.kind = f.kind AND t.key = cand.k);
            ELSE
                SELECT coalesce(array_agg(p.user_id), '{}') INTO extra
                FROM rollup_day_floors f
                JOIN trackplays p
                  ON p.artist_id = cand.k AND p.start_time >= f.day AND p.start_time < f.day + 1 AND p.tier = f.tier
                WHERE f.kind = p_kind AND f.day BETWEEN lo AND hi AND (p_tier IS NULL OR f.tier = p_tier)
                  AND f.plays > 0
                  AND NOT EXISTS (SELECT 1 FROM rollup_day_tops t
                                  WHERE t.day = f.day AND t.tier = f.tier AND t.kind = f.kind AND t.key = cand.k);
            END IF;
        END IF;
        n_plays := n_plays + cardinality(extra);
        SELECT count(DISTINCT u) INTO n_listeners
        FROM (
            SELECT unnest(t.users) AS u
            FROM rollup_day_tops t
            WHERE t.kind = p_kind AND t.key = cand.k AND t.day BETWEEN lo AND hi
              AND (p_tier IS NULL OR t.tier = p_tier)
            UNION ALL
            SELECT unnest(extra)
        ) x;
        keys := keys || cand.k;
        counted_plays := counted_plays || n_plays;
        counted_listeners := counted_listeners || n_listeners;
        IF cardinality(keys) >= p_n THEN
            SELECT CASE WHEN by_plays THEN c.p ELSE c.l END INTO nth
            FROM unnest(keys, counted_plays, counted_listeners) c(k, p, l)
            ORDER BY CASE WHEN by_plays THEN c.p ELSE c.l END DESC, CASE WHEN by_plays THEN c.l ELSE c.p END DESC,
                     c.k COLLATE "C"
            OFFSET p_n - 1 LIMIT 1;
        END IF;
    END LOOP;
    IF unseen > 0 AND (cardinality(keys) < p_n OR unseen >= nth) THEN
        -- a key in no list could still rank: count every key of the period from its plays
        RAISE DEBUG 'report_top: % keys counted, % in no list: reading the plays', cardinality(keys), unseen;
        RETURN QUERY
        SELECT c.k, c.p, c.l FROM (
            SELECT CASE WHEN p_kind = 'track' THEN p.track_id ELSE p.artist_id END AS k,
                   count(*) AS p, count(DISTINCT p.user_id) AS l
            FROM report_plays(p_since, p_until, p_tier) p
            GROUP BY 1
        ) c
        ORDER BY CASE WHEN by_plays THEN c.p ELSE c.l END DESC, CASE WHEN by_plays THEN c.l ELSE c.p END DESC,
                 c.k COLLATE "C"
        LIMIT p_n;
        RETURN;
    END IF;
    RAISE DEBUG 'report_top: % keys counted, % from their plays', cardinality(keys), from_plays;
    RETURN QUERY
    SELECT c.k, c.p, c.l
    FROM unnest(keys, counted_plays, counted_listeners) c(k, p, l)
    ORDER BY CASE WHEN by_plays THEN c.p ELSE c.l END DESC, CASE WHEN by_plays THEN c.l ELSE c.p END DESC,
             c.k COLLATE "C"
    LIMIT p_n;
END
$$;

-- The lists of the plays already loaded.
SELECT refresh_day_tops(ARRAY(SELECT DISTINCT start_time::date FROM trackplays));
ANALYZE rollup_day_tops, rollup_day_floors;
