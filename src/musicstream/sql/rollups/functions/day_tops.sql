-- rollup_day_tops and rollup_day_floors: top tracks and artists of any period without reading every play of it
-- (docs/schema.md, "Report rollups that do not grow with the plays").
--
-- Per UTC day and tier, the load keeps the (at most) K most played tracks and artists (rollup_day_tops: their
-- plays, their distinct listeners that day, and who those listeners are) and, per list, the plays of the best key
-- it left out (rollup_day_floors.plays: no key outside the list had more that day). The load recomputes the lists
-- of every day it adds plays to or moves plays in (rule 8), from that day's plays, in its transaction.
--
-- report_top() answers "the N best keys of a period" from these lists with a threshold algorithm: a key's plays
-- in the period are at most the plays the lists show plus the floors of the lists it is missing from; keys are
-- taken in order of that bound and counted exactly (from the lists' listeners when the key is in every list
-- that matters, else from its own plays) until the N-th best counted beats every bound left. The answer is
-- exact; when the lists cannot decide (a very long top list, a flat day), it falls back to reading the plays.
--
-- Repeatable: `musicstream init` applies this file again whenever it changes (db/schema.py); it holds the one
-- current body of each function below.

-- How many keys a day's list keeps at most (one definition, read by refresh_day_tops and report_top).
CREATE OR REPLACE FUNCTION day_tops_kept() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 500';

-- The lists of some days, computed from their plays (the load calls it with the days it touched; a rebuild with
-- every day): plays counted per key; the keys with the most plays, at most day_tops_kept() of them (a count is
-- kept whole or not at all: no tie is broken), kept with their listeners. Written for a full load's millions of
-- plays, and without a count for every (day, tier, key) (a full load has about 1.2 × as many of those as plays:
-- most tracks are played once a day). One scan counts, per day and tier, the plays and the keys played at least
-- twice (grouping sets, hashed; the rest are dropped as the aggregate emits them); the keys played once are the
-- day's plays minus the plays of the others, so each list's histogram finds its cut and floor without sorting
-- every key. A list whose cut is one play (it keeps every key: small days) gets its once-played keys from a
-- second scan of its own days' plays. The listeners of the keys kept are gathered by another scan (hashed).
CREATE OR REPLACE FUNCTION refresh_day_tops(p_days date[])
RETURNS void
LANGUAGE plpgsql
SET enable_mergejoin = off  -- its joins are of a big table with a small one: hash them (no sort of the big one)
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
    -- the keys with two plays or more (kind NULL: the day's and tier's plays, one row per day and tier)
    CREATE TEMP TABLE day_counts ON COMMIT DROP AS
    SELECT day, tier, CASE grouped WHEN 1 THEN 'track' WHEN 2 THEN 'artist' END AS kind,
           CASE grouped WHEN 1 THEN track_id WHEN 2 THEN artist_id END AS key, plays
    FROM (
        SELECT p.start_time::date AS day, p.tier COLLATE "C" AS tier, p.track_id, p.artist_id,
               GROUPING(p.track_id, p.artist_id) AS grouped, count(*) AS plays
        FROM trackplays p
        WHERE p.start_time >= lo AND p.start_time < hi AND p.start_time::date = ANY(p_days)
        GROUP BY GROUPING SETS ((1, 2, 3), (1, 2, 4), (1, 2))
        HAVING count(*) >= 2 OR GROUPING(p.track_id, p.artist_id) = 3
    ) c;
    ANALYZE day_counts;
    -- each list's histogram of plays per key: the counted keys, and the once-played ones (the day's plays not on a
    -- counted key); each list keeps the keys with at least "cut" plays, the smallest count such that those keys
    -- are at most p_keep, and "below" is the next smaller count, the most plays of a key left out (NULL: none)
    CREATE TEMP TABLE day_cuts ON COMMIT DROP AS
    SELECT day, tier, kind, min(plays) FILTER (WHERE at_or_above <= p_keep) AS cut,
           max(plays) FILTER (WHERE at_or_above > p_keep) AS below
    FROM (
        SELECT day, tier, kind, plays,
               sum(keys) OVER (PARTITION BY day, tier, kind ORDER BY plays DESC) AS at_or_above
        FROM (
            SELECT day, tier, kind, plays, count(*) AS keys FROM day_counts WHERE kind IS NOT NULL GROUP BY 1, 2, 3, 4
            UNION ALL
            SELECT t.day, t.tier, k.kind, 1, t.plays - coalesce(sum(c.plays), 0)
            FROM day_counts t
            CROSS JOIN (VALUES ('track'), ('artist')) k(kind)
            LEFT JOIN day_counts c ON c.day = t.day AND c.tier = t.tier AND c.kind = k.kind
            WHERE t.kind IS NULL
            GROUP BY t.day, t.tier, k.kind, t.plays
            HAVING t.plays > coalesce(sum(c.plays), 0)
        ) h
    ) w
    GROUP BY 1, 2, 3;
    INSERT INTO rollup_day_floors (day, tier, kind, plays)
    SELECT day, tier, kind, coalesce(below, 0) FROM day_cuts;
    CREATE TEMP TABLE day_kept ON COMMIT DROP AS
    SELECT c.day, c.tier, c.kind, c.key, c.plays
    FROM day_counts c
    JOIN day_cuts x USING (day, tier, kind)
    WHERE c.plays >= x.cut;
    -- lists that keep every key: their once-played keys, from their own days' plays
    INSERT INTO day_kept (day, tier, kind, key, plays)
    SELECT day, tier, kind, key, 1
    FROM (
        SELECT p.start_time::date AS day, p.tier COLLATE "C" AS tier, x.kind,
               CASE x.kind WHEN 'track' THEN p.track_id ELSE p.artist_id END AS key
        FROM trackplays p
        JOIN day_cuts x ON x.day = p.start_time::date AND x.tier = p.tier COLLATE "C" AND x.cut = 1
        WHERE p.start_time >= lo AND p.start_time < hi
          AND p.start_time::date IN (SELECT day FROM day_cuts WHERE cut = 1)
    ) once
    GROUP BY 1, 2, 3, 4
    HAVING count(*) = 1;
    ANALYZE day_kept;
    -- the listeners of each key kept: the days' plays of kept keys (a hashed semi-join), their (key, user) pairs
    -- made distinct by hashing, one scan per kind, each list's array sorted on its own (no sort of every pair)
    INSERT INTO rollup_day_tops (day, tier, kind, key, plays, listeners, users)
    SELECT k.day, k.tier, k.kind, k.key, k.plays, cardinality(l.users), ARRAY(SELECT u FROM unnest(l.users) u ORDER BY u)
    FROM day_kept k
    JOIN (
        SELECT day, tier, 'track' AS kind, key, array_agg(user_id) AS users
        FROM (
            SELECT p.start_time::date AS day, p.tier COLLATE "C" AS tier, p.track_id AS key, p.user_id
            FROM trackplays p
            WHERE p.start_time >= lo AND p.start_time < hi
              AND (p.start_time::date, p.tier COLLATE "C", p.track_id)
                  IN (SELECT day, tier, key FROM day_kept WHERE kind = 'track')
            GROUP BY 1, 2, 3, 4
        ) pairs
        GROUP BY 1, 2, 4
        UNION ALL
        SELECT day, tier, 'artist', key, array_agg(user_id)
        FROM (
            SELECT p.start_time::date AS day, p.tier COLLATE "C" AS tier, p.artist_id AS key, p.user_id
            FROM trackplays p
            WHERE p.start_time >= lo AND p.start_time < hi
              AND (p.start_time::date, p.tier COLLATE "C", p.artist_id)
                  IN (SELECT day, tier, key FROM day_kept WHERE kind = 'artist')
            GROUP BY 1, 2, 3, 4
        ) pairs
        GROUP BY 1, 2, 4
    ) l USING (day, tier, kind, key)
    ORDER BY 1, 2, 3, 4;
    DROP TABLE day_kept, day_cuts, day_counts;
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
