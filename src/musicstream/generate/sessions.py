"""One listening session as eventsim would log it: a small Markov chain over app pages.

The transition weights are rounded from the page-to-page counts of the reference sample (for example,
after a NextSong the next page is another NextSong about 94% of the time, Home 2%, Logout 1.3%), so the
page mix, session shapes and the logged-out episodes after a Logout look like the real logs.

Each event is written straight to its final JSON text by one f-string from fragments encoded once per
user, song and page: no dict, no serializer call.  Only ``ts`` and the line are kept, for the per-day
sort.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

from musicstream.generate.catalog import PlayPool, PoolEntry
from musicstream.generate.users import User

# page -> (method, status), as in the real logs.
PAGES: dict[str, tuple[str, int]] = {
    "NextSong": ("PUT", 200),
    "Home": ("GET", 200),
    "Login": ("PUT", 307),
    "Logout": ("PUT", 307),
    "Downgrade": ("GET", 200),
    "Settings": ("GET", 200),
    "Help": ("GET", 200),
    "About": ("GET", 200),
    "Upgrade": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Error": ("GET", 404),
    "Submit Upgrade": ("PUT", 307),
    "Submit Downgrade": ("PUT", 307),
}

# Fragments between "method":" and ,"registration" / after "status": for each page.
_METHOD_PAGE = {page: f'{method}","page":"{page}' for page, (method, _) in PAGES.items()}
_STATUS = {page: str(status) for page, (_, status) in PAGES.items()}
# Pages reached by a form submit or redirect follow the previous page within a second.
_QUICK = frozenset(page for page, (method, _) in PAGES.items() if method == "PUT" and page != "NextSong")

# Logged-out events carry no user fields at all (null, and userId "").
_HEAD_OUT = ',"auth":"Logged Out","firstName":null,"gender":null,"itemInSession":'
_LAST_OUT = ',"lastName":null,"length":'
_LOC_OUT = '","location":null,"method":"'
_REG_OUT = '","registration":null,"sessionId":'
_TAIL_OUT = ',"userAgent":null,"userId":""}'

# A state is (page, logged in?); None as the next state ends the session.
State = tuple[str, bool]
_TIER = "<tier>"  # stands for Upgrade (free users) or Downgrade (paid users)

_IN: dict[str, list[tuple[str, float]]] = {
    "NextSong": [
        ("NextSong", 5778),
        ("Home", 143),
        ("Logout", 78),
        (_TIER, 62),
        ("Settings", 33),
        ("Help", 32),
        ("About", 14),
        ("Error", 8),
    ],
    "Home": [
        ("NextSong", 431),
        ("Settings", 19),
        ("Logout", 9),
        ("Home", 5),
        (_TIER, 9),
        ("About", 2),
        ("Help", 2),
    ],
    "Downgrade": [("NextSong", 35), ("Home", 10), ("Downgrade", 3), ("Submit Downgrade", 1)],
    "Upgrade": [("Submit Upgrade", 8), ("Home", 5), ("NextSong", 3), ("Upgrade", 2)],
    "Settings": [
        ("NextSong", 30),
        ("Save Settings", 10),
        ("Home", 4),
        ("Settings", 4),
        ("Help", 4),
        ("Logout", 3),
    ],
    "Save Settings": [("Home", 1)],
    "Help": [("NextSong", 30), ("Home", 2), (_TIER, 2), ("Help", 1)],
    "About": [("Home", 4), ("About", 4), ("NextSong", 4)],
    "Error": [("NextSong", 2), ("Home", 1)],
    "Submit Upgrade": [("Home", 1)],
    "Submit Downgrade": [("Home", 1)],
}
_END = "<end>"
_OUT: dict[str, list[tuple[str, float]]] = {
    "Home": [("Login", 61), ("Home", 25), ("About", 13), ("Help", 6), (_END, 66)],
    "About": [("Login", 4), ("Home", 2), ("About", 1), (_END, 7)],
    "Help": [("Login", 2), ("Help", 3), (_END, 4)],
}
# How sessions begin (the sample often starts mid-listening, hence the many NextSong starts).
_START: list[tuple[State, float]] = [
    (("NextSong", True), 507),
    (("Home", True), 351),
    (("Home", False), 54),
    (("Login", False), 25),
    (("About", True), 2),
    (("Help", True), 1),
    (("Error", True), 1),
]

# Fickle users (see users.build_users) go to the Upgrade / Downgrade page after a song more often,
# and are more likely to submit there, so tier changes in both directions show up in a month of data.
FICKLE_TIER_VISIT = 0.03
FICKLE_UPGRADE = 0.6
FICKLE_DOWNGRADE = 0.4


@dataclass(frozen=True, slots=True)
class _Choice:
    """Next states and cumulative weights, for a bisect pick from one ``random()`` draw."""

    states: tuple[State | None, ...]
    cum: tuple[float, ...]

    def pick(self, u: float) -> State | None:
        i = bisect.bisect_right(self.cum, u * self.cum[-1])
        return self.states[min(i, len(self.states) - 1)]


def _choice(pairs: list[tuple[State | None, float]]) -> _Choice:
    return _Choice(tuple(s for s, _ in pairs), tuple(itertools.accumulate(w for _, w in pairs)))


def _build_transitions() -> dict[tuple[str, bool, str], _Choice]:
    table: dict[tuple[str, bool, str], _Choice] = {}
    for level, tier in (("free", "Upgrade"), ("paid", "Downgrade")):
        for page, nexts in _IN.items():
            table[(page, True, level)] = _choice([((tier if p == _TIER else p, True), w) for p, w in nexts])
        for page, nexts in _OUT.items():
            table[(page, False, level)] = _choice([(None if p == _END else (p, False), w) for p, w in nexts])
    return table


_TRANSITIONS = _build_transitions()
_START_CHOICE = _choice([(s, w) for s, w in _START])


@dataclass(frozen=True, slots=True)
class SongPicker:
    """Chooses the song of each play: from the catalog with probability ``catalog_share``."""

    catalog: PlayPool
    outside: PlayPool
    catalog_share: float

    def pick(self, rng: random.Random) -> PoolEntry:
        if rng.random() < self.catalog_share:
            return self.catalog.pick(rng.random())
        return self.outside.pick(rng.random())


@dataclass(frozen=True, slots=True)
class SessionResult:
    end_ms: int
    events: int
    plays: int


def run_session(
    rng: random.Random,
    user: User,
    session_id: int,
    start_ms: int,
    target: int,
    songs: SongPicker,
    out: list[tuple[int, str]],
) -> SessionResult:
    """Append one session's events to ``out`` as ``(ts, line)``; stop at about ``target`` events.

    The session stops at the first point where ``target`` events have been written and the chain is
    free to end; a Logout is always followed by its logged-out Home, and a Login by the logged-in Home,
    as in the real logs.  ``itemInSession`` counts from 0 and has no gaps.  ``user.level`` changes
    after a Submit Upgrade / Submit Downgrade event (that event itself still shows the old level).
    """
    rnd = rng.random
    append = out.append
    sid = str(session_id)
    ts = start_ms
    item = 0
    plays = 0
    state = _START_CHOICE.pick(rnd())
    assert state is not None
    page, logged_in = state
    while True:
        level = user.level
        if logged_in:
            head, last, loc, reg, tail = (
                user.head_frag,
                user.last_frag,
                user.loc_frag,
                user.reg_frag,
                user.tail_frag,
            )
        else:
            head, last, loc, reg, tail = _HEAD_OUT, _LAST_OUT, _LOC_OUT, _REG_OUT, _TAIL_OUT
        duration_ms = 0
        if page == "NextSong":
            artist, song, length, duration_ms = songs.pick(rng)
            plays += 1
        else:
            artist = song = length = "null"
        append(
            (
                ts,
                f'{{"artist":{artist}{head}{item}{last}{length},"level":"{level}{loc}{_METHOD_PAGE[page]}'
                f'{reg}{sid},"song":{song},"status":{_STATUS[page]},"ts":{ts}{tail}',
            )
        )
        item += 1

        # Where next.
        nxt: State | None
        if page == "Logout":
            nxt = ("Home", False)
        elif page == "Login":
            nxt = ("Home", True)
        else:
            if page == "Submit Upgrade":
                user.level = "paid"
            elif page == "Submit Downgrade":
                user.level = "free"
            if item >= target:
                break
            if not user.fickle:
                nxt = _TRANSITIONS[(page, logged_in, user.level)].pick(rnd())
            elif page == "NextSong" and rnd() < FICKLE_TIER_VISIT:
                nxt = ("Upgrade" if user.level == "free" else "Downgrade", True)
            elif page == "Upgrade" and rnd() < FICKLE_UPGRADE:
                nxt = ("Submit Upgrade", True)
            elif page == "Downgrade" and rnd() < FICKLE_DOWNGRADE:
                nxt = ("Submit Downgrade", True)
            else:
                nxt = _TRANSITIONS[(page, logged_in, user.level)].pick(rnd())
            if nxt is None:
                break

        # When next: a played song runs to its end unless the user goes elsewhere first.
        next_page = nxt[0]
        if duration_ms:
            if next_page == "NextSong":
                ts += duration_ms
            else:
                ts += (1 + int(rnd() * (duration_ms // 1000))) * 1000
        elif next_page in _QUICK:
            ts += 1000
        else:
            ts += int(rnd() * 150) * 1000
        page, logged_in = nxt
    return SessionResult(end_ms=ts, events=item, plays=plays)
