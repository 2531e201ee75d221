"""Event logs parsed natively (polars), line for line the same result as the Python rules in ``transform.records``.

The Python path costs about 25 µs a line; this one parses a whole slice at once in compiled code. It is exact
by construction, not by hope: a line takes this path only when its text has the plain shape the Python fast
path accepts without any conversion — the file's own key order, each key once, text fields as JSON strings or
null, integers as integers, the length as a JSON float, no escaped NUL or surrogate, no white space between
tokens — and its values pass the same checks (user id of 1–9 ASCII digits, level free or paid, bounds). Every
other line (blank, malformed, odd in any way) goes through ``parse_line``, the Python path, unchanged; so
rejects, skips and conversions keep their one definition. ``tests/test_native.py`` compares the two paths line
by line on generated odd lines and through PostgreSQL's COPY.
"""

from __future__ import annotations

import bisect
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl

from musicstream.engines.read import CSV_LINE_END  # the one CSV dialect of the staging COPY
from musicstream.extract.fields import INT_MAX, INT_MIN, MAX_KEY_CHARS
from musicstream.extract.files import BOM, open_input
from musicstream.rules import MAX_LENGTH_S, TIERS
from musicstream.transform.names import repair_name
from musicstream.transform.normalize import name_key
from musicstream.transform.records import TS_MAX, TS_MIN, UNKNOWN_NAME, Play, UserEvent

# The fields the rules read, by JSON type; any other key of the file may hold any scalar.
TEXT_FIELDS = ("userId", "page", "level", "firstName", "lastName", "gender", "location", "userAgent", "song", "artist")
INT_FIELDS = ("ts", "sessionId", "itemInSession")
FLOAT_FIELDS = ("length",)
REQUIRED = frozenset(TEXT_FIELDS + INT_FIELDS + FLOAT_FIELDS)

# JSON text the native decoder and orjson read alike. Strings: no control characters, simple escapes, \\uXXXX
# (escaped NUL and surrogates are sent away by _ODD below: polars reads a lone surrogate as NUL, orjson rejects it).
_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_INTEGER = r"-?(?:0|[1-9][0-9]{0,17})"  # at most 18 digits: always inside a 64-bit integer
_FLOAT = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]{1,2})?|[eE][+-]?[0-9]{1,2})"  # what orjson reads as a float
# Other keys' numbers: small enough that neither reader fails on them (orjson refuses integers past 64 bits).
_NUMBER = r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,2})?"
_VALUE = {
    **dict.fromkeys(TEXT_FIELDS, f"(?:{_STRING}|null)"),
    **dict.fromkeys(INT_FIELDS, _INTEGER),
    **dict.fromkeys(FLOAT_FIELDS, f"(?:{_FLOAT}|null)"),
}
_SCALAR = f"(?:{_STRING}|{_NUMBER}|true|false|null)"
_ODD = r"\\u(?:0000|[dD][89a-fA-F])"
_PLAIN_KEY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_SCHEMA: dict[str, Any] = {
    **dict.fromkeys(TEXT_FIELDS, pl.String),
    **dict.fromkeys(INT_FIELDS, pl.Int64),
    **dict.fromkeys(FLOAT_FIELDS, pl.Float64),
}
PLAY_SCHEMA: dict[str, Any] = {
    "user_id": pl.Int64,
    "session_id": pl.Int64,
    "item_in_session": pl.Int64,
    "ts": pl.Int64,
    "tier": pl.String,
    "location": pl.String,
    "user_agent": pl.String,
    "song_title": pl.String,
    "artist_name": pl.String,
    "length_ms": pl.Int64,
    "title_key": pl.String,
    "artist_key": pl.String,
}


def template(first_lines: list[str]) -> str | None:
    """The regular expression a plain line of this file matches: its keys in the order of the first line that is
    a JSON object, each with the form of value the rules take without conversion. None: no such line, or keys
    that are not plain names, or a field the rules need missing (every line then takes the Python path)."""
    for line in first_lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        keys = list(obj)
        if not set(keys) >= REQUIRED or not all(key and set(key) <= _PLAIN_KEY for key in keys):
            return None
        return r"^\{" + ",".join(f'"{key}":{_VALUE.get(key, _SCALAR)}' for key in keys) + r"\}$"
    return None


class LineSink:
    """The plays and user events the Python path found in the lines sent to it, with their line numbers."""

    def __init__(self) -> None:
        self.plays: list[tuple[int, Play]] = []
        self.events: list[tuple[int, UserEvent]] = []
        self.position = 0  # the line's place in the block (1-based), set before each line is handed over

    def play(self, number: int, play: Play) -> None:
        self.plays.append((self.position, play))

    def event(self, number: int, event: UserEvent) -> None:
        self.events.append((self.position, event))


# A slice is read and parsed this much at a time. Measured on a 20 MB file: peak 283 MB a process, 11.5 µs a line
# (4 MB: 258 MB, 8 % slower; 16 MB: 418 MB, 3 % faster).
CHUNK_BYTES = 8 << 20


@dataclass
class SliceResult:
    csv: bytes = b""  # the plays as COPY-ready CSV (PLAY_SCHEMA's columns), in line order
    users: dict[int, UserEvent] = field(default_factory=dict)  # rule 3: the latest event per user
    counts: dict[str, int] = field(default_factory=dict)  # lines, records, staged, skipped, logged_out, native, routed
    digest: str | None = None  # SHA-256 of the whole file, when the slice is the whole file
    # rule 6's repairs of the native lines' names: (file, first line, original, repaired, count); the file is its
    # index among parse_files' files (0 for a slice), the line counts from the slice's first line
    repairs: list[tuple[int, int, str, str, int]] = field(default_factory=list)


def _blocks(path: str, start: int, end: int | None) -> Iterator[bytes]:
    """The slice's lines whose first byte lies in [start, end), about CHUNK_BYTES at a time (each block whole
    lines), as ``read.parse_log_lines`` reads them."""
    with open_input(path) as handle:
        if start > 0:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                handle.readline()  # the line in progress belongs to the previous slice
        position = handle.tell()
        while end is None or position < end:
            block = handle.read(CHUNK_BYTES if end is None else min(CHUNK_BYTES, end - position))
            if not block:
                break
            if not block.endswith(b"\n"):
                block += handle.readline()
            position = handle.tell()
            yield block


def parse_slice(
    path: str, start: int, end: int | None, python_line: Callable[[int, bytes, LineSink], None], repair: bool = True
) -> SliceResult:
    """Parse the lines of a slice of a plain (not gzipped) log file, natively where they are plain.

    Lines that are not plain go to ``python_line(number, raw, sink)`` (line numbers count from the slice's first
    line), which counts them and keeps their rejects, and gives their plays and user events to ``sink``; the
    counts returned are the native lines' (and ``staged``: every play of the slice, as the CSV holds them).
    OSError propagates: the caller then reads the file line by line.
    """
    result = SliceResult(counts=dict.fromkeys(("lines", "records", "skipped", "logged_out", "native", "routed"), 0))
    state = _State(repair=repair)
    sha = hashlib.sha256() if start == 0 and end is None else None
    for block in _blocks(path, start, end):
        if sha is not None:
            sha.update(block)
        base = result.counts["lines"]  # lines before this block

        def handler(index: int, raw: bytes, sink: LineSink, base: int = base) -> None:
            python_line(base + index + 1, raw, sink)

        _parse_block([(block, base == 0 and start == 0)], handler, result, state, lambda place: (0, place))
    result.digest = sha.hexdigest() if sha is not None else None
    return _finish(result, state)


def parse_files(
    datas: list[bytes], python_line: Callable[[int, int, bytes, LineSink], None], repair: bool = True
) -> tuple[SliceResult, list[int]]:
    """Parse several small whole log files (their bytes, in order) in one pass, as if each were read on its own.

    ``python_line(file, number, raw, sink)`` gets the lines that are not plain, with their file's index and line
    number. Returns what ``parse_slice`` returns for all of them together (no digest: the caller hashes each
    file) and, per file, how many of its lines were read natively (each one a record of that file).
    """
    result = SliceResult(counts=dict.fromkeys(("lines", "records", "skipped", "logged_out", "native", "routed"), 0))
    state = _State(repair=repair)
    starts: list[int] = []  # index of each file's first line in the block
    sizes: list[int] = []
    total = 0
    for data in datas:
        starts.append(total)
        count = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        sizes.append(count)
        total += count

    native_lines = list(sizes)

    def handler(index: int, raw: bytes, sink: LineSink) -> None:
        file = bisect.bisect_right(starts, index) - 1
        native_lines[file] -= 1
        python_line(file, index - starts[file] + 1, raw, sink)

    def where(place: int) -> tuple[int, int]:
        file = bisect.bisect_right(starts, place - 1) - 1
        return file, place - starts[file]

    _parse_block([(data, True) for data in datas], handler, result, state, where)
    return _finish(result, state), native_lines


@dataclass
class _State:
    pattern: str | None = None
    winners: dict[int, int] = field(default_factory=dict)  # user id → the place of the event kept for them
    latest: pl.DataFrame | None = None  # rule 3 on the native rows so far: per user the latest event, its place
    parts: list[bytes] = field(default_factory=list)
    staged: int = 0
    position: int = 0  # places (lines) of the earlier blocks: rule 3's order across blocks
    repair: bool = True  # rule 6's repair of names
    repairs: dict[tuple[int, str], tuple[str, int, int]] = field(default_factory=dict)  # (file, original) → ...


def _finish(result: SliceResult, state: _State) -> SliceResult:
    result.counts["staged"] = state.staged
    result.csv = b"".join(state.parts)
    result.repairs = [(file, line, original, fixed, n) for (file, original), (fixed, line, n) in state.repairs.items()]
    if state.latest is not None:
        for *fields, place in state.latest.iter_rows():
            _fold(result.users, state.winners, UserEvent(*fields), place)
    return result


def _parse_block(
    pieces: list[tuple[bytes, bool]],
    handler: Callable[[int, bytes, LineSink], None],
    result: SliceResult,
    state: _State,
    where: Callable[[int], tuple[int, int]],
) -> None:
    """One block: the whole lines of one or more pieces of text (``at_start``: the piece begins a file, where a
    BOM is dropped), read natively where plain; ``handler(index, raw, sink)`` gets the others by their index in
    the block; ``where(place)`` is the file and line of a place (rule 6's repairs are noted by them)."""
    counts = result.counts
    texts: list[str] = []
    bodies: list[bytes] = []  # the same lines as bytes (while ``exact``: every piece valid UTF-8)
    exact = True
    for data, at_start in pieces:
        if not data:
            continue
        body = data[:-1] if data.endswith(b"\n") else data  # a final line break ends the last line
        if at_start:
            body = body.removeprefix(BOM)  # the Python path drops a BOM at a file's start too
        try:
            texts.append(body.decode("utf-8"))  # one text line for each physical line
            bodies.append(body)
        except UnicodeDecodeError:  # the invalid lines, left empty here, take the Python path, which rejects them
            texts.append("\n".join(_utf8_or_empty(line) for line in body.split(b"\n")))
            exact = False
    text = "\n".join(texts)
    line_texts = text.split("\n") if texts else []
    total = len(line_texts)
    counts["lines"] += total
    sink = LineSink()
    plays = pl.DataFrame(schema={"line": pl.Int64, **PLAY_SCHEMA})
    routed: Iterable[int] = range(total)
    if total:
        lines_series = pl.Series("text", line_texts, dtype=pl.String)
        del line_texts
        raw = b"\n".join(bodies) if exact else b""  # the decoder's input when every line is plain
        if "\r" in text:
            lines_series = lines_series.str.strip_chars_end("\r")
            raw = b""  # not the lines' bytes any more
        state.pattern = state.pattern or template(lines_series.head(10).to_list())
        if state.pattern is not None:
            frame, routed, repaired = _native(lines_series, raw, state.pattern, counts, state.repair)
            for line, original, fixed in repaired.iter_rows():
                file, number = where(state.position + line + 1)
                seen = state.repairs.get((file, original))
                state.repairs[(file, original)] = (
                    (fixed, number, 1) if seen is None else (fixed, min(seen[1], number), seen[2] + 1)
                )
            if frame.height:
                plays = frame.filter(pl.col("page") == "NextSong").select(["line", *PLAY_SCHEMA])
                state.latest = _latest_native(frame, state.position, state.latest)
    physical: list[bytes] = []  # the lines' bytes, split only when some line takes the Python path
    for index in routed:
        if not physical:
            physical = [line for data, _ in pieces if data for line in _lines(data)]
        sink.position = state.position + index + 1
        handler(index, physical[index], sink)
        counts["routed"] += 1
    for position, event in sink.events:  # _fold keeps the same event whatever the order it sees them in
        _fold(result.users, state.winners, event, position)
    if sink.plays:
        extra = pl.DataFrame(
            [(position - state.position - 1, *play) for position, play in sink.plays],
            schema={"line": pl.Int64, **PLAY_SCHEMA},
            orient="row",
        ).with_columns(pl.col(pl.String).replace("", None))  # Python's csv writes "" as NULL: so do we here
        plays = pl.concat([plays, extra]).sort("line")
    state.position += total
    if plays.height:
        state.staged += plays.height
        csv = io.BytesIO()  # bytes as written (a str would be decoded, then encoded again)
        plays.drop("line").write_csv(csv, include_header=False, null_value="", line_terminator=CSV_LINE_END)
        state.parts.append(csv.getvalue())


_NO_REPAIRS = pl.DataFrame(schema={"line": pl.Int64, "original": pl.String, "repaired": pl.String})


def _native(
    lines: pl.Series, raw: bytes, pattern: str, counts: dict[str, int], repair: bool = True
) -> tuple[pl.DataFrame, list[int], pl.DataFrame]:
    """Decode the plain lines and check their values; returns the kept rows, the indexes of the other lines, and
    each name the kept plays had repaired (rule 6) with its line. ``raw`` is the lines' UTF-8 bytes joined by line
    breaks, or b"" when not at hand."""
    index = pl.Series("line", range(len(lines)), dtype=pl.Int64)
    plain = lines.str.contains(pattern) & ~lines.str.contains(_ODD)
    plain_lines = int(plain.sum())
    if not plain_lines:
        return pl.DataFrame(), list(range(len(lines))), _NO_REPAIRS
    if not (raw and plain_lines == len(lines)):
        raw = lines.filter(plain).str.join("\n").item().encode("utf-8")
    try:
        decoded = pl.read_ndjson(io.BytesIO(raw), schema=_SCHEMA)
    except pl.exceptions.PolarsError:  # a value the template let through and the decoder refused: all go careful
        return pl.DataFrame(), list(range(len(lines))), _NO_REPAIRS
    if decoded.height != plain_lines:  # cannot happen with plain lines; if it did, the Python path decides
        return pl.DataFrame(), list(range(len(lines))), _NO_REPAIRS
    frame = decoded.with_columns(index.filter(plain))
    uid = pl.col("userId")
    logged_out = uid.is_null() | (uid == "")
    is_play = pl.col("page") == "NextSong"
    song, artist, length = pl.col("song"), pl.col("artist"), pl.col("length")
    checked = (
        uid.str.contains(r"^[0-9]{1,9}$")
        & (pl.col("page").str.len_bytes() > 0)
        & pl.col("ts").is_between(TS_MIN, TS_MAX)
        & pl.col("sessionId").is_between(INT_MIN, INT_MAX)
        & pl.col("itemInSession").is_between(INT_MIN, INT_MAX)
        & pl.col("level").is_in(list(TIERS))
    )
    playable = (
        song.str.len_chars().is_between(1, MAX_KEY_CHARS)
        & artist.str.len_chars().is_between(1, MAX_KEY_CHARS)
        & (length >= 0)
        & (length < MAX_LENGTH_S)
    )
    frame = frame.with_columns(
        logged_out.alias("logged_out"),
        (logged_out | (checked & (~is_play | playable))).fill_null(False).alias("ok"),
    )
    kept = frame.filter("ok")
    gone = frame.filter(~pl.col("ok"))["line"].to_list()
    logged_out_rows = int(kept["logged_out"].sum())
    kept = kept.filter(~pl.col("logged_out"))
    # Rule 6's reading of names, then their keys, on the distinct names only.
    plays = kept.filter(is_play)
    names = pl.concat([plays["song"], plays["artist"]]).unique()
    repaired = _NO_REPAIRS
    if repair:
        kept, repaired = repair_names(kept, names)
        if repaired.height:
            plays = kept.filter(is_play)
            names = pl.concat([plays["song"], plays["artist"]]).unique()
    keys = name_keys(names)
    kept = kept.with_columns(
        song.replace_strict(names, keys, default=None).alias("title_key"),
        artist.replace_strict(names, keys, default=None).alias("artist_key"),
    )
    # A name whose key is empty (only white space) would be written as "" here and as NULL by the Python path's
    # CSV: such rare plays take the Python path.
    blank_key = is_play & ((pl.col("title_key") == "") | (pl.col("artist_key") == ""))
    gone += kept.filter(blank_key)["line"].to_list()
    kept = kept.filter(~blank_key)
    agent = pl.col("userAgent")
    quoted = (agent.str.len_chars() >= 2) & agent.str.starts_with('"') & agent.str.ends_with('"')
    agent = pl.when(quoted).then(agent.str.slice(1, agent.str.len_chars() - 2)).otherwise(agent)
    kept = kept.select(
        "line",
        "page",
        pl.col("userId").cast(pl.Int64).alias("user_id"),
        pl.col("sessionId").alias("session_id"),
        pl.col("itemInSession").alias("item_in_session"),
        "ts",
        pl.col("level").alias("tier"),
        _none_if_empty(pl.col("location")).alias("location"),
        _none_if_empty(agent).alias("user_agent"),
        song.alias("song_title"),
        artist.alias("artist_name"),
        (length * 1000).round(0, mode="half_to_even").cast(pl.Int64).alias("length_ms"),
        "title_key",
        "artist_key",
        _unknown_if_empty(pl.col("firstName")).alias("first_name"),
        _unknown_if_empty(pl.col("lastName")).alias("last_name"),
        _none_if_empty(pl.col("gender")).alias("gender"),
    )
    native = frame.height - len(gone)
    counts["native"] += native
    counts["records"] += native
    counts["logged_out"] += logged_out_rows
    counts["skipped"] += logged_out_rows + int((kept["page"] != "NextSong").sum())
    routed = sorted(set(gone) | set(index.filter(~plain).to_list()))
    return kept, routed, repaired.filter(~pl.col("line").is_in(pl.Series(gone, dtype=pl.Int64).implode()))


# What rule 6's repair may change: a name with a character outside printable ASCII (``names.needs_look``).
_NEEDS_LOOK = r"[^\x20-\x7e]"


def repair_names(rows: pl.DataFrame, names: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows with their song and artist repaired by ``names.repair_name``, the rule's one definition, called on
    the distinct ``names`` that are not plain printable ASCII (the others are their own repair), and each repair
    made: (line, original, repaired), one row per name repaired in a row."""
    look = names.filter(names.str.contains(_NEEDS_LOOK))
    if not len(look):
        return rows, _NO_REPAIRS
    fixed = pl.Series([repair_name(name) for name in look.to_list()], dtype=pl.String)
    changed = look != fixed
    originals, repaired = look.filter(changed), fixed.filter(changed)
    if not len(originals):
        return rows, _NO_REPAIRS
    plays = rows.filter(pl.col("page") == "NextSong")  # only a play's names are read (rule 6)
    made = pl.concat([plays.select("line", pl.col(column).alias("original")) for column in ("song", "artist")]).filter(
        pl.col("original").is_in(originals.implode())
    )
    made = made.with_columns(pl.col("original").replace_strict(originals, repaired).alias("repaired"))
    rows = rows.with_columns(pl.col(c).replace(originals, repaired) for c in ("song", "artist"))
    return rows, made


# White space as Python's str.split() sees it, in ASCII (the rest of its white space is not ASCII).
_ASCII_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]+"


def name_keys(names: pl.Series) -> pl.Series:
    """``normalize.name_key`` of each name, in the same order. ASCII names in compiled code: NFKC leaves ASCII as
    it is, case folding is lowercasing there, and the white space is ``_ASCII_SPACE`` (``tests/test_native.py``
    compares the two on every ASCII character); any other name goes through ``name_key`` itself. The names of a
    block are mostly new to the cache there (a million events name about 150,000 (title, artist) pairs): this
    costs 0.1 µs a name, the Python definition about 2."""
    ascii_only = names.str.len_bytes() == names.str.len_chars()
    fast = names.str.to_lowercase().str.replace_all(_ASCII_SPACE, " ").str.strip_chars(" ")
    if bool(ascii_only.all()):
        return fast
    other = names.filter(~ascii_only)
    slow = pl.Series([name_key(name) for name in other.to_list()], dtype=pl.String)
    return fast.scatter(ascii_only.not_().arg_true(), slow)


def _none_if_empty(column: pl.Expr) -> pl.Expr:
    return pl.when(column == "").then(None).otherwise(column)


def _unknown_if_empty(column: pl.Expr) -> pl.Expr:
    return pl.when(column.is_null() | (column == "")).then(pl.lit(UNKNOWN_NAME)).otherwise(column)


def _lines(data: bytes) -> list[bytes]:
    """The lines of a piece of text, without their line breaks (a final line break ends the last line)."""
    return (data[:-1] if data.endswith(b"\n") else data).split(b"\n")


def _utf8_or_empty(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return ""


def _latest_native(frame: pl.DataFrame, base: int, latest: pl.DataFrame | None) -> pl.DataFrame:
    """Rule 3 on the native rows, with those of the earlier blocks (``latest``): per user the latest event by
    (ts, session, item), of equals the one on the earlier line (its place: ``base`` + its line in the block + 1).
    Kept as rows until the slice is done (``_finish`` folds them in with the Python path's events)."""
    rows = frame.select(*UserEvent._fields, (pl.col("line") + (base + 1)).alias("place"))
    if latest is not None:
        rows = pl.concat([latest, rows])
    return rows.sort(
        ["user_id", "ts", "session_id", "item_in_session", "place"], descending=[False, True, True, True, False]
    ).unique("user_id", keep="first", maintain_order=True)


def _fold(users: dict[int, UserEvent], winners: dict[int, int], event: UserEvent, line: int) -> None:
    """Rule 3 across the two paths and the blocks: the later event by (ts, session, item); of equals, the one on
    the earlier line (the one the Python path, reading in order, would keep)."""
    current = users.get(event.user_id)
    if current is None or event[:3] > current[:3] or (event[:3] == current[:3] and line < winners[event.user_id]):
        users[event.user_id] = event
        winners[event.user_id] = line
