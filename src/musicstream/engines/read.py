"""Reading files into staging rows, for both engines: files (or line-aligned slices of big files) → COPY-ready CSV.

Each task returns plain data (bytes, counts, the latest event per user, rejects), so that the main process only
streams bytes to PostgreSQL while the workers parse: parsing and the database's ingest use different cores.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import signal
import zlib
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

from musicstream.extract.files import BOM, open_input
from musicstream.extract.values import Reject, iter_json_values, raw_text
from musicstream.memory import peak_rss_mb
from musicstream.transform.names import NameReader
from musicstream.transform.records import Play, Skip, UserEvent, keep_latest, parse_event, parse_song

if TYPE_CHECKING:
    from musicstream.engines import native
    from musicstream.engines.native import LineSink

READ_ERRORS = (OSError, EOFError, zlib.error, gzip.BadGzipFile)
# Below this size a log file is parsed in Python: the native path's fixed cost (about 10 ms a call) is more than it
# saves (measured: equal at about 512 KB; 14.5 against 26 µs a line at 2 MB). The tests set
# MUSICSTREAM_NATIVE_MIN_BYTES=0 to load their small files natively.
NATIVE_MIN_BYTES = 512 << 10
# csv quotes a field holding any character of the line terminator: with "\r\n", a lone carriage return inside a
# value (valid JSON: "a\rb") is quoted too, which COPY needs ("unquoted carriage return found in data").
CSV_LINE_END = "\r\n"


@dataclass(frozen=True)
class LogTask:
    """Lines of a log file whose first byte lies in [start, end) (end None: to the end of the file)."""

    path: str
    start: int = 0
    end: int | None = None
    native: bool | None = None  # parse natively; None: decide by size (``parse_log``)
    repair: bool = True  # rule 6's repair of names (off: names as given)

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end is None


@dataclass(frozen=True)
class LogBatchTask:
    """Small whole log files read together: natively in one pass when they are worth it, else one by one."""

    paths: tuple[str, ...]
    native: bool = True
    repair: bool = True


@dataclass(frozen=True)
class SongTask:
    paths: tuple[str, ...]
    repair: bool = True


@dataclass(frozen=True)
class DigestTask:
    path: str


@dataclass
class FileOutcome:
    """What a task saw of one file; ``digest`` is set when the task read the whole file; ``names`` read its names
    and noted their repairs (line numbers of a log slice relative to the slice's first line)."""

    path: str
    records: int = 0
    rejects: int = 0
    digest: str | None = None
    names: NameReader = field(default_factory=NameReader)


@dataclass
class Parsed:
    """The result of a task. Reject line numbers of a log slice are relative to the slice's first line."""

    csv: bytes = b""
    staged: int = 0
    skipped: int = 0
    logged_out: int = 0
    lines: int = 0
    users: dict[int, UserEvent] = field(default_factory=dict)
    rejects: list[tuple[str, int, str, str]] = field(default_factory=list)
    files: list[FileOutcome] = field(default_factory=list)
    digest: str | None = None
    peak_rss_mb: float = 0.0
    native: int = 0  # log lines read natively, and lines sent to the Python path (for tests and profiles)
    routed: int = 0


def _reject(out: Parsed, outcome: FileOutcome, line: int, reason: str, raw: bytes | str) -> None:
    text, note = raw_text(raw)
    out.rejects.append((outcome.path, line, reason + note, text))
    outcome.rejects += 1


class _Hashing(io.RawIOBase):
    """A read-through wrapper that hashes the bytes as they are read."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


def _file_sha256(path: str) -> str | None:
    try:
        return digest(DigestTask(path)).digest
    except OSError:
        return None


def parse_log(task: LogTask) -> Parsed:
    """A log file, or a slice of one: plain files natively with the Python path for odd lines (``native``), gzipped
    ones and files that cannot be read at once line by line in Python."""
    if task.path.lower().endswith(".gz"):
        return parse_log_lines(task)
    try:
        use_native = task.native
        if use_native is None:
            size = os.path.getsize(task.path) if task.end is None else task.end - task.start
            use_native = native_worthwhile(size)
        return parse_log_native(task) if use_native else parse_log_lines(task)
    except OSError:
        return parse_log_lines(task)  # reads as far as it can, and says where it stopped


def native_worthwhile(size: int) -> bool:
    return size >= int(os.environ.get("MUSICSTREAM_NATIVE_MIN_BYTES", NATIVE_MIN_BYTES))


class _Rows(Protocol):
    def play(self, number: int, play: Play) -> None: ...

    def event(self, number: int, event: UserEvent) -> None: ...


class _CsvRows:
    """The line-by-line reader's rows: plays straight to CSV, users kept by rule 3 as they come."""

    def __init__(self, out: Parsed, writer: Any) -> None:
        self.out = out
        self.writer = writer

    def play(self, number: int, play: Play) -> None:
        self.writer.writerow(play)
        self.out.staged += 1

    def event(self, number: int, event: UserEvent) -> None:
        keep_latest(self.out.users, event)


def _python_line(task: LogTask, out: Parsed, outcome: FileOutcome, rows: _Rows, number: int, line: bytes) -> None:
    """The Python path's verdict on one physical line of a log (both readers use it): counted as a record unless
    blank, then a play with its user event, a skip, or a reject with its line number (rules 1, 3, 10)."""
    if number == 1 and task.start == 0 and line.startswith(BOM):
        line = line[3:]
    if not line or line.isspace():
        return
    raw = line.rstrip(b"\r\n")
    outcome.records += 1
    outcome.names.line = number
    parsed = parse_event(raw, outcome.names)
    if type(parsed) is tuple:
        rows.play(number, parsed[0])
        rows.event(number, parsed[1])
    elif isinstance(parsed, Skip):
        out.skipped += 1
        if parsed.user is None:
            out.logged_out += 1
        else:
            rows.event(number, parsed.user)
    elif isinstance(parsed, Reject):
        _reject(out, outcome, number, parsed.reason, raw)


def parse_log_native(task: LogTask) -> Parsed:
    from musicstream.engines import native  # polars: 0.3 s to import, paid only by runs that parse big logs

    out = Parsed()
    outcome = FileOutcome(task.path, names=NameReader(task.repair))
    out.files.append(outcome)

    def python_line(number: int, line: bytes, sink: LineSink) -> None:
        _python_line(task, out, outcome, sink, number, line)

    result = native.parse_slice(task.path, task.start, task.end, python_line, task.repair)
    for _, line, original, repaired, count in result.repairs:
        outcome.names.note(original, repaired, line, count)
    outcome.records += result.counts["records"]
    outcome.digest = result.digest
    out.lines = result.counts["lines"]
    return _with_native(out, result)


def _with_native(out: Parsed, result: native.SliceResult) -> Parsed:
    """Add what the native reader found to what the Python path already counted in ``out``."""
    counts = result.counts
    out.csv = result.csv
    out.users = result.users
    out.staged = counts["staged"]  # every play of the task, from both paths, is in the native reader's CSV
    out.skipped += counts["skipped"]
    out.logged_out += counts["logged_out"]
    out.native = counts["native"]
    out.routed = counts["routed"]
    return out


def parse_log_batch(task: LogBatchTask) -> Parsed:
    """Several small log files: their records, rejects, users and plays exactly as if each were its own task,
    in order (rule 3's ties keep the event read first)."""
    if task.native:
        try:
            return _parse_batch_native(task)
        except OSError:
            pass  # a file that cannot be read: each file the careful way, which says which and where
    out = Parsed()
    for path in task.paths:
        one = parse_log(LogTask(path, native=False, repair=task.repair))
        out.csv += one.csv
        out.staged += one.staged
        out.skipped += one.skipped
        out.logged_out += one.logged_out
        out.rejects += one.rejects
        out.files += one.files
        for event in one.users.values():
            keep_latest(out.users, event)
    return out


def _parse_batch_native(task: LogBatchTask) -> Parsed:
    from musicstream.engines import native

    datas = []
    for path in task.paths:
        with open_input(path) as handle:
            datas.append(handle.read())
    out = Parsed()
    outcomes = [
        FileOutcome(path, digest=hashlib.sha256(data).hexdigest(), names=NameReader(task.repair))
        for path, data in zip(task.paths, datas, strict=True)
    ]
    out.files = outcomes
    whole = [LogTask(path) for path in task.paths]

    def python_line(file: int, number: int, line: bytes, sink: LineSink) -> None:
        _python_line(whole[file], out, outcomes[file], sink, number, line)

    result, native_lines = native.parse_files(datas, python_line, task.repair)
    for file, line, original, repaired, count in result.repairs:
        outcomes[file].names.note(original, repaired, line, count)
    for outcome, lines in zip(outcomes, native_lines, strict=True):
        outcome.records += lines  # every line read natively is a record of its file
    return _with_native(out, result)


def parse_log_lines(task: LogTask) -> Parsed:
    out = Parsed()
    outcome = FileOutcome(task.path, names=NameReader(task.repair))
    out.files.append(outcome)
    buffer = io.StringIO()
    rows = _CsvRows(out, csv.writer(buffer, lineterminator=CSV_LINE_END))
    number = 0
    hasher: _Hashing | None = None
    try:
        raw_file = open_input(task.path)  # closed by the with below
    except OSError as exc:
        outcome.records += 1
        _reject(out, outcome, 0, f"cannot read file: {exc.strerror or exc}", b"")
        return out
    try:
        with raw_file:
            source: IO[bytes]
            if task.whole:
                hasher = _Hashing(raw_file)
                source = io.BufferedReader(hasher, 1 << 20)
                if task.path.lower().endswith(".gz"):
                    source = gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[assignment]
            else:
                source = raw_file
                if task.start > 0:
                    raw_file.seek(task.start - 1)
                    if raw_file.read(1) != b"\n":
                        raw_file.readline()  # the line in progress belongs to the previous slice
            position = raw_file.tell() if not task.whole else 0
            for line in source:
                if task.end is not None:
                    if position >= task.end:
                        break
                    position += len(line)
                number += 1
                _python_line(task, out, outcome, rows, number, line)
            if hasher is not None:
                while hasher.raw.read(1 << 20):  # a gzip member may end before the file does
                    pass
    except READ_ERRORS as exc:
        outcome.records += 1
        _reject(out, outcome, number + 1, f"cannot read the rest of the file: {exc}", b"")
        if hasher is not None:
            outcome.digest = _file_sha256(task.path)
            hasher = None
    out.lines = number
    out.csv = buffer.getvalue().encode("utf-8")
    if hasher is not None:
        outcome.digest = hasher.digest.hexdigest()
    return out


def _parse_song_file(path: str, out: Parsed, writer: Any, repair: bool) -> None:
    outcome = FileOutcome(path, names=NameReader(repair))
    out.files.append(outcome)
    try:
        with open_input(path) as handle:
            stored = handle.read()
        outcome.digest = hashlib.sha256(stored).hexdigest()
        data = gzip.decompress(stored) if path.lower().endswith(".gz") else stored
    except READ_ERRORS as exc:
        outcome.records += 1
        _reject(out, outcome, 0, f"cannot read file: {exc}", b"")
        return
    if data.startswith(BOM):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        outcome.records += 1
        _reject(out, outcome, data.count(b"\n", 0, exc.start) + 1, f"invalid UTF-8: {exc.reason}", data)
        return
    for line, value, raw in iter_json_values(text):
        outcome.records += 1
        outcome.names.line = line
        song = value if isinstance(value, Reject) else parse_song(value, outcome.names)
        if isinstance(song, Reject):
            _reject(out, outcome, line, song.reason, raw)
        else:
            writer.writerow(song)
            out.staged += 1


def parse_songs(task: SongTask) -> Parsed:
    out = Parsed()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=CSV_LINE_END)
    for path in task.paths:
        _parse_song_file(path, out, writer, task.repair)
    out.csv = buffer.getvalue().encode("utf-8")
    return out


def digest(task: DigestTask) -> Parsed:
    sha = hashlib.sha256()
    with open_input(task.path) as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return Parsed(digest=sha.hexdigest())


def ignore_interrupts() -> None:
    """A worker's start: Ctrl-C reaches every process of the terminal's group; the main process handles it (it
    stops the pool and rolls the run back), so a worker does not print a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_task(task: LogTask | LogBatchTask | SongTask | DigestTask) -> Parsed:
    """The one entry point workers run."""
    if isinstance(task, LogTask):
        parsed = parse_log(task)
    elif isinstance(task, LogBatchTask):
        parsed = parse_log_batch(task)
    elif isinstance(task, SongTask):
        parsed = parse_songs(task)
    else:
        parsed = digest(task)
    parsed.peak_rss_mb = peak_rss_mb()
    return parsed
