-- refresh_day_tops (0008) without writing a count for every (day, tier, key): a full load has about 1.2 × as many
-- of those as plays (most tracks are played once a day), while a list keeps at most day_tops_kept() keys. One scan
-- counts, per day and tier, the plays and the keys played at least twice (grouping sets, hashed; the rest are
-- dropped as the aggregate emits them); the keys played once are the day's plays minus the plays of the others, so
-- each list's histogram, cut and floor come out as before. A list whose cut is one play (it keeps every key: small
-- days) gets its once-played keys from a second scan of its own days' plays.
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
