"""Write log files into a folder over time, the way a live app does (``musicstream generate --drip``): the demo of
``musicstream watch``, its tests and the freshness benchmark use it.

The events are the generator's (``core.event_days``: the same users, sessions and songs for a seed), cut into files
of ``file_events`` events each, in time order. File number k lands ``k × file_events / rate`` seconds after the
start: written under a temporary name (``….json.tmp``, which no load lists) and renamed into place, so a reader never
sees half a file. Sessions are numbered from ``first_session``, so that a drip's plays are new next to a sample that
``generate`` wrote (whose sessions count from 1).
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from musicstream.generate.catalog import Song, build_catalog
from musicstream.generate.core import _Counters, _stream, _validate, _write_song_files, event_days

DRIP_START = datetime.date(2018, 12, 1)  # the day after a default `generate` sample's month
FIRST_SESSION = 100_000_000
EVENTS_PER_USER_DAY = 3.0  # as a sample's: a drip of many events spans many days, or give it more users


@dataclass(frozen=True)
class Landed:
    """One file the drip wrote: where, how many events, how many bytes, and when it landed (``time.time()``)."""

    path: Path
    events: int
    size: int
    landed_at: float


@dataclass(frozen=True)
class DripStats:
    song_files: int
    log_files: int
    events: int
    bytes_written: int
    seconds: float


def drip(
    out: Path,
    *,
    rate: float,
    file_events: int,
    files: int | None = None,
    seconds: float | None = None,
    users: int = 1000,
    songs: int = 200,
    seed: int = 0,
    start: datetime.date = DRIP_START,
    first_session: int = FIRST_SESSION,
    on_file: Callable[[Landed], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DripStats:
    """Write ``songs`` song files at once, then log files of ``file_events`` events at ``rate`` events a second
    under ``out/log_data/``, until ``files`` files or ``seconds`` seconds (else until interrupted). Raises
    ``ValueError`` for invalid arguments."""
    out = Path(out)
    _validate(out, users, 1, songs, seed, start, 3.0, None, 0.03)
    if not rate > 0 or file_events < 1 or (files is not None and files < 1) or (seconds is not None and seconds <= 0):
        raise ValueError("rate, file_events, files and seconds must be positive")
    catalog = build_catalog(_stream(seed, "catalog"), songs)
    song_files, written = _write_song_files(out, catalog)
    began = time.monotonic()
    number = 0
    events = 0
    wanted = files * file_events if files is not None else rate * seconds if seconds is not None else None
    days = 3650 if wanted is None else int(wanted / (users * EVENTS_PER_USER_DAY)) + 2
    for lines in _files(catalog, users, days, seed, start, first_session, file_events):
        due = began + number * file_events / rate
        if seconds is not None and due - began >= seconds:
            break
        if files is not None and number >= files:
            break
        sleep(max(0.0, due - time.monotonic()))
        day = lines[0][1]
        path = out / "log_data" / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}-drip-{number:06d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = "\n".join(line for line, _ in lines).encode("ascii") + b"\n"
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        landed = Landed(path, len(lines), len(data), time.time())
        number += 1
        events += len(lines)
        written += len(data)
        if on_file is not None:
            on_file(landed)
    return DripStats(song_files, number, events, written, round(time.monotonic() - began, 3))


def _files(
    catalog: list[Song], users: int, days: int, seed: int, start: datetime.date, first_session: int, file_events: int
) -> Iterator[list[tuple[str, datetime.date]]]:
    """The events of ``days`` days (generated only as the files need them), cut into lists of ``file_events``
    lines, each line with its day."""
    counters = _Counters(next_session=first_session)
    pending: list[tuple[str, datetime.date]] = []
    for day, lines in event_days(
        catalog,
        users=users,
        days=days,
        seed=seed,
        start=start,
        rate=EVENTS_PER_USER_DAY,
        catalog_share=0.03,
        counters=counters,
    ):
        pending.extend((line, day) for line in lines)
        while len(pending) >= file_events:
            yield pending[:file_events]
            del pending[:file_events]
    if pending:
        yield pending
