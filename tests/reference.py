"""A small reference model of the data contract, written from docs/rules.md without the project's code or SQL.

Given the song and log files of one load, it computes the star schema (rules 1–8) and every report figure and
curated query answer in plain Python, so that tests compare the project against an independent computation, not
against itself. It reads JSON with the standard library and keeps everything in memory: test-sized data only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import statistics
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

EPOCH = dt.datetime(1970, 1, 1)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def key(name: str) -> str:
    """Rule 6's normalisation: NFKC, case-folded, white space runs collapsed to one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def repaired(name: str) -> str:
    """Rule 6's reading of a name, from its text: undone as ``ftfy.fix_encoding`` undoes double-encoded UTF-8;
    when ftfy re-decoded the name (its plan: encode in one codec, decode in another), the same re-decoding again
    while it still decodes; cut curly quotes restored."""
    import ftfy
    import ftfy.bad_codecs

    text, plan = ftfy.fix_encoding_and_explain(name)
    steps = [(action, codec) for action, codec in plan or []]
    while steps and all(action in ("encode", "decode") for action, _ in steps):
        data: Any = text
        try:
            for action, codec in steps:
                data = data.encode(codec) if action == "encode" else data.decode(codec)
        except UnicodeError:
            break
        if data == text:
            break
        text = data
    return text.replace("\x18", "\u2018").replace("\x19", "\u2019")


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def half_up(value: Decimal, places: int = 1) -> Decimal:
    """SQL's round(numeric, n): halves away from zero (Python's round() would go to the even digit)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Play:
    user_id: int
    session_id: int
    item: int
    ts: int
    tier: str
    location: str | None
    user_agent: str | None
    song: str
    artist: str
    length_ms: int

    @property
    def start_time(self) -> dt.datetime:
        return EPOCH + dt.timedelta(milliseconds=self.ts)


@dataclass
class Star:
    plays: dict[tuple[int, int, int], Play] = field(default_factory=dict)
    play_track: dict[tuple[int, int, int], tuple[str, str]] = field(default_factory=dict)
    users: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    tracks: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # title, artist_id, year, duration, inferred
    artists: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # name, location, lat, long, inferred

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """The star as the tests compare it: natural keys, sorted."""
        plays = [
            (k[0], k[1], k[2], p.start_time, p.tier, *self.play_track[k], p.location, p.user_agent)
            for k, p in self.plays.items()
        ]
        times = {p.start_time for p in self.plays.values()}
        return {
            "trackplays": sorted(plays),
            "users": sorted((u, *row) for u, row in self.users.items()),
            "tracks": sorted((t, *row) for t, row in self.tracks.items()),
            "artists": sorted((a, *row) for a, row in self.artists.items()),
            "timetb": sorted(
                (t, t.hour, t.day, t.isocalendar()[1], t.month, t.year, WEEKDAYS[t.weekday()]) for t in times
            ),
        }


def _events(paths: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    songs, events = [], []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*.json") if p.is_file())
        for path in files:
            text = path.read_text(encoding="utf-8")
            if "song_data" in path.parts:
                decoder, pos = json.JSONDecoder(), 0
                while pos < len(text.rstrip()):
                    while text[pos].isspace():
                        pos += 1
                    value, pos = decoder.raw_decode(text, pos)
                    songs.extend(value if isinstance(value, list) else [value])
            else:
                events.extend(json.loads(line) for line in text.splitlines() if line.strip())
    return songs, events


def build(paths: list[Path]) -> Star:
    """The star schema one load of these files must give (one run: within it the earliest event of a key wins)."""
    songs, events = _events(paths)
    star = Star()
    # rule 3: users by their latest event (ts, session, item); rule 1 and 2: plays, the earliest event of a key
    latest: dict[int, tuple[tuple[int, int, int], dict[str, Any]]] = {}
    for e in events:
        if e.get("userId") in ("", None):
            continue
        uid = int(e["userId"])
        order = (int(e["ts"]), int(e["sessionId"]), int(e["itemInSession"]))
        if uid not in latest or order > latest[uid][0]:
            latest[uid] = (order, e)
        if e["page"] != "NextSong":
            continue
        agent = _text(e.get("userAgent"))
        if agent and len(agent) >= 2 and agent[0] == agent[-1] == '"':
            agent = agent[1:-1] or None
        play = Play(
            uid,
            int(e["sessionId"]),
            int(e["itemInSession"]),
            int(e["ts"]),
            e["level"],
            _text(e.get("location")),
            agent,
            repaired(e["song"]),
            repaired(e["artist"]),
            int((Decimal(repr(float(e["length"]))) * 1000).to_integral_value()),
        )
        natural = (play.user_id, play.session_id, play.item)
        if natural not in star.plays or play.ts < star.plays[natural].ts:
            star.plays[natural] = play
    for uid, (_, e) in latest.items():
        star.users[uid] = (
            _text(e.get("firstName")) or "Unknown",
            _text(e.get("lastName")) or "Unknown",
            _text(e.get("gender")),
            e["level"],
        )
    # rule 5: the catalog; an artist takes the details of its smallest song id, then the smallest details
    catalog: dict[str, dict[str, Any]] = {}
    for s in songs:
        if s.get("duration") is None:
            continue  # a reject
        record = {
            "title": repaired(s["title"]),
            "artist_id": s["artist_id"],
            "year": s.get("year") or None,
            "duration": Decimal(repr(float(s["duration"]))),
            "artist_key": key(repaired(s["artist_name"])),
            "artist_name": repaired(s["artist_name"]),
            "location": _text(s.get("artist_location")),
            "lat": None if s.get("artist_latitude") is None else Decimal(repr(float(s["artist_latitude"]))),
            "long": None if s.get("artist_longitude") is None else Decimal(repr(float(s["artist_longitude"]))),
        }
        sid = s["song_id"]

        def track_order(r: dict[str, Any]) -> tuple[Any, ...]:
            return (r["title"], r["artist_id"], r["duration"], r["year"] is None, r["year"] or 0, r["artist_key"])

        if sid not in catalog or track_order(record) < track_order(catalog[sid]):
            catalog[sid] = record
    by_artist: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for s in songs:
        if s.get("duration") is None:
            continue
        loc = _text(s.get("artist_location"))
        lat, long = s.get("artist_latitude"), s.get("artist_longitude")
        order = (
            s["song_id"],
            repaired(s["artist_name"]),
            loc is None,
            loc or "",
            lat is None,
            lat or 0,
            long is None,
            long or 0,
        )
        if s["artist_id"] not in by_artist or order < by_artist[s["artist_id"]][0]:
            by_artist[s["artist_id"]] = (order, s)
    for aid, (_, s) in by_artist.items():
        lat, long = s.get("artist_latitude"), s.get("artist_longitude")
        star.artists[aid] = (
            repaired(s["artist_name"]),
            _text(s.get("artist_location")),
            None if lat is None else Decimal(repr(float(lat))),
            None if long is None else Decimal(repr(float(long))),
            False,
        )
    for sid, r in catalog.items():
        star.tracks[sid] = (r["title"], r["artist_id"], r["year"], r["duration"], False)
    # rules 6 and 7: each play's track and artist
    catalog_artist: dict[str, str] = {}
    for r in catalog.values():
        if r["artist_key"] not in catalog_artist or r["artist_id"] < catalog_artist[r["artist_key"]]:
            catalog_artist[r["artist_key"]] = r["artist_id"]
    inferred_titles: dict[str, list[str]] = defaultdict(list)
    inferred_names: dict[str, list[str]] = defaultdict(list)
    inferred_rows: dict[str, tuple[str, Decimal]] = {}
    for natural, p in star.plays.items():
        title_key, artist_key = key(p.song), key(p.artist)
        length = Decimal(p.length_ms) / 1000
        candidates = [
            (abs(r["duration"] - length), sid)
            for sid, r in catalog.items()
            if key(r["title"]) == title_key and r["artist_key"] == artist_key and abs(r["duration"] - length) <= 1
        ]
        if candidates:
            sid = min(candidates)[1]
            star.play_track[natural] = (sid, catalog[sid]["artist_id"])
            continue
        artist_id = catalog_artist.get(artist_key) or "IA-" + _md5(artist_key)
        if artist_id.startswith("IA-"):
            inferred_names[artist_id].append(p.artist)
        track_id = "IT-" + _md5(f"{title_key}\x1f{artist_id}\x1f{p.length_ms}")
        inferred_titles[track_id].append(p.song)
        inferred_rows[track_id] = (artist_id, (Decimal(p.length_ms) / 1000).quantize(Decimal("0.001")))
        star.play_track[natural] = (track_id, artist_id)
    for aid, names in inferred_names.items():
        star.artists[aid] = (min(names), None, None, None, True)
    for tid, titles in inferred_titles.items():
        artist_id, duration = inferred_rows[tid]
        star.tracks[tid] = (min(titles), artist_id, None, duration, True)
    return star


# ---- the report and the curated queries, from the reference star ----------------------------------------------


def _period(star: Star, since: dt.date | None, until: dt.date | None, tier: str | None) -> list[tuple[Any, Play]]:
    return [
        (k, p)
        for k, p in star.plays.items()
        if (since is None or p.start_time.date() >= since)
        and (until is None or p.start_time.date() <= until)
        and (tier is None or p.tier == tier)
    ]


def _ranked(counts: dict[str, list[Any]], top: int) -> dict[str, list[tuple[str, int, int]]]:
    rows = [(ident, len(users), len(set(users))) for ident, users in counts.items()]
    by_plays = sorted(rows, key=lambda r: (-r[1], -r[2], r[0]))[:top]
    by_listeners = sorted(rows, key=lambda r: (-r[2], -r[1], r[0]))[:top]
    return {"by_plays": by_plays, "by_listeners": by_listeners}


def report(
    star: Star, since: dt.date | None = None, until: dt.date | None = None, tier: str | None = None, top: int = 10
) -> dict[str, Any]:
    """The report's figures (docs/reports.md), computed from the reference star."""
    plays = _period(star, since, until, tier)
    tracks: dict[str, list[int]] = defaultdict(list)
    artists: dict[str, list[int]] = defaultdict(list)
    for k, p in plays:
        tracks[star.play_track[k][0]].append(p.user_id)
        artists[star.play_track[k][1]].append(p.user_id)
    days: dict[dt.date, set[int]] = defaultdict(set)
    day_plays: Counter[dt.date] = Counter()
    for _, p in plays:
        days[p.start_time.date()].add(p.user_id)
        day_plays[p.start_time.date()] += 1
    daily = []
    if days:
        day = min(days)
        while day <= max(days):
            daily.append((day, len(days.get(day, ())), day_plays[day]))
            day += dt.timedelta(days=1)
    window = daily[-30:]
    mau = len({p.user_id for _, p in plays if daily and p.start_time.date() >= daily[-1][0] - dt.timedelta(days=29)})
    matrix = [[0] * 24 for _ in WEEKDAYS]
    for _, p in plays:
        matrix[p.start_time.weekday()][p.start_time.hour] += 1
    by_tier: dict[str, list[int]] = defaultdict(list)
    for _, p in plays:
        by_tier[p.tier].append(p.user_id)
    listeners = {p.user_id for _, p in plays}
    everything = _period(star, since, until, None)  # tier changes look at both tiers
    sequences: dict[int, list[tuple[Any, str]]] = defaultdict(list)
    for _, p in everything:
        sequences[p.user_id].append(((p.ts, p.session_id, p.item), p.tier))
    upgraded = downgraded = changed = 0
    for seq in sequences.values():
        tiers = [t for _, t in sorted(seq)]
        upgraded += any(a == "free" and "paid" in tiers[i + 1 :] for i, a in enumerate(tiers))
        downgraded += any(a == "paid" and "free" in tiers[i + 1 :] for i, a in enumerate(tiers))
        changed += {"free", "paid"} <= set(tiers)
    locations: dict[str, list[int]] = defaultdict(list)
    agents: dict[str, list[int]] = defaultdict(list)
    for _, p in plays:
        locations[p.location or "(unknown)"].append(p.user_id)
        agents[p.user_agent or ""].append(p.user_id)
    sessions = {(p.user_id, p.session_id) for _, p in plays}
    return {
        "headline": {
            "plays": len(plays),
            "listeners": len(listeners),
            "listening_hours": round(sum(p.length_ms for _, p in plays) / 3_600_000, 1),
            "sessions": len(sessions),
            "first_play": min((p.start_time for _, p in plays), default=None),
            "last_play": max((p.start_time for _, p in plays), default=None),
            "dau": round(sum(d[1] for d in window) / len(window), 2) if window else 0.0,
            "mau": mau,
        },
        "top_tracks": _ranked(tracks, top),
        "top_artists": _ranked(artists, top),
        "daily": daily,
        "hour_weekday": matrix,
        "tiers": {t: (len(u), len(set(u))) for t, u in sorted(by_tier.items())},
        "current_tiers": dict(sorted(Counter(star.users[u][3] for u in listeners).items())),
        "tier_changes": {"upgraded": upgraded, "downgraded": downgraded, "changed": changed},
        "locations": sorted(
            ((loc, len(u), len(set(u))) for loc, u in locations.items()), key=lambda r: (-r[1], -r[2], r[0])
        )[:top],
        "user_agents": sorted(((a, len(u), len(set(u))) for a, u in agents.items()), key=lambda r: (-r[1], r[0]))[:top],
        "matched_to_catalog": sum(not star.tracks[star.play_track[k][0]][4] for k, _ in plays),
    }


def queries(star: Star, since: dt.date | None = None, until: dt.date | None = None) -> dict[str, Any]:
    """The curated queries' answers (their header comments say what each means)."""
    plays = _period(star, since, until, None)
    per_track: dict[str, list[int]] = defaultdict(list)
    for k, p in plays:
        per_track[star.play_track[k][0]].append(p.user_id)
    top = sorted(((t, len(u), len(set(u))) for t, u in per_track.items()), key=lambda r: (-r[1], -r[2], r[0]))
    hours = [(h, [p for _, p in plays if p.start_time.hour == h]) for h in range(24)]
    total = len(plays)
    hourly = [
        (h, len(ps), len({p.user_id for p in ps}), half_up(Decimal(100 * len(ps)) / total) if total else None)
        for h, ps in hours
    ]
    sessions: dict[tuple[int, int], list[Play]] = defaultdict(list)
    for _, p in plays:
        sessions[(p.user_id, p.session_id)].append(p)
    buckets: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    for ps in sessions.values():
        n = len(ps)
        bucket = 1 if n == 1 else 2 if n <= 5 else 3 if n <= 10 else 4 if n <= 20 else 5 if n <= 50 else 6
        minutes = Decimal((max(p.ts for p in ps) - min(p.ts for p in ps)) // 1000) / 60  # whole seconds
        buckets[bucket].append((n, minutes))
    lengths = {
        b: (len(v), half_up(Decimal(sum(n for n, _ in v)) / len(v)), half_up(statistics.median(m for _, m in v)))
        for b, v in sorted(buckets.items())
    }
    firsts = {}
    for _, p in sorted(plays, key=lambda kp: (kp[1].user_id, kp[1].ts, kp[1].session_id, kp[1].item)):
        firsts.setdefault(p.user_id, p)
    started_free = [u for u, p in firsts.items() if p.tier == "free"]
    converted = {}
    for u in started_free:
        paid = [p.ts for _, p in plays if p.user_id == u and p.tier == "paid"]
        if paid:
            converted[u] = Decimal(min(paid) - firsts[u].ts) / 86_400_000
    listeners: dict[str, dict[int, list[Play]]] = defaultdict(lambda: defaultdict(list))
    for k, p in plays:
        name = star.artists[star.play_track[k][1]][0]
        listeners[name.lower()][p.user_id].append(p)
    by_artist = {
        artist: sorted(
            (
                (
                    u,
                    *star.users[u][:2],
                    star.users[u][3],
                    len(ps),
                    len({star.play_track[(p.user_id, p.session_id, p.item)][0] for p in ps}),
                    min(p.start_time for p in ps),
                    max(p.start_time for p in ps),
                )
                for u, ps in users.items()
            ),
            key=lambda r: (-r[4], r[0]),
        )
        for artist, users in listeners.items()
    }
    return {
        "artist_listeners": by_artist,
        "top_tracks": top,
        "hourly_pattern": hourly,
        "session_lengths": lengths,
        "free_to_paid": (len(started_free), len(converted)),
        "days_to_convert": half_up(sum(converted.values()) / len(converted)) if converted else None,
    }
