"""Fuzzing the record parser and validators (hypothesis): arbitrary bytes and arbitrary JSON never raise, and a
well-formed event is never lost: it always comes back as a play or a user event with its values."""

from __future__ import annotations

import functools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import reference
from conftest import examples
from musicstream.extract.values import Reject, iter_json_values, raw_text
from musicstream.transform.normalize import length_ms, name_key
from musicstream.transform.records import (
    Skip,
    Song,
    UserEvent,
    keep_latest,
    latest_of,
    parse_event,
    parse_song,
    user_event,
)

OUTCOMES = (tuple, Skip, Reject)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=20,
)
EVENT_KEYS = (
    "artist",
    "firstName",
    "gender",
    "itemInSession",
    "lastName",
    "length",
    "level",
    "location",
    "page",
    "sessionId",
    "song",
    "ts",
    "userAgent",
    "userId",
)
name_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40)


@settings(max_examples=examples(1500), deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse_event(raw), OUTCOMES)
    text, _ = raw_text(raw)
    assert "\x00" not in text


@settings(max_examples=examples(1500), deadline=None)
@given(st.dictionaries(st.sampled_from(EVENT_KEYS) | st.text(max_size=6), json_values, max_size=16))
def test_arbitrary_json_objects_never_raise(obj: dict[str, Any]) -> None:
    assert isinstance(parse_event(json.dumps(obj).encode()), OUTCOMES)
    assert isinstance(parse_song(obj), Song | Reject)


@settings(max_examples=examples(500), deadline=None)
@given(st.text(max_size=200))
def test_song_streams_never_raise(text: str) -> None:
    for _line, value, _raw in iter_json_values(text):
        assert isinstance(value, Reject) or isinstance(parse_song(value), Song | Reject)


@settings(max_examples=examples(1500), deadline=None)
@given(
    user=st.integers(1, 2**31 - 1),
    session=st.integers(0, 2**31 - 1),
    item=st.integers(0, 10_000),
    ts=st.integers(0, 4_102_444_800_000),
    tier=st.sampled_from(["free", "paid"]),
    song=name_text,
    artist=name_text,
    length=st.floats(0, 10_000, allow_nan=False),
    as_string=st.booleans(),
)
def test_good_events_are_never_lost(
    user: int, session: int, item: int, ts: int, tier: str, song: str, artist: str, length: float, as_string: bool
) -> None:
    event = {
        "userId": str(user) if as_string else user,
        "sessionId": session,
        "itemInSession": item,
        "ts": ts,
        "level": tier,
        "page": "NextSong",
        "song": song,
        "artist": artist,
        "length": length,
        "firstName": "A",
        "userAgent": '"Mozilla/5.0"',
    }
    parsed = parse_event(json.dumps(event).encode())
    assert isinstance(parsed, tuple), parsed
    play, user_event = parsed
    assert (play.user_id, play.session_id, play.item_in_session, play.ts, play.tier) == (user, session, item, ts, tier)
    song, artist = reference.repaired(song), reference.repaired(artist)  # rule 6 reads names repaired
    assert (play.song_title, play.artist_name, play.length_ms) == (song, artist, length_ms(length))
    assert (play.title_key, play.artist_key) == (name_key(song), name_key(artist))
    assert play.user_agent == "Mozilla/5.0"
    assert user_event.user_id == user and user_event.first_name == "A"


# Rule 3 across files, in any order: the Spark engine reduces each file's latest events with latest_of in whatever
# order its tasks finish; the local engine keeps the latest in reading order (files by path, lines in order).
# Small ranges make ties on (ts, session, item) common, within a file and across files.
rule3_files = st.dictionaries(
    st.sampled_from(["a.json", "b.json", "c/a.json", "c/b.json", "d.json"]),
    st.lists(st.tuples(st.integers(1, 2), st.integers(0, 2), st.integers(0, 1), st.integers(0, 1)), max_size=8),
    min_size=1,
)


@settings(max_examples=examples(300), deadline=None)
@given(files=rule3_files, data=st.data())
def test_rule3_in_any_order_equals_reading_order(files: dict[str, list[tuple[int, int, int, int]]], data: Any) -> None:
    def event(path: str, line: int, ts: int, session: int, item: int, user: int) -> UserEvent:
        return user_event(ts, session, item, user, f"{path}:{line}", "x", None, "free")

    expected: dict[int, UserEvent] = {}
    per_file: list[tuple[tuple[Any, ...], str]] = []
    for path in sorted(files):  # the local engine's reading order
        kept: dict[int, UserEvent] = {}
        for line, fields in enumerate(files[path]):
            keep_latest(expected, event(path, line, *fields))
            keep_latest(kept, event(path, line, *fields))
        per_file += [(tuple(e), path) for e in kept.values()]
    shuffled = data.draw(st.permutations(per_file))
    by_user: dict[int, list[tuple[tuple[Any, ...], str]]] = {}
    for item in shuffled:
        by_user.setdefault(item[0][3], []).append(item)
    reduced = {user: functools.reduce(latest_of, items)[0] for user, items in by_user.items()}
    assert reduced == {user: tuple(e) for user, e in expected.items()}
