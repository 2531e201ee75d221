"""Write a deterministic sample data set with the layout and JSON shape of the real public sample.

Layout written under ``out``::

    song_data/A/B/C/TRABC....json          one JSON object per file (the song catalog)
    log_data/YYYY/MM/YYYY-MM-DD-events.json newline-delimited events of that UTC day, sorted by ts

Why it is built this way:

* Determinism: every random draw comes from a ``random.Random`` seeded with a string derived from
  ``seed`` (string seeds are hashed with SHA-512, not with the per-process ``hash()``), one stream per
  concern.  So the catalog does not change when only the volume changes, and the same arguments always
  give byte-identical files.
* Streaming: events are generated one UTC day at a time, sorted, written, and dropped.  Sessions that
  run past midnight carry their remaining events into the next day's file, as 11 of the real sample's
  941 sessions do; whatever runs past the last day is not written.
* Volume: each user has a log-normal activity weight and each day a random busy-ness factor; a user's
  number of sessions on a day is Poisson distributed so that the expected events are
  ``events_per_user_day * users * (user's share of activity) * (day factor)``, and each day is steered
  towards the planned running total, so totals land within a few percent of
  ``events_per_user_day * users * days`` (the real sample has about 2.8 per user per day).  ``events``
  sets that total directly.  A user's sessions follow one another as long as that fits in the day
  (about 250 events); the heaviest users reach that at an average of some 30 events per user per day,
  and beyond it some of their sessions overlap in time.  Raise ``users`` rather than the rate for big
  data sets.
* Only files the generator names are written (existing ones are overwritten); nothing is deleted, so
  generate into an empty folder to get exactly one data set.
"""

from __future__ import annotations

import bisect
import datetime
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from musicstream.generate.catalog import Song, build_catalog, catalog_pool, outside_pool
from musicstream.generate.jsonfmt import song_file_text
from musicstream.generate.sessions import SongPicker, run_session
from musicstream.generate.users import DAY_MS, MS_OFFSET, User, build_users, epoch_ms

DEFAULT_START = datetime.date(2018, 11, 1)
# Plays that name a catalog song.  The real sample has 1 in 6,820; a few percent exercises matching.
DEFAULT_CATALOG_SHARE = 0.03
# Bounds of the pool of non-catalog songs, sized to the expected number of plays so that, as in the
# real sample (5,295 distinct songs in 6,820 plays), most played songs are played only once or twice.
MIN_OUTSIDE_SONGS = 2_000
MAX_OUTSIDE_SONGS = 150_000
# How far past midnight a user's sessions may be pushed to avoid overlapping each other.
SPILL_LIMIT_MS = 6 * 3_600_000


@dataclass(frozen=True)
class GenerateStats:
    """What one ``generate`` call wrote."""

    song_files: int
    log_files: int
    events: int
    plays: int  # NextSong events
    bytes_written: int


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _validate(
    out: Path,
    users: int,
    days: int,
    songs: int,
    seed: int,
    start: datetime.date,
    events_per_user_day: float,
    events: int | None,
    catalog_share: float,
) -> None:
    _positive_int("users", users)
    _positive_int("days", days)
    _positive_int("songs", songs)
    if events is not None:
        _positive_int("events", events)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not isinstance(start, datetime.date) or isinstance(start, datetime.datetime):
        raise ValueError(f"start must be a datetime.date, got {start!r}")
    try:
        start + datetime.timedelta(days=days)
    except OverflowError:
        raise ValueError(f"start {start} plus {days} days is past the year 9999") from None
    rate: object = events_per_user_day
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"events_per_user_day must be a positive number, got {rate!r}")
    share: object = catalog_share
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise ValueError(f"catalog_share must be a number from 0 to 1, got {share!r}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a folder")


def _stream(seed: int, name: str) -> random.Random:
    """An independent, reproducible random stream for one concern of the generator."""
    return random.Random(f"musicstream-generate:{seed}:{name}")


def _write_song_files(out: Path, catalog: list[Song]) -> tuple[int, int]:
    made: set[Path] = set()
    written = 0
    for song in catalog:
        path = out.joinpath(song.relative_path())
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        data = song_file_text(song.record()).encode("ascii")
        path.write_bytes(data)
        written += len(data)
    return len(catalog), written


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's method for small means, a normal approximation for large ones)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# Mean events per session that _session_length and run_session give together, measured over 120,000
# sessions: the target's mean is 8.35, but a Logout often ends a session early (a logged-out user who
# does not log back in), which brings the mean down.
MEAN_SESSION_EVENTS = 7.45


def _session_length(rng: random.Random) -> int:
    """Target events in a session: mostly a handful, sometimes dozens (the sample's mean is about 8.6)."""
    mean = 2.5 if rng.random() < 0.7 else 22.0
    return 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - 1.0 / mean))


def _day_factors(rng: random.Random, days: int) -> list[float]:
    """Busy and quiet days (the sample's daily counts range from 15 to 533), averaging exactly 1."""
    raw = [rng.lognormvariate(0.0, 0.4) for _ in range(days)]
    mean = sum(raw) / days
    return [f / mean for f in raw]


@dataclass
class _Counters:
    next_session: int = 1
    events: int = 0
    plays: int = 0


def _user_day(
    rng: random.Random,
    user: User,
    day_start: int,
    expected_events: float,
    picker: SongPicker,
    counters: _Counters,
    buf: list[tuple[int, str]],
) -> None:
    """A user's sessions of one day, at random times, one after another while that fits.

    The number of sessions is Poisson distributed so that the expected number of events is
    ``expected_events``; session lengths are not cut to fit a budget, which would skew them short.
    A session that would start while the user's previous one (perhaps from the day before) is still
    running waits for it, unless that would push it more than ``SPILL_LIMIT_MS`` past midnight: only
    users with more than a day's worth of listening get overlapping sessions.
    """
    n_sessions = _poisson(rng, expected_events / MEAN_SESSION_EVENTS)
    if not n_sessions:
        return
    starts = sorted(int(rng.random() * 86_400) for _ in range(n_sessions))
    limit = day_start + DAY_MS + SPILL_LIMIT_MS
    for offset in starts:
        start_ms = day_start + offset * 1000 + MS_OFFSET
        if start_ms < user.busy_until <= limit:
            start_ms = user.busy_until
        target = _session_length(rng)
        result = run_session(rng, user, counters.next_session, start_ms, target, picker, buf)
        counters.next_session += 1
        counters.events += result.events
        counters.plays += result.plays
        pause = (60 + int(rng.random() * 1800)) * 1000
        user.busy_until = max(user.busy_until, result.end_ms + pause)


def _cut_day(day: datetime.date, buf: list[tuple[int, str]]) -> tuple[list[str], list[tuple[int, str]]]:
    """Sort ``buf`` by ts: the lines of ``day``, and the later events.  The sort is stable, so events with
    equal ts keep their order within a session."""
    buf.sort(key=itemgetter(0))
    cut = bisect.bisect_left(buf, epoch_ms(day) + DAY_MS, key=itemgetter(0))
    return [line for _, line in buf[:cut]], buf[cut:]


def generate(
    out: Path,
    *,
    users: int = 100,
    days: int = 30,
    songs: int = 200,
    seed: int = 0,
    start: datetime.date = DEFAULT_START,
    events_per_user_day: float = 3.0,
    events: int | None = None,
    catalog_share: float = DEFAULT_CATALOG_SHARE,
) -> GenerateStats:
    """Write ``songs`` song files and ``days`` days of event logs for ``users`` users under ``out``.

    Volume is ``events_per_user_day`` events per user per day on average; ``events``, when given,
    overrides it with a target total ("about this many events").  ``catalog_share`` is the share of
    plays that name a catalog song (exactly its title, artist name and duration); the rest name songs
    that are not in the catalog.  Days without any event get no file.  Raises ``ValueError`` for
    invalid arguments.
    """
    out = Path(out)
    _validate(out, users, days, songs, seed, start, events_per_user_day, events, catalog_share)
    catalog = build_catalog(_stream(seed, "catalog"), songs)
    song_files, song_bytes = _write_song_files(out, catalog)
    counters = _Counters()
    log_files = 0
    log_bytes = 0
    for day, lines in event_days(
        catalog,
        users=users,
        days=days,
        seed=seed,
        start=start,
        rate=events / (users * days) if events is not None else float(events_per_user_day),
        catalog_share=catalog_share,
        counters=counters,
    ):
        if not lines:
            continue
        data = "\n".join(lines).encode("ascii")
        path = out / "log_data" / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}-events.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        log_files += 1
        log_bytes += len(data)
    return GenerateStats(
        song_files=song_files,
        log_files=log_files,
        events=counters.events,
        plays=counters.plays,
        bytes_written=song_bytes + log_bytes,
    )


def event_days(
    catalog: list[Song],
    *,
    users: int,
    days: int,
    seed: int,
    start: datetime.date,
    rate: float,
    catalog_share: float,
    counters: _Counters,
) -> Iterator[tuple[datetime.date, list[str]]]:
    """Each day's event lines (JSON, sorted by ts), one day at a time; ``counters`` counts what was yielded."""
    expected_plays = rate * users * days * 0.85
    outside_size = int(min(MAX_OUTSIDE_SONGS, max(MIN_OUTSIDE_SONGS, 2 * expected_plays)))
    picker = SongPicker(
        catalog=catalog_pool(_stream(seed, "catalog-plays"), catalog),
        outside=outside_pool(_stream(seed, "outside-songs"), catalog, outside_size),
        catalog_share=float(catalog_share),
    )
    user_list = build_users(_stream(seed, "users"), users, start)
    rng = _stream(seed, "events")
    factors = _day_factors(rng, days)
    total_activity = sum(u.activity for u in user_list)
    per_activity = rate * users / total_activity

    planned = 0.0
    carry: list[tuple[int, str]] = []
    for d in range(days):
        day = start + datetime.timedelta(days=d)
        # Steer towards the planned running total, so that the randomness of session counts and
        # lengths does not add up over many days: "about N events" stays within a few percent.
        day_plan = rate * users * factors[d]
        planned += day_plan
        steer = min(4.0, max(0.25, (planned - counters.events) / day_plan))
        day_start = epoch_ms(day)
        buf = carry
        for user in user_list:
            expected = per_activity * user.activity * factors[d] * steer
            _user_day(rng, user, day_start, expected, picker, counters, buf)
        lines, carry = _cut_day(day, buf)
        yield day, lines
    # Events that ran past the last day were generated but not written.
    counters.events -= len(carry)
    counters.plays -= sum(1 for _, line in carry if '"page":"NextSong"' in line)
