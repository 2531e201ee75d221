-- rollup_session_lengths and rollup_spanning_sessions: the lengths of sessions, by bucket and duration.
--
-- Repeatable: `musicstream init` applies this file again whenever it changes (db/schema.py); it holds the one
-- current body of each function below.

-- The length bucket of a session by the songs it played (one definition: the load and session_lengths use it).
CREATE OR REPLACE FUNCTION session_bucket(songs bigint)
RETURNS int
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN songs <= 1 THEN 1 WHEN songs <= 5 THEN 2 WHEN songs <= 10 THEN 3
                WHEN songs <= 20 THEN 4 WHEN songs <= 50 THEN 5 ELSE 6 END
$$;

-- A session's duration as session_lengths counts it: whole seconds from its first play's start to its last's.
CREATE OR REPLACE FUNCTION session_seconds(first_play timestamp, last_play timestamp)
RETURNS int
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT floor(extract(epoch FROM last_play - first_play))::int
$$;

-- The session lengths of the sessions with plays on some days (the load calls it with the days it added plays
-- to; the migration with every day). Those sessions' rows are aggregated per day: on the given days from the day
-- index, on other days by session (index rollup_sessions_session; skipped when the given days are every day with
-- plays, as in a first load). A session on a single day is counted in that day's row; the others are (re)listed as
-- spanning, and the other days they touch are counted again (a session counted on its one day before may now span
-- two).
CREATE OR REPLACE FUNCTION refresh_session_lengths(p_days date[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_more date[];
BEGIN
    IF cardinality(p_days) IS NULL OR cardinality(p_days) = 0 THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE session_parts ON COMMIT DROP AS
    SELECT user_id, session_id, day, sum(plays)::int AS plays, min(first_play) AS first_play,
           max(last_play) AS last_play
    FROM rollup_sessions
    WHERE day = ANY(p_days)
    GROUP BY 1, 2, 3;
    IF EXISTS (SELECT 1 FROM rollup_hours WHERE day <> ALL(p_days)) THEN
        INSERT INTO session_parts (user_id, session_id, day, plays, first_play, last_play)
        SELECT t.user_id, t.session_id, o.day, o.plays, o.first_play, o.last_play
        FROM (SELECT DISTINCT user_id, session_id FROM session_parts) t
        CROSS JOIN LATERAL (
            SELECT r.day, sum(r.plays)::int AS plays, min(r.first_play) AS first_play, max(r.last_play) AS last_play
            FROM rollup_sessions r
            WHERE r.user_id = t.user_id AND r.session_id = t.session_id AND r.day <> ALL(p_days)
            GROUP BY r.day
        ) o;
    END IF;
    CREATE TEMP TABLE session_spans ON COMMIT DROP AS
    SELECT user_id, session_id, min(day) AS first_day, max(day) AS last_day, sum(plays) AS songs,
           session_seconds(min(first_play), max(last_play)) AS seconds
    FROM session_parts
    GROUP BY 1, 2;
    DELETE FROM rollup_spanning_sessions s
    USING session_spans t
    WHERE s.user_id = t.user_id AND s.session_id = t.session_id;
    INSERT INTO rollup_spanning_sessions (user_id, session_id, day, plays, first_play, last_play)
    SELECT p.user_id, p.session_id, p.day, p.plays, p.first_play, p.last_play
    FROM session_parts p
    JOIN session_spans s ON s.user_id = p.user_id AND s.session_id = p.session_id
    WHERE s.first_day < s.last_day;
    v_more := ARRAY(SELECT DISTINCT day FROM session_parts WHERE day <> ALL(p_days));
    DELETE FROM rollup_session_lengths WHERE day = ANY(p_days) OR day = ANY(v_more);
    INSERT INTO rollup_session_lengths (day, bucket, seconds, sessions, songs)
    SELECT first_day, session_bucket(songs), seconds, count(*), sum(songs)
    FROM session_spans
    WHERE first_day = last_day
    GROUP BY 1, 2, 3;
    INSERT INTO rollup_session_lengths (day, bucket, seconds, sessions, songs)
    SELECT day, session_bucket(songs), seconds, count(*), sum(songs)
    FROM (
        SELECT r.day, sum(r.plays) AS songs, session_seconds(min(r.first_play), max(r.last_play)) AS seconds
        FROM rollup_sessions r
        WHERE r.day = ANY(v_more)
          AND NOT EXISTS (SELECT 1 FROM rollup_spanning_sessions s
                          WHERE s.user_id = r.user_id AND s.session_id = r.session_id)
        GROUP BY r.day, r.user_id, r.session_id
    ) one_day
    GROUP BY 1, 2, 3;
    DROP TABLE session_parts, session_spans;
END
$$;
