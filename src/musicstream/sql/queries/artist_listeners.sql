-- Listeners of an artist: who played an artist (name compared case-insensitively), how often, and when.
-- param artist text Coldplay: the artist's name
-- param since date null: first day, UTC (null: from the start)
-- param until date null: last day, UTC, inclusive (null: to the end)
SELECT u.user_id, u.first_name, u.last_name, u.tier AS tier_now, count(*) AS plays,
       count(DISTINCT p.track_id) AS tracks, min(p.start_time) AS first_play, max(p.start_time) AS last_play
FROM report_plays(%(since)s::date, %(until)s::date, NULL) p
JOIN artists a ON a.artist_id = p.artist_id
JOIN users u ON u.user_id = p.user_id
WHERE lower(a.name) = lower(%(artist)s::text)
GROUP BY u.user_id, u.first_name, u.last_name, u.tier
ORDER BY plays DESC, u.user_id;
