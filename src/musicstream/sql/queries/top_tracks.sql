-- Top tracks in a period: the most played tracks (catalog and inferred) and how many people played them.
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
-- param limit count 10: how many tracks
SELECT t.title, a.name AS artist, CASE WHEN t.is_inferred THEN 'inferred' ELSE 'catalog' END AS source,
       c.plays, c.listeners
FROM report_top('track', %(since)s::date, %(until)s::date, NULL, %(limit)s::int, 'plays') c
JOIN tracks t ON t.track_id = c.key
JOIN artists a ON a.artist_id = t.artist_id
ORDER BY c.plays DESC, c.listeners DESC, c.key COLLATE "C";
