"""The song catalog (what goes into ``song_data``) and the much larger pool of songs users play.

In the real sample the catalog is a small slice of the Million Song Dataset while users play songs from
all of it, so almost no play names a catalog song.  A loader must therefore cope with plays it cannot
match; but a generator that never matched would leave the matching code untested.  So plays come from
two pools: the catalog itself (a few percent of plays, always with exactly the catalog's title, artist
name and duration) and an "outside" pool of invented songs that are never in the catalog.
"""

from __future__ import annotations

import bisect
import itertools
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from musicstream.generate import names
from musicstream.generate.jsonfmt import log_float, log_str

_UPPER = string.ascii_uppercase
_ALNUM = string.ascii_uppercase + string.digits
_HEX = "0123456789ABCDEF"


@dataclass(frozen=True, slots=True)
class Artist:
    """An artist as the song files describe one (location may be empty, coordinates may be null)."""

    artist_id: str
    name: str
    location: str
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True, slots=True)
class Song:
    """One song file's worth of data."""

    track_id: str
    song_id: str
    title: str
    artist: Artist
    duration: float
    year: int

    def record(self) -> dict[str, object]:
        """The JSON object of the song file, keys in the real files' order."""
        return {
            "num_songs": 1,
            "artist_id": self.artist.artist_id,
            "artist_latitude": self.artist.latitude,
            "artist_longitude": self.artist.longitude,
            "artist_location": self.artist.location,
            "artist_name": self.artist.name,
            "song_id": self.song_id,
            "title": self.title,
            "duration": self.duration,
            "year": self.year,
        }

    def relative_path(self) -> PurePosixPath:
        """``song_data/A/B/C/TRABC....json``: the folders are the 3rd to 5th characters of the track id."""
        tid = self.track_id
        return PurePosixPath("song_data", tid[2], tid[3], tid[4], f"{tid}.json")


def _unique_id(rng: random.Random, seen: set[str], make: str) -> str:
    """Draw ids until one is new; ``make`` picks the id family."""
    while True:
        if make == "artist":
            new = "AR" + "".join(rng.choices(_ALNUM, k=5)) + "1187" + "".join(rng.choices(_HEX, k=7))
        else:  # song
            new = "SO" + "".join(rng.choices(_UPPER, k=5)) + "12A" + "".join(rng.choices(_HEX, k=8))
        if new not in seen:
            seen.add(new)
            return new


def _track_id(rng: random.Random, seen: set[str], letters: str) -> str:
    """``TR`` + three folder letters + two letters + 11 id characters (18 in all, like the MSD's)."""
    while True:
        new = (
            "TR"
            + "".join(rng.choices(letters, k=3))
            + "".join(rng.choices(_UPPER, k=2))
            + "128F"
            + "".join(rng.choices(_HEX, k=7))
        )
        if new not in seen:
            seen.add(new)
            return new


def _folder_letters(n_songs: int) -> str:
    """Few folder letters for small catalogs, so folders hold several files each, as in the sample."""
    k = round((n_songs / 8) ** (1 / 3))
    return _UPPER[: max(2, min(26, k))]


def _duration(rng: random.Random) -> float:
    """Song length in seconds, 5 decimals like the MSD; mostly 2-6 minutes with short and long tails."""
    seconds = rng.lognormvariate(5.44, 0.38)  # median ~230 s
    return round(min(max(seconds, 15.0), 1800.0), 5)


def _year(rng: random.Random) -> int:
    """Release year; 0 (unknown) for over half the songs, as in the Million Song Dataset."""
    if rng.random() < 0.55:
        return 0
    return max(1950, int(2010 - abs(rng.gauss(0.0, 14.0))))


def _new_artist(rng: random.Random, seen_ids: set[str], name: str) -> Artist:
    r = rng.random()
    if r < 0.45:
        location, lat, lon = "", None, None
    elif r < 0.62:
        location, lat, lon = rng.choice(names.ARTIST_PLACES_NO_COORDS), None, None
    else:
        location, la, lo = rng.choice(names.ARTIST_PLACES)
        lat, lon = la, lo
    return Artist(_unique_id(rng, seen_ids, "artist"), name, location, lat, lon)


def build_catalog(rng: random.Random, n_songs: int) -> list[Song]:
    """``n_songs`` distinct songs; about one in seven shares its artist with an earlier song."""
    letters = _folder_letters(n_songs)
    artist_ids: set[str] = set()
    song_ids: set[str] = set()
    track_ids: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    artists: list[Artist] = []
    catalog: list[Song] = []
    while len(catalog) < n_songs:
        if artists and rng.random() < 0.15:
            artist = rng.choice(artists)
        else:
            artist = _new_artist(rng, artist_ids, names.make_artist_name(rng))
            artists.append(artist)
        title = names.make_title(rng)
        if (title, artist.name) in pairs:
            continue
        pairs.add((title, artist.name))
        catalog.append(
            Song(
                track_id=_track_id(rng, track_ids, letters),
                song_id=_unique_id(rng, song_ids, "song"),
                title=title,
                artist=artist,
                duration=_duration(rng),
                year=_year(rng),
            )
        )
    return catalog


# A pool entry, pre-encoded for log lines: (artist JSON, song JSON, length JSON, milliseconds to advance).
PoolEntry = tuple[str, str, str, int]


@dataclass(frozen=True, slots=True)
class PlayPool:
    """Songs as NextSong events name them, with skewed (Zipf-like) popularity.

    ``pick`` maps a uniform draw to an entry by bisecting cumulative weights: O(log n) per play and
    a single ``random()`` call, which keeps event generation fast.
    """

    entries: list[PoolEntry]
    cum_weights: list[float]

    def pick(self, u: float) -> PoolEntry:
        cum = self.cum_weights
        i = bisect.bisect_right(cum, u * cum[-1])
        return self.entries[min(i, len(self.entries) - 1)]


def _entry(title: str, artist: str, length: float) -> PoolEntry:
    return (log_str(artist), log_str(title), log_float(length), int(length) * 1000)


def _zipf_pool(entries: list[PoolEntry], exponent: float, offset: float) -> PlayPool:
    weights = ((1.0 / (rank + offset) ** exponent) for rank in range(1, len(entries) + 1))
    return PlayPool(entries, list(itertools.accumulate(weights)))


def catalog_pool(rng: random.Random, catalog: Sequence[Song]) -> PlayPool:
    """Catalog songs as played: exactly the catalog's title, artist name and duration."""
    order = list(catalog)
    rng.shuffle(order)
    return _zipf_pool([_entry(s.title, s.artist.name, s.duration) for s in order], 1.0, 1.0)


def outside_pool(rng: random.Random, catalog: Sequence[Song], size: int) -> PlayPool:
    """``size`` songs that are not in the catalog (by title and artist name).

    A few reuse a catalog artist's name (the artist is known, the song is not), and about 4% appear
    twice with lengths a fraction of a second to two seconds apart, as the same recording does in the
    real logs (different releases of one song).
    """
    taken = {(s.title, s.artist.name) for s in catalog}
    catalog_artists = sorted({s.artist.name for s in catalog})
    artist_names: list[str] = []
    entries: list[PoolEntry] = []
    while len(entries) < size:
        if catalog_artists and rng.random() < 0.05:
            artist = rng.choice(catalog_artists)
        elif artist_names and rng.random() < 0.3:
            artist = rng.choice(artist_names)
        else:
            artist = names.make_artist_name(rng)
            artist_names.append(artist)
        title = names.make_title(rng)
        if (title, artist) in taken:
            continue
        taken.add((title, artist))
        length = _duration(rng)
        entries.append(_entry(title, artist, length))
        if rng.random() < 0.04:
            other = round(max(15.0, length + rng.choice((-1, 1)) * rng.uniform(0.1, 2.0)), 5)
            entries.append(_entry(title, artist, other))
    # Shuffle so that a song and its twin get unrelated popularity ranks.
    rng.shuffle(entries)
    return _zipf_pool(entries, 0.7, 10.0)
