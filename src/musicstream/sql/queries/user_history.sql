-- A user's listening history: the user's plays in order (UTC), with the track, artist, tier and where from.
-- param user user required: the user's id
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
-- param limit count 100: how many plays, from the first
SELECT p.start_time, p.session_id, p.item_in_session, t.title, a.name AS artist,
       CASE WHEN t.is_inferred THEN 'inferred' ELSE 'catalog' END AS source, p.tier, p.location
FROM trackplays p
JOIN tracks t ON t.track_id = p.track_id
JOIN artists a ON a.artist_id = p.artist_id
WHERE p.user_id = %(user)s::int
  AND p.start_time >= coalesce(%(since)s::date, '-infinity'::date)
  AND p.start_time < coalesce(%(until)s::date + 1, 'infinity'::date)
ORDER BY p.start_time, p.session_id, p.item_in_session
LIMIT %(limit)s::int;
