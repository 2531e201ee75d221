"""The rules on one record: a decoded event or song → a typed row, a skip, or a reject reason (rules 1, 3, 5, 10)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from musicstream.extract.fields import INT_MAX, INT_MIN, MAX_KEY_CHARS, BadField, integer, key_text, number, text
from musicstream.extract.values import Reject
from musicstream.rules import MAX_LENGTH_S, TIERS
from musicstream.transform.names import repair_name
from musicstream.transform.normalize import length_ms, name_key

# Rule 6's reading of a name: ``names.repair_name``, or a ``names.NameReader`` that also notes the repairs.
Names = Callable[[str], str]

# 0001-01-01 .. 9999-12-31 in epoch milliseconds: what a PostgreSQL TIMESTAMP can hold and Python can show.
TS_MIN, TS_MAX = -62135596800000, 253402300799999


class Play(NamedTuple):
    """A NextSong event: one row of the staging table for trackplays."""

    user_id: int
    session_id: int
    item_in_session: int
    ts: int
    tier: str
    location: str | None
    user_agent: str | None
    song_title: str
    artist_name: str
    length_ms: int
    title_key: str
    artist_key: str


class UserEvent(NamedTuple):
    """What any event with a user says about that user, ordered by (ts, session, item) for rule 3."""

    ts: int
    session_id: int
    item_in_session: int
    user_id: int
    first_name: str
    last_name: str
    gender: str | None
    tier: str


UNKNOWN_NAME = "Unknown"


def user_event(
    ts: int, session: int, item: int, user_id: int, first: str | None, last: str | None, gender: str | None, tier: str
) -> UserEvent:
    """The user an event describes. ``users.first_name/last_name`` are NOT NULL (the seed's model): an event with
    no name gives ``Unknown``, the unknown-member attribute, and its play still loads."""
    return UserEvent(ts, session, item, user_id, first or UNKNOWN_NAME, last or UNKNOWN_NAME, gender, tier)


def keep_latest(users: dict[int, UserEvent], event: UserEvent) -> None:
    """Rule 3 in reading order: keep, per user, the event that is latest by (ts, session, item) (a UserEvent's first
    three fields); ties keep the one seen first. Files are read in the order of their paths."""
    current = users.get(event.user_id)
    if current is None or event[:3] > current[:3]:
        users[event.user_id] = event


def latest_of(a: tuple[tuple[Any, ...], str], b: tuple[tuple[Any, ...], str]) -> tuple[tuple[Any, ...], str]:
    """Rule 3 in any order: of two events of one user (a UserEvent's fields), each with the path of its file (each
    file's latest, as ``keep_latest`` kept it), the later by (ts, session, item); of equals, the one of the file
    whose path sorts first, the one ``keep_latest`` would have seen first. Associative and commutative, so that
    the Spark engine can reduce with it in whatever order its tasks finish, and get what the local engine keeps."""
    if a[0][:3] != b[0][:3]:
        return a if a[0][:3] > b[0][:3] else b
    return a if a[1] <= b[1] else b


class Song(NamedTuple):
    """One song-file record: a catalog track and its artist."""

    track_id: str
    title: str
    artist_id: str
    artist_name: str
    year: int | None
    duration: float
    location: str | None
    latitude: float | None
    longitude: float | None
    title_key: str
    artist_key: str


@dataclass(frozen=True, slots=True)
class Skip:
    """A record skipped by rule: a logged-out event, or an event that is not a play."""

    reason: str
    user: UserEvent | None = None


LOGGED_OUT = Skip("logged out")


def _strip_quotes(agent: str | None) -> str | None:
    if agent is not None and len(agent) >= 2 and agent[0] == '"' and agent[-1] == '"':
        agent = agent[1:-1] or None
    return agent


def _decode(raw: bytes) -> dict[str, Any] | Reject:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Reject(f"malformed JSON: {exc}")
    if not isinstance(obj, dict):
        return Reject(f"not a JSON object (a JSON {type(obj).__name__})")
    return obj


def _opt_text(value: Any) -> str | None:
    """A well-typed optional text field (str or None), "" as None; anything else raises TypeError."""
    if value is None or type(value) is str:
        return value or None
    raise TypeError


def _play(
    user: UserEvent, location: str | None, agent: str | None, song: str, artist: str, length: float, names: Names
) -> Play:
    """Rule 1: the play an event describes (both event paths build it here), its names read by rule 6."""
    song, artist = names(song), names(artist)
    return Play(
        user.user_id,
        user.session_id,
        user.item_in_session,
        user.ts,
        user.tier,
        location,
        agent,
        song,
        artist,
        length_ms(length),
        name_key(song),
        name_key(artist),
    )


def _fast_event(obj: dict[str, Any], names: Names) -> tuple[Play, UserEvent] | Skip | None:
    """The common case, with no conversion needed; None sends the record to the careful path.

    The caller has checked that the line holds no escaped NUL, so no string here can contain one.
    """
    try:
        uid = obj["userId"]
        if uid == "" or uid is None:
            return LOGGED_OUT
        page, ts, session_id, item, tier = (
            obj["page"],
            obj["ts"],
            obj["sessionId"],
            obj["itemInSession"],
            obj["level"],
        )
        if not (
            type(uid) is str
            and uid.isdigit()
            and len(uid) < 10
            and type(page) is str
            and page
            and type(ts) is int
            and TS_MIN <= ts <= TS_MAX
            and type(session_id) is int
            and type(item) is int
            and INT_MIN <= session_id <= INT_MAX
            and INT_MIN <= item <= INT_MAX
            and tier in TIERS
        ):
            return None
        user = user_event(
            ts,
            session_id,
            item,
            int(uid),
            _opt_text(obj.get("firstName")),
            _opt_text(obj.get("lastName")),
            _opt_text(obj.get("gender")),
            tier,
        )
        location = _opt_text(obj.get("location"))
        agent = _strip_quotes(_opt_text(obj.get("userAgent")))
        if page != "NextSong":
            return Skip("not a play", user)
        song, artist, length = obj["song"], obj["artist"], obj["length"]
        if not (
            type(song) is str
            and 0 < len(song) <= MAX_KEY_CHARS
            and type(artist) is str
            and 0 < len(artist) <= MAX_KEY_CHARS
            and type(length) is float
            and 0 <= length < MAX_LENGTH_S
        ):
            return None
    except (KeyError, TypeError):
        return None
    return _play(user, location, agent, song, artist, length, names), user


def parse_event(raw: bytes, names: Names = repair_name) -> tuple[Play, UserEvent] | Skip | Reject:
    """One log line → a play with its user event, a skip (maybe with a user event), or a reject. ``names`` reads
    the song and artist (rule 6)."""
    obj = _decode(raw)
    if isinstance(obj, Reject):
        return obj
    if b"\\u0000" not in raw:
        fast = _fast_event(obj, names)
        if fast is not None:
            return fast
    return _careful_event(obj, names)


def _careful_event(obj: dict[str, Any], names: Names) -> tuple[Play, UserEvent] | Skip | Reject:
    """Every field checked and converted where docs/rules.md allows, with a reason for each reject."""
    try:
        uid = obj.get("userId")
        if "userId" not in obj:
            raise BadField("missing required field 'userId'")
        if uid is None or uid == "":
            return LOGGED_OUT
        page = text(obj, "page", required=True)
        user_id = integer(obj, "userId", required=True)
        ts = integer(obj, "ts", required=True, lo=TS_MIN, hi=TS_MAX)
        session_id = integer(obj, "sessionId", required=True)
        item = integer(obj, "itemInSession", required=True)
        tier = text(obj, "level", required=True)
        if tier not in TIERS:
            raise BadField(f"field 'level': expected {' or '.join(map(repr, TIERS))}, got {tier!r}")
        assert user_id is not None and ts is not None and session_id is not None and item is not None
        user = user_event(
            ts,
            session_id,
            item,
            user_id,
            text(obj, "firstName"),
            text(obj, "lastName"),
            text(obj, "gender"),
            tier,
        )
        location = text(obj, "location")
        agent = _strip_quotes(text(obj, "userAgent"))
        if page != "NextSong":
            return Skip("not a play", user)
        song = key_text(obj, "song")
        artist = key_text(obj, "artist")
        length = number(obj, "length", required=True)
        assert song is not None and artist is not None and length is not None
        if not 0 <= length < MAX_LENGTH_S:
            raise BadField(f"field 'length': {length} is not a plausible song length in seconds")
    except BadField as exc:
        return Reject(str(exc))
    return _play(user, location, agent, song, artist, length, names), user


def parse_song(obj: Any, names: Names = repair_name) -> Song | Reject:
    """One song-file JSON value → a catalog song, or a reject. ``names`` reads the title and artist name (rule 6)."""
    if not isinstance(obj, dict):
        return Reject(f"not a JSON object (a JSON {type(obj).__name__})")
    try:
        orjson.dumps(obj)
    except TypeError as exc:
        return Reject(f"invalid text: {exc}")
    try:
        track_id = key_text(obj, "song_id")
        title = key_text(obj, "title")
        artist_id = key_text(obj, "artist_id")
        artist_name = key_text(obj, "artist_name")
        assert track_id is not None and title is not None and artist_id is not None and artist_name is not None
        title, artist_name = names(title), names(artist_name)
        year = integer(obj, "year")
        duration = number(obj, "duration", required=True)  # tracks.duration is NOT NULL (the seed's model)
        assert duration is not None
        if duration < 0:
            raise BadField(f"field 'duration': {duration} is negative")
        song = Song(
            track_id,
            title,
            artist_id,
            artist_name,
            year or None,
            duration,
            text(obj, "artist_location"),
            number(obj, "artist_latitude"),
            number(obj, "artist_longitude"),
            name_key(title),
            name_key(artist_name),
        )
    except BadField as exc:
        return Reject(str(exc))
    return song
