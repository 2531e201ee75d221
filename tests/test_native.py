"""The native log parser against the Python one, line by line: same plays, users, skips, rejects, counts.

``engines.native`` is a second dialect of rules 1, 3 and 10 (compiled code for plain lines); the Python path in
``transform.records`` is their definition. Here both read the same files — plain eventsim lines mixed with every
kind of odd line we know (types, duplicate keys, escapes, white space, bounds, encodings) — and must agree; the
odd lines must reach the Python path, the plain ones must not.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import examples
from musicstream.db.connection import Database
from musicstream.engines import native, read
from musicstream.engines.read import LogBatchTask, LogTask, Parsed, parse_log_lines, parse_log_native
from musicstream.load.staging import PLAY_COLUMNS
from musicstream.transform.normalize import name_key
from musicstream.transform.records import keep_latest

AGENTS = ['"Mozilla/5.0 (Windows NT 6.1)"', "Mozilla/5.0 (X11)", '""', '"', "", None]


def event(rng: random.Random, page: str = "NextSong", user: str | None = None) -> dict[str, Any]:
    """A plain event in the generator's key order."""
    uid = user if user is not None else str(rng.randint(1, 60))
    return {
        # a damaged name of each kind rule 6 repairs: double-encoded UTF-8, a curly quote cut to its low byte
        "artist": rng.choice(["Muse", "Björk", "  The  Killers ", "ＡＢＣ", "BjÃ\x83Â¶rk"])
        if page == "NextSong"
        else None,
        "auth": "Logged In",
        "firstName": rng.choice(["Ann", "", None, "Zoë"]),
        "gender": rng.choice(["F", "M", "", None]),
        "itemInSession": rng.randint(0, 40),
        "lastName": rng.choice(["Lee", "", None]),
        "length": rng.choice([154.77392, 0.0005, 2.0005, 1.5, 0.0, 199.99999]) if page == "NextSong" else None,
        "level": rng.choice(["free", "paid"]),
        "location": rng.choice(["Tampa, FL", "", None]),
        "method": "PUT",
        "page": page,
        "registration": 1540035677796.0,
        "sessionId": rng.randint(1, 30),
        "song": rng.choice(["Yellow", "Hyperballad", "Mr. Brightside", "Ⅻ tone", "Don\x19t"])
        if page == "NextSong"
        else None,
        "status": 200,
        "ts": 1541030411796 + rng.randint(0, 10_000) * 1000,
        "userAgent": rng.choice(AGENTS),
        "userId": uid,
    }


def dump(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj)


def _swap(line: bytes, key: str, value: bytes) -> bytes:
    """The line with ``key``'s value replaced by the raw JSON text ``value``."""
    obj = orjson.loads(line)
    obj[key] = "\x01PLACEHOLDER\x01"
    return dump(obj).replace(b'"\\u0001PLACEHOLDER\\u0001"', value)


# Odd variants of a plain line: each must take the Python path (or be blank, which both skip).
ODD: list[tuple[str, Any]] = [
    ("user id as a number", lambda line: _swap(line, "userId", b"12")),
    ("user id with a sign", lambda line: _swap(line, "userId", b'"+12"')),
    ("user id of Arabic-Indic digits", lambda line: _swap(line, "userId", '"٣"'.encode())),
    ("user id of ten digits", lambda line: _swap(line, "userId", b'"1234567890"')),
    ("ts as a string", lambda line: _swap(line, "ts", b'"1541030411796"')),
    ("ts as a float", lambda line: _swap(line, "ts", b"1541030411796.0")),
    ("ts past year 9999", lambda line: _swap(line, "ts", b"253402300800000")),
    ("ts of 20 digits", lambda line: _swap(line, "ts", b"99999999999999999999")),
    ("session past 32 bits", lambda line: _swap(line, "sessionId", b"2147483648")),
    ("item as true", lambda line: _swap(line, "itemInSession", b"true")),
    ("length as an integer", lambda line: _swap(line, "length", b"200")),
    ("length as a string", lambda line: _swap(line, "length", b'"200.5"')),
    ("negative length", lambda line: _swap(line, "length", b"-1.5")),
    ("huge length", lambda line: _swap(line, "length", b"2e6")),
    ("length 1e400", lambda line: _swap(line, "length", b"1e400")),
    ("level Paid", lambda line: _swap(line, "level", b'"Paid"')),
    ("level null", lambda line: _swap(line, "level", b"null")),
    ("page empty", lambda line: _swap(line, "page", b'""')),
    ("first name a number", lambda line: _swap(line, "firstName", b"5")),
    ("gender a list", lambda line: _swap(line, "gender", b'["F"]')),
    ("location an object", lambda line: _swap(line, "location", b'{"city":"x"}')),
    ("agent true", lambda line: _swap(line, "userAgent", b"true")),
    ("song a number", lambda line: _swap(line, "song", b"7")),
    ("song empty", lambda line: _swap(line, "song", b'""')),
    ("song only spaces", lambda line: _swap(line, "song", b'"   "')),
    ("artist of 1001 characters", lambda line: _swap(line, "artist", b'"' + b"a" * 1001 + b'"')),
    ("escaped NUL", lambda line: _swap(line, "firstName", b'"A\\u0000B"')),
    ("lone surrogate", lambda line: _swap(line, "song", b'"x\\ud800"')),
    ("surrogate pair", lambda line: _swap(line, "song", b'"x\\ud83d\\ude00"')),
    ("escaped key", lambda line: line.replace(b'"firstName"', b'"first\\u004eame"')),
    ("duplicate key, null last", lambda line: line[:-1] + b',"userId":null}'),
    ("duplicate key, string last", lambda line: line[:-1] + b',"firstName":"Other"}'),
    ("a missing key", lambda line: _drop(line, "gender")),
    ("keys in another order", lambda line: dump(dict(reversed(list(orjson.loads(line).items()))))),
    ("an extra key", lambda line: line[:-1] + b',"extra":1}'),
    ("an extra key holding an object", lambda line: line[:-1] + b',"extra":{"userId":"9"}}'),
    ("space after colons", lambda line: line.replace(b'":', b'": ')),
    ("leading space", lambda line: b" " + line),
    ("trailing garbage", lambda line: line + b" x"),
    ("a JSON array", lambda line: b"[1,2]"),
    ("malformed", lambda line: line[: len(line) // 2]),
    ("invalid UTF-8", lambda line: line.replace(b"Logged In", b"Logged \xff")),
    ("raw control character", lambda line: line.replace(b"Logged In", b"Logged\tIn")),
    ("NaN length", lambda line: _swap(line, "length", b"NaN")),
    ("unrelated huge integer", lambda line: _swap(line, "status", b"123456789012345678901234567890")),
    ("blank", lambda line: b""),
    ("white space only", lambda line: b" \t "),
]
# Variants the native path takes as they are: their values must come out as the Python path makes them.
PLAIN: list[tuple[str, Any]] = [
    ("as generated", lambda line: line),
    ("escapes", lambda line: _swap(line, "song", b'"a\\"b\\\\c\\/d\\te\\u00e9\\r\\n"')),
    ("escaped agent quotes", lambda line: _swap(line, "userAgent", b'"\\"Mozilla\\""')),
    ("logged out, empty id", lambda line: _swap(line, "userId", b'""')),
    ("logged out, null id", lambda line: _swap(line, "userId", b"null")),
    ("logged out with odd fields", lambda line: _swap(_swap(line, "userId", b'""'), "level", b'"gold"')),
    ("length with exponent", lambda line: _swap(line, "length", b"1.5e2")),
    ("length half a millisecond", lambda line: _swap(line, "length", b"0.0025")),
    ("negative zero length", lambda line: _swap(line, "length", b"-0.0")),
    ("user id with zeros", lambda line: _swap(line, "userId", b'"0012"')),
    ("ts at the limit", lambda line: _swap(line, "ts", b"253402300799999")),
    ("negative session", lambda line: _swap(line, "sessionId", b"-2147483648")),
    ("artist of 1000 characters", lambda line: _swap(line, "artist", b'"' + b"b" * 1000 + b'"')),
    ("a comma and quote in the song", lambda line: _swap(line, "song", b'"a, \\"b\\""')),
]


def _drop(line: bytes, key: str) -> bytes:
    obj = orjson.loads(line)
    del obj[key]
    return dump(obj)


def _plays(parsed: Parsed) -> pl.DataFrame:
    """The CSV as PostgreSQL's COPY reads it: an unquoted empty field is NULL, a quoted one the empty string."""
    return pl.read_csv(
        io.BytesIO(parsed.csv),
        has_header=False,
        new_columns=[c.strip() for c in PLAY_COLUMNS.split(",")],
        infer_schema=False,
    )


def assert_same(path: Path, start: int = 0, end: int | None = None) -> Parsed:
    task = LogTask(str(path), start, end)
    fast, careful = parse_log_native(task), parse_log_lines(task)
    if careful.csv or fast.csv:
        assert _plays(fast).equals(_plays(careful)), "plays differ"
    assert fast.users == careful.users
    assert fast.rejects == careful.rejects
    assert (fast.staged, fast.skipped, fast.logged_out, fast.lines) == (
        careful.staged,
        careful.skipped,
        careful.logged_out,
        careful.lines,
    )
    assert [(f.records, f.rejects, f.digest, f.names.repairs) for f in fast.files] == [
        (f.records, f.rejects, f.digest, f.names.repairs) for f in careful.files
    ]
    return fast


def _lines(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    pages = ["NextSong"] * 8 + ["Home", "Logout", "Settings"]
    return [dump(event(rng, rng.choice(pages), "" if rng.random() < 0.03 else None)) for _ in range(count)]


@pytest.mark.parametrize(("name", "make"), ODD, ids=[name for name, _ in ODD])
def test_an_odd_line_takes_the_python_path(tmp_path: Path, name: str, make: Any) -> None:
    lines = _lines(1, 40)
    lines[17] = make(lines[17])
    path = tmp_path / "events.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    fast = assert_same(path)
    blank = not lines[17].strip()
    assert fast.routed == 1, name
    assert fast.native == 39
    assert fast.lines == 40 and fast.files[0].records == 40 - blank


@pytest.mark.parametrize(("name", "make"), PLAIN, ids=[name for name, _ in PLAIN])
def test_a_plain_line_takes_the_native_path(tmp_path: Path, name: str, make: Any) -> None:
    lines = _lines(2, 40)
    lines[5] = make(lines[5])
    path = tmp_path / "events.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    fast = assert_same(path)
    assert (fast.native, fast.routed) == (40, 0), name


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    odd=st.lists(st.tuples(st.integers(0, 199), st.sampled_from(ODD + PLAIN)), max_size=25),
    crlf=st.booleans(),
    bom=st.booleans(),
    final_newline=st.booleans(),
)
def test_files_of_mixed_lines_agree(
    tmp_path: Path, seed: int, odd: list[tuple[int, Any]], crlf: bool, bom: bool, final_newline: bool
) -> None:
    """Duplicate users and ties included (60 users, 30 sessions, ts in a narrow range): rule 3's tie-break across
    both paths."""
    lines = _lines(seed, 200)
    for index, (_name, make) in dict(odd).items():  # one change a line: the changes read the plain line
        lines[index] = make(lines[index])
    end = b"\r\n" if crlf else b"\n"
    data = (b"\xef\xbb\xbf" if bom else b"") + end.join(lines) + (end if final_newline else b"")
    path = tmp_path / f"mixed-{seed}.json"
    path.write_bytes(data)
    assert_same(path)


def test_blocks_and_slices_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a slice, and slices of a file, cut lines where the Python path does: small blocks, odd lines
    at their edges, a line that starts exactly at a slice's end."""
    monkeypatch.setattr(native, "CHUNK_BYTES", 4096)
    lines = _lines(3, 3000)
    for index in range(0, 3000, 97):
        lines[index] = ODD[index % len(ODD)][1](lines[index])
    path = tmp_path / "big.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    whole = assert_same(path)
    assert whole.native > 2500 and whole.routed >= 25  # some changes are plain on a line that is not a play
    size = path.stat().st_size
    cut = size // 3
    boundary = path.read_bytes().index(b"\n", cut) + 1  # a slice ending exactly where a line starts
    for start, end in [(0, cut), (cut, 2 * cut), (2 * cut, None), (0, boundary), (boundary, None)]:
        assert_same(path, start, end)


def test_odd_files_read_line_by_line(tmp_path: Path) -> None:
    """A gzipped file, a small file, and a file the native reader cannot open go the Python way; a big plain
    file goes natively."""
    import gzip

    lines = _lines(4, 3000)
    big = tmp_path / "big.json"
    big.write_bytes(b"\n".join(lines) + b"\n")
    assert big.stat().st_size >= read.NATIVE_MIN_BYTES
    assert read.parse_log(LogTask(str(big))).native == 3000
    small = tmp_path / "small.json"
    small.write_bytes(b"\n".join(lines[:50]) + b"\n")
    zipped = tmp_path / "big.json.gz"
    zipped.write_bytes(gzip.compress(big.read_bytes()))
    for path in (small, zipped):
        parsed = read.parse_log(LogTask(str(path)))
        assert parsed.native == 0 and parsed.staged > 0
    missing = read.parse_log(LogTask(str(tmp_path / "gone.json")))
    assert missing.rejects and "cannot read file" in missing.rejects[0][2]


def test_the_copies_hold_the_same_rows(tmp_path: Path, db: Database) -> None:
    """Both CSVs through PostgreSQL's COPY into the staging table's shape: equal as multisets, nulls included."""
    lines = _lines(5, 400)
    for index, (_name, make) in enumerate(ODD + PLAIN):
        lines[index * 5] = make(lines[index * 5])
    path = tmp_path / "events.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    fast, careful = parse_log_native(LogTask(str(path))), parse_log_lines(LogTask(str(path)))
    assert fast.routed > 0 and fast.native > 0
    with db.connect() as conn:
        for name, parsed in (("fast", fast), ("careful", careful)):
            conn.execute(
                f"CREATE TEMP TABLE {name} (user_id INT, session_id INT, item_in_session INT, ts BIGINT, tier TEXT, "
                "location TEXT, user_agent TEXT, song_title TEXT, artist_name TEXT, length_ms INT, title_key TEXT, "
                "artist_key TEXT)"
            )
            with conn.cursor().copy(f"COPY {name} ({PLAY_COLUMNS}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(parsed.csv)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM fast), (SELECT count(*) FROM (TABLE fast EXCEPT ALL TABLE careful) a), "
            "(SELECT count(*) FROM (TABLE careful EXCEPT ALL TABLE fast) b), "
            "(SELECT count(*) FROM fast WHERE location IS NULL OR user_agent IS NULL)"
        ).fetchone()
    assert counts is not None
    total, only_fast, only_careful, with_nulls = counts
    assert total == careful.staged > 250 and only_fast == 0 and only_careful == 0 and with_nulls > 0


@pytest.mark.parametrize("routed", ["neither", "the first", "the second"])
@pytest.mark.parametrize("chunk", [1 << 20, 2048])
def test_rule_3_ties_keep_the_first_line_across_paths_and_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, routed: str, chunk: int
) -> None:
    """Two events of one user with the same (ts, session, item): the one on the earlier line is kept, whichever
    path read each and whichever block each was in."""
    monkeypatch.setattr(native, "CHUNK_BYTES", chunk)
    lines = _lines(6, 60)
    tie = orjson.loads(lines[0]) | {"userId": "999", "ts": 1541030411796, "sessionId": 7, "itemInSession": 3}
    early, late = dump(tie | {"firstName": "Early"}), dump(tie | {"firstName": "Late"})
    odd = dict(ODD)["space after colons"]
    lines[5] = odd(early) if routed == "the first" else early
    lines[50] = odd(late) if routed == "the second" else late
    path = tmp_path / "ties.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    fast = assert_same(path)
    assert fast.users[999].first_name == "Early"
    assert fast.routed == (routed != "neither")


@pytest.mark.parametrize("final_newline", [False, True])
@pytest.mark.parametrize("where", [0, 39])
def test_invalid_utf8_first_or_last_line(tmp_path: Path, final_newline: bool, where: int) -> None:
    """A block that does not decode is read line by line: its invalid line keeps its place (found by hypothesis:
    an invalid last line went missing when the block's text was trimmed of its final line break)."""
    lines = _lines(7, 40)
    lines[where] = dict(ODD)["invalid UTF-8"](lines[where])
    path = tmp_path / "bad.json"
    path.write_bytes(b"\n".join(lines) + (b"\n" if final_newline else b""))
    fast = assert_same(path)
    assert (fast.native, fast.routed, len(fast.rejects)) == (39, 1, 1)


def _one_by_one(paths: list[Path]) -> Parsed:
    """The reference for a batch: each file read line by line on its own, the results folded in file order."""
    out = Parsed()
    for path in paths:
        one = parse_log_lines(LogTask(str(path)))
        out.csv += one.csv
        out.staged += one.staged
        out.skipped += one.skipped
        out.logged_out += one.logged_out
        out.rejects += one.rejects
        out.files += one.files
        for event in one.users.values():
            keep_latest(out.users, event)
    return out


def assert_batch_same(paths: list[Path]) -> Parsed:
    fast = read.parse_log_batch(LogBatchTask(tuple(str(p) for p in paths)))
    careful = _one_by_one(paths)
    if careful.csv or fast.csv:
        assert _plays(fast).equals(_plays(careful)), "plays differ"
    assert fast.users == careful.users
    assert fast.rejects == careful.rejects
    assert (fast.staged, fast.skipped, fast.logged_out) == (careful.staged, careful.skipped, careful.logged_out)
    assert [(f.path, f.records, f.rejects, f.digest, f.names.repairs) for f in fast.files] == [
        (f.path, f.records, f.rejects, f.digest, f.names.repairs) for f in careful.files
    ]
    return fast


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    shapes=st.lists(
        st.tuples(
            st.integers(0, 30),  # lines
            st.lists(st.tuples(st.integers(0, 29), st.sampled_from(ODD + PLAIN)), max_size=4),
            st.booleans(),  # BOM
            st.booleans(),  # final line break
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_a_batch_of_small_files_reads_as_each_alone(tmp_path: Path, seed: int, shapes: list[Any]) -> None:
    """Small files read together in one native pass: per file the same records, rejects (with their own line
    numbers) and digest as alone; plays in file order; rule 3 across the files (the same 60 users in each, ties
    included) as one-by-one reading in order would keep."""
    paths = []
    for number, (count, odd, bom, final_newline) in enumerate(shapes):
        lines = _lines(seed + number, count)
        for index, (_name, make) in dict(odd).items():
            if index < count:
                lines[index] = make(lines[index])
        data = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
        path = tmp_path / f"batch-{seed}-{number}.json"
        path.write_bytes(data)
        paths.append(path)
    assert_batch_same(paths)


def test_a_batch_with_ties_and_a_missing_file(tmp_path: Path) -> None:
    lines = _lines(8, 20)
    tie = orjson.loads(lines[0]) | {"userId": "999", "ts": 1541030411796, "sessionId": 7, "itemInSession": 3}
    first, second, third = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    first.write_bytes(b"\n".join([*lines[:10], dump(tie | {"firstName": "Early"})]) + b"\n")
    second.write_bytes(b"\n".join([dump(tie | {"firstName": "Late"}), *lines[10:]]) + b"\n")
    third.write_bytes(dict(ODD)["invalid UTF-8"](lines[3]))
    fast = assert_batch_same([first, second, third])
    assert fast.users[999].first_name == "Early"
    assert fast.native == 22 and fast.routed == 1
    gone = read.parse_log_batch(LogBatchTask((str(first), str(tmp_path / "gone.json"), str(second))))
    assert [f.path for f in gone.files] == [str(first), str(tmp_path / "gone.json"), str(second)]
    assert "cannot read file" in gone.rejects[0][2] and gone.users[999].first_name == "Early"


_CHARS = "".join(map(chr, range(128))) + "\x85\xa0\u2003ÉéßẞİﬁＡ\u0130\u212a\u3000"


@settings(max_examples=examples(300), deadline=None)
@given(names=st.lists(st.text(alphabet=st.sampled_from(_CHARS), max_size=12), max_size=30))
def test_name_keys_of_a_block_are_rule_6s(names: list[str]) -> None:
    """The block's name keys (ASCII names in compiled code, the others by the Python definition) equal
    ``name_key`` name for name: every ASCII character, Python's white space that is not ASCII, case folds that
    differ from lowercasing, and NFKC's compatibility forms, in ASCII-only and mixed blocks."""
    assert native.name_keys(pl.Series(names, dtype=pl.String)).to_list() == [name_key(name) for name in names]


def test_name_keys_see_every_ascii_character() -> None:
    names = [f"A{chr(c)}b {chr(c)}" for c in range(128)] + [chr(c) * 3 for c in range(128)]
    assert native.name_keys(pl.Series(names, dtype=pl.String)).to_list() == [name_key(name) for name in names]
