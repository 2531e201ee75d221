"""What Spark executors run, in plain Python (no Spark import): read whole input files with the local engine's
parser, then either COPY the staging rows into PostgreSQL or hand back typed rows for DataFrames.

Reading goes through ``engines.read.run_task``, so a file's records, rejects (line and reason), counts and SHA-256
are exactly those of the local engine. A unit of work is one log file, or a batch of song files.
"""

from __future__ import annotations

import csv
import decimal
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from musicstream import faults
from musicstream.engines.read import DigestTask, LogTask, Parsed, SongTask, run_task
from musicstream.load.staging import PLAY_COLUMNS, REPAIR_COLUMNS, SONG_COLUMNS, USER_COLUMNS

# The driver passes these to executors when it has them, so that executors read s3:// as the driver would.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
)
STAGE_LOCK, USERS_LOCK = 0x6D73_7374, 0x6D73_7375  # advisory lock classes: one writer per staging partition


@dataclass(frozen=True, slots=True)
class Source:
    """An input file to read; ``known_digest`` is the manifest's SHA-256 when the size is unchanged."""

    path: str
    kind: str
    size: int
    known_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Unit:
    """One task's worth of input: a log file, or up to a few hundred song files; ``repair``: rule 6's repair of
    names."""

    kind: str
    sources: tuple[Source, ...]
    repair: bool = True


# What a file came to: (path, kind, size, sha256 or None when unreadable, records, rejects, unchanged)
FileFact = tuple[str, str, int, str | None, int, int, bool]


def aws_environment() -> dict[str, str]:
    """The driver's AWS variables, for executors (which may have been started before they were set), and its
    fault-injection variables (tests only: ``faults.py``)."""
    return {name: os.environ[name] for name in (*AWS_VARIABLES, *faults.VARIABLES) if os.environ.get(name)}


def _digest(source: Source, blob: bytes | None) -> str | None:
    if blob is not None:
        return hashlib.sha256(blob).hexdigest()
    try:
        return run_task(DigestTask(source.path)).digest
    except OSError:
        return None  # reading it will record why


def read_unit(unit: Unit, blob: bytes | None = None) -> tuple[Parsed | None, list[FileFact]]:
    """Parse the unit's changed files with the local engine's parser (unchanged ones are only hashed).

    ``blob`` holds the bytes of a one-file unit that Spark read from a Hadoop file system: it is spooled to a
    local temporary file for the parser, and every path in the result names the original URI.
    """
    facts: list[FileFact] = []
    to_read: list[Source] = []
    for source in unit.sources:
        if source.known_digest is not None:
            digest = _digest(source, blob)
            if digest == source.known_digest:
                facts.append((source.path, source.kind, source.size, digest, 0, 0, True))
                continue
        to_read.append(source)
    if not to_read:
        return None, facts
    sizes = {s.path: s.size for s in to_read}
    if blob is None:
        parsed = _parse([s.path for s in to_read], unit.kind, unit.repair)
    else:
        (source,) = to_read
        suffix = ".json.gz" if source.path.lower().endswith(".gz") else ".json"
        with tempfile.NamedTemporaryFile(suffix=suffix, prefix="musicstream-") as spool:
            spool.write(blob)
            spool.flush()
            parsed = _parse([spool.name], unit.kind, unit.repair)
        _rename(parsed, spool.name, source.path)
    for outcome in parsed.files:
        facts.append(
            (
                outcome.path,
                unit.kind,
                sizes[outcome.path],
                outcome.digest,
                outcome.records,
                outcome.rejects,
                False,
            )
        )
    return parsed, facts


def _parse(paths: list[str], kind: str, repair: bool) -> Parsed:
    if kind == "log":
        (path,) = paths
        return run_task(LogTask(path, repair=repair))
    return run_task(SongTask(tuple(paths), repair))


def _rename(parsed: Parsed, spooled: str, original: str) -> None:
    for outcome in parsed.files:
        if outcome.path == spooled:
            outcome.path = original
    parsed.rejects = [(original if path == spooled else path, *rest) for path, *rest in parsed.rejects]  # type: ignore[misc]


def _units(items: Iterable[Any]) -> Iterator[tuple[Unit, bytes | None]]:
    """Units from a partition of either bins of units (local and fsspec inputs) or (Unit, bytes) pairs."""
    for item in items:
        if isinstance(item, tuple):
            yield item[0], item[1]
        else:
            for unit in item:
                yield unit, None


# -- PostgreSQL output: COPY into the run's staging schema --------------------------------------------------------


def _stage_transaction(conn: psycopg.Connection[Any], job: int, index: int, schema: str, tables: list[str]) -> None:
    """Make this task the only writer of partition ``index`` of ``job``, and remove what an earlier attempt of it
    committed (the Spark task was retried); ``_done`` then marks the partition written, in the same transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (job, index))
    path = sql.Identifier(schema).as_string(conn)
    conn.execute(
        "SELECT set_config('search_path', %s, true), set_config('musicstream.part', %s, true)", (path, str(index))
    )
    if conn.execute("SELECT 1 FROM stage_done WHERE job = %s AND part = %s", (job, index)).fetchone():
        for table in tables:
            conn.execute(sql.SQL("DELETE FROM {} WHERE part = %s").format(sql.Identifier(table)), (index,))
        conn.execute("DELETE FROM stage_done WHERE job = %s AND part = %s", (job, index))


def _done(conn: psycopg.Connection[Any], job: int, index: int) -> None:
    conn.execute("INSERT INTO stage_done (job, part) VALUES (%s, %s)", (job, index))


def stage_partition(
    index: int, items: Iterable[Any], conninfo: str, schema: str, env: dict[str, str]
) -> Iterator[tuple[Any, ...]]:
    """Parse a partition's files and COPY its plays, songs and rejects into the staging schema, committed on
    their own (a retried task replaces its earlier attempt's rows). Yields the small rows the driver needs:
    ("file", FileFact...), ("count", skipped, logged_out, peak_rss_mb) and ("user", UserEvent..., path)."""
    os.environ.update(env)
    out: list[tuple[Any, ...]] = []
    with psycopg.connect(conninfo, application_name="musicstream-spark") as conn, conn.transaction():
        _stage_transaction(
            conn, STAGE_LOCK, index, schema, ["stage_plays", "stage_songs", "stage_rejects", "stage_repairs"]
        )
        with conn.cursor() as cur:
            for unit, blob in _units(items):
                parsed, facts = read_unit(unit, blob)
                out.extend(("file", *fact) for fact in facts)
                if parsed is None:
                    continue
                table, columns = ("stage_plays", PLAY_COLUMNS) if unit.kind == "log" else ("stage_songs", SONG_COLUMNS)
                if parsed.csv:
                    with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                        copy.write(parsed.csv)
                if parsed.rejects:
                    with cur.copy("COPY stage_rejects (file, line, reason, raw) FROM STDIN") as copy:
                        for reject in parsed.rejects:
                            copy.write_row(reject)
                repairs = [row for outcome in parsed.files for row in outcome.names.rows(outcome.path)]
                if repairs:
                    with cur.copy(f"COPY stage_repairs ({REPAIR_COLUMNS}) FROM STDIN") as copy:
                        for repair in repairs:
                            copy.write_row(repair)
                path = unit.sources[0].path
                out.extend(("user", *event, path) for event in parsed.users.values())
                out.append(("count", parsed.skipped, parsed.logged_out, parsed.peak_rss_mb))
        faults.point(f"task:{index}")  # its rows are written, not yet committed
        _done(conn, STAGE_LOCK, index)
    faults.point(f"task-committed:{index}")  # committed; Spark does not know yet
    return iter(out)


def stage_users(index: int, rows: Iterable[Any], conninfo: str, schema: str) -> Iterator[int]:
    """COPY a partition of the run's users (one latest event each) into the staging schema."""
    count = 0
    with psycopg.connect(conninfo, application_name="musicstream-spark") as conn, conn.transaction():
        _stage_transaction(conn, USERS_LOCK, index, schema, ["stage_users"])
        with conn.cursor() as cur, cur.copy(f"COPY stage_users ({USER_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row))
                count += 1
        _done(conn, USERS_LOCK, index)
    yield count


# -- Parquet output: typed rows for DataFrames ---------------------------------------------------------------------

# One row layout for every kind of output, so that one pass over the files makes one DataFrame (split by kind).
ROW_FIELDS: tuple[tuple[str, str], ...] = (
    ("kind", "string"),
    ("path", "string"),
    ("line", "bigint"),
    ("user_id", "int"),
    ("session_id", "int"),
    ("item_in_session", "int"),
    ("ts", "bigint"),
    ("tier", "string"),
    ("location", "string"),
    ("user_agent", "string"),
    ("song_title", "string"),
    ("artist_name", "string"),
    ("length_ms", "int"),
    ("title_key", "string"),
    ("artist_key", "string"),
    ("first_name", "string"),
    ("last_name", "string"),
    ("gender", "string"),
    ("track_id", "string"),
    ("title", "string"),
    ("artist_id", "string"),
    ("year", "int"),
    ("duration", "double"),
    ("duration_num", "decimal(30,15)"),
    ("latitude", "double"),
    ("longitude", "double"),
    ("reason", "string"),
    ("raw", "string"),
    ("original", "string"),  # rule 6's repairs: the name read, and what it became (their count: ``records``)
    ("repaired", "string"),
    ("file_kind", "string"),
    ("size", "bigint"),
    ("digest", "string"),
    ("records", "bigint"),
    ("rejects", "bigint"),
    ("unchanged", "boolean"),
    ("skipped", "bigint"),
    ("logged_out", "bigint"),
    ("peak_rss_mb", "double"),
)
ROW_SCHEMA = ", ".join(f"{name} {kind}" for name, kind in ROW_FIELDS)
_INDEX = {name: i for i, (name, _) in enumerate(ROW_FIELDS)}
_WIDTH = len(ROW_FIELDS)
_PLAY_NAMES = [c.strip() for c in PLAY_COLUMNS.split(",")]
_SONG_NAMES = [c.strip() for c in SONG_COLUMNS.split(",")]
_INTEGERS = {"user_id", "session_id", "item_in_session", "ts", "length_ms", "year"}
_FLOATS = {"duration", "latitude", "longitude"}
_DECIMAL = decimal.Context(prec=60)
_SCALE = decimal.Decimal("1e-15")


def _row(kind: str, **values: Any) -> tuple[Any, ...]:
    row: list[Any] = [None] * _WIDTH
    row[0] = kind
    for name, value in values.items():
        row[_INDEX[name]] = value
    return tuple(row)


def numeric(value: float | None) -> decimal.Decimal | None:
    """A duration as PostgreSQL's NUMERIC column holds it (the shortest text of the double the parser read, which
    is what COPY sends), for rule 6's exact ``|duration − length| ≤ 1.0 s``; None when it is too big to match
    any play length anyway."""
    if value is None or abs(value) >= 1e14:
        return None
    return decimal.Decimal(repr(value)).quantize(_SCALE, context=_DECIMAL)


def _csv_rows(data: bytes, names: list[str]) -> Iterator[dict[str, Any]]:
    for fields in csv.reader(io.StringIO(data.decode("utf-8"))):
        record: dict[str, Any] = {}
        for name, text in zip(names, fields, strict=True):
            if text == "":
                record[name] = None  # COPY's CSV reading of an unquoted empty field
            elif name in _INTEGERS:
                record[name] = int(text)
            elif name in _FLOATS:
                record[name] = float(text)
            else:
                record[name] = text
        yield record


def row_partition(items: Iterable[Any], env: dict[str, str]) -> Iterator[tuple[Any, ...]]:
    """Parse a partition's files into rows of ROW_FIELDS: plays, songs, user events, rejects, files, counts."""
    os.environ.update(env)
    for unit, blob in _units(items):
        parsed, facts = read_unit(unit, blob)
        for path, kind, size, digest, records, rejects, unchanged in facts:
            yield _row(
                "file",
                path=path,
                file_kind=kind,
                size=size,
                digest=digest,
                records=records,
                rejects=rejects,
                unchanged=unchanged,
            )
        if parsed is None:
            continue
        path = unit.sources[0].path
        yield _row(
            "count", path=path, skipped=parsed.skipped, logged_out=parsed.logged_out, peak_rss_mb=parsed.peak_rss_mb
        )
        for file, line, reason, raw in parsed.rejects:
            yield _row("reject", path=file, line=line, reason=reason, raw=raw)
        for outcome in parsed.files:
            for file, original, repaired, line, count in outcome.names.rows(outcome.path):
                yield _row("repair", path=file, line=line, original=original, repaired=repaired, records=count)
        for event in parsed.users.values():
            yield _row("user", path=path, **event._asdict())
        if unit.kind == "log":
            for number, play in enumerate(_csv_rows(parsed.csv, _PLAY_NAMES)):
                yield _row("play", path=path, line=number, **play)
        else:
            for number, song in enumerate(_csv_rows(parsed.csv, _SONG_NAMES)):
                yield _row("song", path=path, line=number, duration_num=numeric(song["duration"]), **song)
