-- Top tracks in a period: the most played tracks (catalog and inferred) and how many people played them.
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
-- param limit int 10: how many tracks
SELECT t.title, a.name AS artist, CASE WHEN t.is_inferred THEN 'inferred' ELSE 'catalog' END AS source,
       c.plays, c.listeners
FROM (
    SELECT track_id, count(*) AS plays, count(DISTINCT user_id) AS listeners
    FROM report_plays(%(since)s::date, %(until)s::date, NULL)
    GROUP BY track_id
) c
JOIN tracks t USING (track_id)
JOIN artists a ON a.artist_id = t.artist_id
ORDER BY c.plays DESC, c.listeners DESC, t.track_id
LIMIT %(limit)s::int;
