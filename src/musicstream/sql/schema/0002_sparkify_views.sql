-- Views with the Sparkify seed's names and semantics (docs/schema.md, "Compatibility views").
CREATE SCHEMA IF NOT EXISTS sparkify;

CREATE OR REPLACE VIEW sparkify.songplays AS
SELECT p.trackplay_id AS songplay_id,
       p.start_time,
       p.user_id,
       p.tier AS level,
       CASE WHEN NOT t.is_inferred THEN p.track_id END AS song_id,
       CASE WHEN NOT t.is_inferred THEN p.artist_id END AS artist_id,
       p.session_id,
       p.location,
       p.user_agent
FROM public.trackplays p
JOIN public.tracks t ON t.track_id = p.track_id;

CREATE OR REPLACE VIEW sparkify.users AS
SELECT user_id, first_name, last_name, gender, tier AS level FROM public.users;

CREATE OR REPLACE VIEW sparkify.songs AS
SELECT track_id AS song_id, title, artist_id, year, duration FROM public.tracks WHERE NOT is_inferred;

CREATE OR REPLACE VIEW sparkify.artists AS
SELECT artist_id, name, location, latitude, longitude FROM public.artists WHERE NOT is_inferred;

CREATE OR REPLACE VIEW sparkify.time AS
SELECT start_time, hour, day, week, month, year, weekday FROM public.timetb;
