"""The sample-data generator writes what the real public sample looks like, deterministically.

The reference side of each comparison is computed here from the real public sample in the project's ``data/``,
so the tests say "like the real data", not "like what we think it is".
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from musicstream.generate import GenerateStats, generate

REAL = Path(__file__).resolve().parents[1] / "data"

Event = dict[str, Any]


def _log_lines(root: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted((root / "log_data").rglob("*.json")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line:  # one real file ends with a newline, the others do not
                yield path, line


def _song_files(root: Path) -> list[Path]:
    return sorted((root / "song_data").rglob("*.json"))


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _types_by_page(events: list[Event]) -> dict[str, dict[str, set[str]]]:
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for e in events:
        for key, value in e.items():
            out[e["page"]][key].add(_type_name(value))
    return out


def _log_style(obj: Event) -> str:
    """How the real logs spell an event: compact, ASCII-only, ``/`` escaped."""
    return json.dumps(obj, separators=(",", ":")).replace("/", "\\/")


@dataclass(frozen=True)
class Sample:
    root: Path
    stats: GenerateStats
    lines: list[tuple[Path, str]]
    events: list[Event]


@pytest.fixture(scope="module")
def real() -> Sample:
    if not REAL.is_dir():
        pytest.fail(f"the real sample is not at {REAL}")
    lines = list(_log_lines(REAL))
    stats = GenerateStats(len(_song_files(REAL)), 30, len(lines), 0, 0)
    return Sample(REAL, stats, lines, [json.loads(line) for _, line in lines])


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """The default data set (100 users, 30 days, 200 songs): about 9,000 events, well under a second."""
    root = tmp_path_factory.mktemp("gen")
    stats = generate(root, seed=0)
    lines = list(_log_lines(root))
    return Sample(root, stats, lines, [json.loads(line) for _, line in lines])


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# (1) Events: per page, the same keys and JSON types as the real sample; same text style.


def test_event_keys_and_types_match_real_per_page(real: Sample, gen: Sample) -> None:
    real_types = _types_by_page(real.events)
    gen_types = _types_by_page(gen.events)
    real_pages = Counter(e["page"] for e in real.events)
    gen_pages = Counter(e["page"] for e in gen.events)

    assert set(gen_pages) <= set(real_pages), "the generator invents pages the real data does not have"
    common = {page for page, n in real_pages.items() if n >= 50}  # NextSong, Home, Login, Logout, ...
    assert {"NextSong", "Home", "Login", "Logout"} <= common
    assert common <= set(gen_pages)
    for page, n in gen_pages.items():
        assert set(gen_types[page]) == set(real_types[page]), page
        for key, types in gen_types[page].items():
            if n >= 30:  # enough events to show every variant (e.g. logged-in and logged-out Home)
                assert types == real_types[page][key], (page, key)
            else:
                assert types <= real_types[page][key], (page, key)


def test_method_status_auth_per_page_match_real(real: Sample, gen: Sample) -> None:
    def combos(events: list[Event]) -> dict[str, set[tuple[str, int, str]]]:
        out: dict[str, set[tuple[str, int, str]]] = defaultdict(set)
        for e in events:
            out[e["page"]].add((e["method"], e["status"], e["auth"]))
        return out

    real_combos, gen_combos = combos(real.events), combos(gen.events)
    for page, seen in gen_combos.items():
        assert seen <= real_combos[page], page
    for page in ("NextSong", "Home", "Login", "Logout", "Save Settings", "Error"):
        assert gen_combos[page] == real_combos[page], page


def test_event_lines_are_spelled_like_the_real_ones(real: Sample, gen: Sample) -> None:
    real_keys = list(real.events[0])
    for sample in (real, gen):
        for (_, line), event in zip(sample.lines, sample.events, strict=True):
            assert list(event) == real_keys
            assert line == _log_style(event)
    assert any("\\/" in line for _, line in gen.lines)
    assert any("\\u" in line for _, line in gen.lines)
    for path in {p for p, _ in gen.lines}:
        assert not path.read_bytes().endswith(b"\n")


# (2) Song files: same keys, order, JSON types and text style as the real ones.


def test_song_files_match_real_keys_types_and_style(real: Sample, gen: Sample) -> None:
    def load(root: Path) -> tuple[list[str], dict[str, set[str]]]:
        keys: list[str] = []
        types: dict[str, set[str]] = defaultdict(set)
        for path in _song_files(root):
            raw = path.read_text(encoding="ascii")
            obj = json.loads(raw)
            assert raw == json.dumps(obj), path  # default spacing, \\u escapes, no trailing newline
            keys = keys or list(obj)
            assert list(obj) == keys, path
            for key, value in obj.items():
                types[key].add(_type_name(value))
        return keys, types

    real_keys, real_types = load(real.root)
    gen_keys, gen_types = load(gen.root)
    assert gen_keys == real_keys
    assert gen_types == real_types

    songs = [json.loads(p.read_bytes()) for p in _song_files(gen.root)]
    assert any(s["year"] == 0 for s in songs) and any(s["year"] > 1900 for s in songs)
    assert any(s["artist_latitude"] is None for s in songs)
    assert any(s["artist_location"] == "" for s in songs)
    assert all(s["num_songs"] == 1 for s in songs)
    assert any(not s["title"].isascii() or not s["artist_name"].isascii() for s in songs)
    assert len({s["song_id"] for s in songs}) == len(songs) == gen.stats.song_files


# (3) Determinism.


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"users": 15, "days": 4, "songs": 30}
    a = generate(tmp_path / "a", seed=5, **kwargs)
    b = generate(tmp_path / "b", seed=5, **kwargs)
    c = generate(tmp_path / "c", seed=6, **kwargs)
    assert a == b
    tree_a = _tree(tmp_path / "a")
    assert tree_a == _tree(tmp_path / "b")
    assert tree_a != _tree(tmp_path / "c")
    assert c.events > 0


def test_rerun_into_same_folder_overwrites_and_keeps_foreign_files(tmp_path: Path) -> None:
    generate(tmp_path, users=5, days=2, songs=10, seed=1)
    first = _tree(tmp_path)
    foreign = tmp_path / "song_data" / "README.txt"
    foreign.write_text("not ours")
    generate(tmp_path, users=5, days=2, songs=10, seed=1)
    after = _tree(tmp_path)
    assert after.pop("song_data/README.txt") == b"not ours"
    assert after == first


# (4) Layout and file naming.


def test_layout_and_names(gen: Sample) -> None:
    songs = _song_files(gen.root)
    assert len(songs) == gen.stats.song_files == 200
    for path in songs:
        rel = path.relative_to(gen.root).as_posix()
        m = re.fullmatch(r"song_data/([A-Z])/([A-Z])/([A-Z])/(TR[A-Z0-9]{16})\.json", rel)
        assert m, rel
        assert m.group(4)[2:5] == m.group(1) + m.group(2) + m.group(3)
        assert json.loads(path.read_bytes())["song_id"].startswith("SO")

    logs = sorted((gen.root / "log_data").rglob("*.json"))
    assert len(logs) == gen.stats.log_files == 30
    first = datetime.date(2018, 11, 1)
    for i, path in enumerate(logs):
        day = first + datetime.timedelta(days=i)
        assert path.relative_to(gen.root).as_posix() == f"log_data/{day:%Y/%m/%Y-%m-%d}-events.json"
    assert {p.name for p in gen.root.iterdir()} == {"song_data", "log_data"}


def test_days_are_sorted_utc_days_and_stats_are_exact(gen: Sample) -> None:
    by_file: dict[Path, list[Event]] = defaultdict(list)
    for (path, _), event in zip(gen.lines, gen.events, strict=True):
        by_file[path].append(event)
    for path, events in by_file.items():
        day = datetime.date.fromisoformat(path.name[:10])
        start = int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp()) * 1000
        stamps = [e["ts"] for e in events]
        assert stamps == sorted(stamps)
        assert start <= stamps[0] and stamps[-1] < start + 86_400_000
    assert gen.stats.events == len(gen.events)
    assert gen.stats.plays == sum(e["page"] == "NextSong" for e in gen.events)
    assert gen.stats.bytes_written == sum(len(b) for b in _tree(gen.root).values())


# (5) Behaviour like the real sample.


def test_logged_out_events_look_like_the_real_ones(gen: Sample) -> None:
    out = [e for e in gen.events if e["auth"] == "Logged Out"]
    assert len(out) > 50
    nulls = ("firstName", "lastName", "gender", "location", "userAgent", "registration")
    for e in out:
        assert e["userId"] == ""
        assert all(e[k] is None for k in nulls)
        assert e["page"] in {"Home", "Login", "About", "Help"}
    assert all(e["userId"] != "" for e in gen.events if e["auth"] == "Logged In")
    assert {e["page"] for e in out} >= {"Home", "Login"}


def test_sessions_are_contiguous_and_belong_to_one_user(gen: Sample) -> None:
    sessions: dict[int, list[Event]] = defaultdict(list)
    for e in gen.events:
        sessions[e["sessionId"]].append(e)
    crossing = 0
    for sid, events in sessions.items():
        events.sort(key=lambda e: e["itemInSession"])
        assert [e["itemInSession"] for e in events] == list(range(len(events))), sid
        assert len({e["userId"] for e in events} - {""}) <= 1, sid
        stamps = [e["ts"] for e in events]
        assert stamps == sorted(stamps), sid
        crossing += len({datetime.datetime.fromtimestamp(t / 1000, datetime.UTC).date() for t in stamps}) > 1
        for prev, cur in itertools.pairwise(events):
            if prev["page"] == "Logout":
                assert (cur["page"], cur["auth"]) == ("Home", "Logged Out")
            if prev["page"] == "NextSong" and cur["page"] == "NextSong":
                assert abs((cur["ts"] - prev["ts"]) / 1000 - prev["length"]) < 1
            if cur["level"] != prev["level"]:  # only a submitted form changes the tier
                want = "Submit Upgrade" if cur["level"] == "paid" else "Submit Downgrade"
                assert prev["page"] == want, sid
    assert crossing > 0, "some sessions run past midnight, as in the real sample"
    assert len(sessions) > 500

    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for events in sessions.values():
        user = next((e["userId"] for e in events if e["userId"]), None)
        if user:
            spans[user].append((events[0]["ts"], events[-1]["ts"]))
    for user, intervals in spans.items():
        intervals.sort()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(intervals)), f"user {user}'s sessions overlap"


def test_some_users_change_level_both_ways(gen: Sample) -> None:
    levels: dict[str, list[str]] = defaultdict(list)
    for e in sorted(gen.events, key=lambda e: e["ts"]):
        if e["userId"]:
            levels[e["userId"]].append(e["level"])
    changes = {user: {(a, b) for a, b in itertools.pairwise(seq) if a != b} for user, seq in levels.items()}
    assert any(c == {("free", "paid"), ("paid", "free")} for c in changes.values())
    assert sum(bool(c) for c in changes.values()) >= 3


def test_plays_mostly_outside_the_catalog_some_exactly_inside(gen: Sample) -> None:
    catalog = {}
    for path in _song_files(gen.root):
        s = json.loads(path.read_bytes())
        catalog[(s["title"], s["artist_name"])] = s["duration"]
    plays = [e for e in gen.events if e["page"] == "NextSong"]
    lengths: dict[tuple[str, str], set[float]] = defaultdict(set)
    for e in plays:
        lengths[(e["song"], e["artist"])].add(e["length"])

    inside = [pair for pair in lengths if pair in catalog]
    assert len(inside) >= 10
    assert len(inside) < 0.1 * len(lengths)
    assert all(lengths[pair] == {catalog[pair]} for pair in inside), "catalog plays match exactly"
    share = sum((e["song"], e["artist"]) in catalog for e in plays) / len(plays)
    assert 0.01 < share < 0.06

    assert sum(len(v) > 1 for v in lengths.values()) >= 5, "same song played with two lengths"
    assert any(not (t + a).isascii() for t, a in lengths)
    top = Counter((e["song"], e["artist"]) for e in plays).most_common(1)[0][1]
    assert top >= 10, "popularity is skewed"


def test_users_look_like_eventsim_users(gen: Sample) -> None:
    users: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for e in gen.events:
        if e["userId"]:
            users[e["userId"]].add(
                (e["firstName"], e["lastName"], e["gender"], e["location"], e["userAgent"], e["registration"])
            )
    assert len(users) > 80
    assert all(len(v) == 1 for v in users.values()), "a user's attributes never change"
    attrs = [next(iter(v)) for v in users.values()]
    assert {a[2] for a in attrs} == {"F", "M"}
    assert all(re.fullmatch(r".+, [A-Z]{2}(-[A-Z]{2})*", a[3]) for a in attrs)
    quoted = sum(a[4].startswith('"') and a[4].endswith('"') for a in attrs)
    assert len(attrs) / 2 < quoted < len(attrs)
    first_ts = min(e["ts"] for e in gen.events)
    assert all(isinstance(a[5], float) and a[5] < first_ts for a in attrs)


# Volume and arguments.


def test_events_target_sets_the_total(tmp_path: Path) -> None:
    stats = generate(tmp_path, users=40, days=10, songs=20, events=20_000, seed=3)
    assert 18_000 < stats.events < 22_000
    assert 0.75 < stats.plays / stats.events < 0.92


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 0}, "users"),
        ({"days": -1}, "days"),
        ({"songs": 2.5}, "songs"),
        ({"users": True}, "users"),
        ({"events": 0}, "events"),
        ({"seed": "x"}, "seed"),
        ({"events_per_user_day": 0}, "events_per_user_day"),
        ({"events_per_user_day": float("nan")}, "events_per_user_day"),
        ({"catalog_share": 1.5}, "catalog_share"),
        ({"start": "2018-11-01"}, "start"),
    ],
)
def test_invalid_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        generate(target, users=1, days=1, songs=1)


def test_drip_lands_whole_files_over_time(tmp_path: Path) -> None:
    """`generate --drip`: the song files at once, then log files of the chosen size, each renamed into place (no
    temporary file left), in time order, with sessions numbered apart from a sample's."""
    from musicstream.generate.drip import FIRST_SESSION, Landed, drip

    landed: list[Landed] = []
    stats = drip(tmp_path, rate=50_000, file_events=400, files=4, users=50, songs=5, on_file=landed.append)
    assert (stats.song_files, stats.log_files, stats.events) == (5, 4, 1600)
    assert len(list((tmp_path / "song_data").rglob("*.json"))) == 5
    logs = sorted((tmp_path / "log_data").rglob("*"))
    assert not [p for p in logs if p.name.endswith(".tmp")]
    assert [f.path for f in landed] == sorted(f.path for f in landed)
    assert [f.landed_at for f in landed] == sorted(f.landed_at for f in landed)
    events = [json.loads(line) for f in landed for line in f.path.read_text().splitlines()]
    assert len(events) == 1600 and all(f.events == 400 for f in landed)
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert min(e["sessionId"] for e in events) >= FIRST_SESSION
    again = tmp_path / "again"
    drip(again, rate=50_000, file_events=400, files=4, users=50, songs=5)
    assert [p.read_bytes() for p in sorted((again / "log_data").rglob("*.json"))] == [
        f.path.read_bytes() for f in landed
    ]


def test_drip_stops_after_its_seconds(tmp_path: Path) -> None:
    from musicstream.generate.drip import drip

    stats = drip(tmp_path, rate=1000, file_events=100, seconds=0.5, users=20, songs=1)
    assert stats.log_files == 5  # files land at 0, 0.1, ... 0.4 s; the one due at 0.5 s is not written
