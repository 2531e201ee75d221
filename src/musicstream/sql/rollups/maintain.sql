-- The rollups' half of a load (load/rollups.py): the report's rollups kept exact from the star merge's hand-over,
-- in the run's transaction. The hand-over (load/steps.py, Handover): %(after_play)s (the run's plays are those
-- with a larger id), touched_days (day, new_play) and touched_names (name_id); the rollups read those and the
-- star's tables. Each rollup's functions are in sql/rollups/functions/.

-- name: session_sums
-- rollup_sessions and rollup_hours take the plays this run added: aggregated per row here, then added to the
-- rows already there (rollup_sessions). A hash aggregate, no sort, written to a temporary table so that parallel
-- workers can share it (an INSERT's SELECT runs on one core): the first and last item are the smallest and largest
-- (millisecond of the day, item) packed into one bigint (86,400,000 ms × 2^32 fits), and the text keys are grouped
-- by bytes ("C"): equality is all a group needs.
CREATE TEMP TABLE session_sums ON COMMIT DROP AS
SELECT p.start_time::date AS day, p.tier COLLATE "C" AS tier, p.user_id, p.session_id,
       p.location COLLATE "C" AS location, p.user_agent COLLATE "C" AS user_agent,
       count(*) AS plays, sum(n.length_ms) AS length_ms, count(*) FILTER (WHERE NOT t.is_inferred) AS catalog_plays,
       min(p.start_time) AS first_play, max(p.start_time) AS last_play,
       min(k.key) AS first_key, max(k.key) AS last_key, bit_or(1 << date_part('hour', p.start_time)::int) AS hours
FROM trackplays p
CROSS JOIN LATERAL (
    SELECT round(date_part('epoch', p.start_time - p.start_time::date) * 1000)::bigint * 4294967296
           + p.item_in_session + 2147483648 AS key
) k
JOIN play_names n USING (name_id)
LEFT JOIN tracks t ON t.track_id = p.track_id
WHERE p.trackplay_id > %(after_play)s
GROUP BY 1, 2, 3, 4, 5, 6;

-- name: rollup_sessions
-- The run's session rows added to those already there: counts summed, the earlier first play and the later last
-- play kept.
INSERT INTO rollup_sessions AS r (day, tier, user_id, session_id, location, user_agent, plays, length_ms,
                                  catalog_plays, first_play, first_item, last_play, last_item, hours)
SELECT day, tier, user_id, session_id, location, user_agent, plays, length_ms, catalog_plays,
       first_play, (mod(first_key, 4294967296) - 2147483648)::int, last_play, (mod(last_key, 4294967296) - 2147483648)::int,
       hours
FROM session_sums
ORDER BY 1, 2, 3, 4
ON CONFLICT (day, tier, user_id, session_id, md5(location), md5(user_agent)) DO UPDATE
SET plays = r.plays + excluded.plays,
    length_ms = r.length_ms + excluded.length_ms,
    catalog_plays = r.catalog_plays + excluded.catalog_plays,
    first_play = least(r.first_play, excluded.first_play),
    first_item = CASE WHEN (excluded.first_play, excluded.first_item) < (r.first_play, r.first_item)
                      THEN excluded.first_item ELSE r.first_item END,
    last_play = greatest(r.last_play, excluded.last_play),
    last_item = CASE WHEN (excluded.last_play, excluded.last_item) > (r.last_play, r.last_item)
                     THEN excluded.last_item ELSE r.last_item END,
    hours = r.hours | excluded.hours;

-- name: rollup_sessions_first
-- rollup_sessions on a first load: the rollup is empty and its key deferred (db/bulk.py), so the run's rows go in
-- as they are; the key, built after, checks that they are distinct.
INSERT INTO rollup_sessions (day, tier, user_id, session_id, location, user_agent, plays, length_ms,
                             catalog_plays, first_play, first_item, last_play, last_item, hours)
SELECT day, tier, user_id, session_id, location, user_agent, plays, length_ms, catalog_plays,
       first_play, (mod(first_key, 4294967296) - 2147483648)::int, last_play, (mod(last_key, 4294967296) - 2147483648)::int,
       hours
FROM session_sums;

-- name: rollup_hours
INSERT INTO rollup_hours AS r (day, hour, tier, plays)
SELECT start_time::date, extract(hour FROM start_time)::int, tier, count(*)
FROM trackplays
WHERE trackplay_id > %(after_play)s
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
ON CONFLICT (day, hour, tier) DO UPDATE SET plays = r.plays + excluded.plays;

-- name: moved_sessions
-- The rollup rows holding a known play that rule 8 moved to another track: their catalog_plays are counted again
-- (recount_catalog_plays).
CREATE TEMP TABLE moved_sessions ON COMMIT DROP AS
SELECT DISTINCT p.start_time::date AS day, p.tier, p.user_id, p.session_id, p.location, p.user_agent
FROM touched_names t
JOIN trackplays p ON p.name_id = t.name_id
WHERE p.trackplay_id <= %(after_play)s;

-- name: recount_catalog_plays
-- catalog_plays of the rollup rows whose plays moved, counted again from their plays (found by user and session).
UPDATE rollup_sessions r
SET catalog_plays = c.catalog_plays
FROM (
    SELECT m.day, m.tier, m.user_id, m.session_id, m.location, m.user_agent,
           count(*) FILTER (WHERE NOT t.is_inferred) AS catalog_plays
    FROM moved_sessions m
    JOIN trackplays p
      ON p.user_id = m.user_id AND p.session_id = m.session_id AND p.tier = m.tier
     AND p.start_time >= m.day AND p.start_time < m.day + 1
     AND p.location IS NOT DISTINCT FROM m.location AND p.user_agent IS NOT DISTINCT FROM m.user_agent
    LEFT JOIN tracks t ON t.track_id = p.track_id
    GROUP BY 1, 2, 3, 4, 5, 6
) c
WHERE r.day = c.day AND r.tier = c.tier AND r.user_id = c.user_id AND r.session_id = c.session_id
  AND r.location IS NOT DISTINCT FROM c.location AND r.user_agent IS NOT DISTINCT FROM c.user_agent
  AND r.catalog_plays <> c.catalog_plays;

-- name: day_tops
-- The top lists (sql/rollups/functions/day_tops.sql) of the touched days, recomputed from their plays.
SELECT refresh_day_tops(ARRAY(SELECT DISTINCT day FROM touched_days));

-- name: day_sets
-- The day sets (day_sets.sql) of the touched days, from their rollup rows; the session counts from the first day
-- with new plays on (a later day's counts depend on it).
SELECT refresh_day_sets(ARRAY(SELECT DISTINCT day FROM touched_days)),
       refresh_session_days((SELECT min(day) FROM touched_days WHERE new_play));

-- name: day_tier_moves
-- The touched days' openers and arrivals (tier_moves.sql), from the rollup_user_days rows day_sets just wrote.
SELECT refresh_day_tier_moves(ARRAY(SELECT DISTINCT day FROM touched_days));

-- name: session_lengths
-- The session lengths (session_lengths.sql) of the sessions with new plays.
SELECT refresh_session_lengths(ARRAY(SELECT DISTINCT day FROM touched_days WHERE new_play));

-- name: rebuild_handover
-- A rebuild (a migration's backfill, `musicstream` operators): a hand-over in which every stored play is new and
-- no name moved; the rollups, emptied first, are then maintained from it as a load's are.
CREATE TEMP TABLE touched_days ON COMMIT DROP AS
SELECT DISTINCT start_time::date AS day, TRUE AS new_play FROM trackplays;
CREATE TEMP TABLE touched_names ON COMMIT DROP AS
SELECT name_id FROM play_names WHERE FALSE;
