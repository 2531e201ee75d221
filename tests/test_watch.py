"""`musicstream watch`: the settle rule, and exactly once through faults. The watcher runs as a real process on
real files against the real PostgreSQL; after each fault the tables equal one `load` of the same files.

Timings here are generous waits, never assertions: freshness is measured by benchmarks/freshness.py.
"""

from __future__ import annotations

import gzip
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import UDACITY, _fresh_database, pg15_server, rows
from musicstream import run_load
from musicstream.config import Settings
from musicstream.db.connection import Database
from musicstream.status import watcher_status
from musicstream.watch import Lister, Settler, gzip_complete, list_inputs
from test_order_independence import snapshot

DAYS = UDACITY / "log_data" / "2018" / "11"
WAIT = 120  # seconds: a generous bound for anything to happen on a busy machine


def _day(name: str) -> Path:
    return DAYS / f"2018-11-{name}-events.json"


def _drop(source: Path, target: Path) -> Path:
    """Put a file in place the way a well-behaved writer does: a temporary name, then a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)
    return target


# --- the settle rule, on real files (no database)


def test_a_file_is_ready_once_two_listings_settle_apart_see_it_unchanged(tmp_path: Path) -> None:
    log = tmp_path / "log_data" / "a.json"
    log.parent.mkdir()
    log.write_text('{"a": 1}\n')
    settler = Settler(settle=1.0)
    assert settler.observe(list_inputs([str(tmp_path)]), now=100.0)[0] == []
    ready, due = settler.observe(list_inputs([str(tmp_path)]), now=100.5)
    assert ready == [] and due == 101.0
    with log.open("a") as out:  # still being written: the clock starts again
        out.write('{"b": 2}\n')
    assert settler.observe(list_inputs([str(tmp_path)]), now=101.2)[0] == []
    assert settler.observe(list_inputs([str(tmp_path)]), now=101.9)[0] == []
    assert settler.observe(list_inputs([str(tmp_path)]), now=102.2)[0] == [str(log)]
    settler.loaded([str(log)])
    assert settler.observe(list_inputs([str(tmp_path)]), now=103.0)[0] == []  # known: nothing to do
    os.utime(log, ns=(log.stat().st_atime_ns, log.stat().st_mtime_ns + 1_000_000_000))  # touched: changed
    assert settler.observe(list_inputs([str(tmp_path)]), now=104.0)[0] == []
    assert settler.observe(list_inputs([str(tmp_path)]), now=105.0)[0] == [str(log)]


def test_temporary_and_hidden_names_are_never_listed(tmp_path: Path) -> None:
    folder = tmp_path / "log_data"
    (folder / ".partial").mkdir(parents=True)
    for name in ("day.json.tmp", "day.json._COPYING_", ".day.json", "day.json.gz.tmp", "notes.txt"):
        (folder / name).write_text("{}\n")
    (folder / ".partial" / "day.json").write_text("{}\n")
    (folder / "day.json").write_text("{}\n")
    assert list(list_inputs([str(tmp_path)])) == [str(folder / "day.json")]


def test_a_gzip_file_waits_until_its_stream_is_complete(tmp_path: Path) -> None:
    whole = gzip.compress(_day("05").read_bytes())
    target = tmp_path / "log_data" / "day.json.gz"
    target.parent.mkdir()
    target.write_bytes(whole[: len(whole) // 2])
    assert not gzip_complete(str(target))
    settler = Settler(settle=0.5, gzip_grace=60.0)
    settler.observe(list_inputs([str(tmp_path)]), now=10.0)
    ready, due = settler.observe(list_inputs([str(tmp_path)]), now=11.0)  # settled, but the stream is cut
    assert ready == [] and due == 70.0
    target.write_bytes(whole)
    assert gzip_complete(str(target))
    settler.observe(list_inputs([str(tmp_path)]), now=12.0)
    assert settler.observe(list_inputs([str(tmp_path)]), now=13.0)[0] == [str(target)]
    target.write_bytes(whole[:-3])  # truncated for good: after the grace, it is read (its records become rejects)
    settler.observe(list_inputs([str(tmp_path)]), now=20.0)
    assert settler.observe(list_inputs([str(tmp_path)]), now=79.0)[0] == []
    assert settler.observe(list_inputs([str(tmp_path)]), now=80.5)[0] == [str(target)]


def test_between_full_listings_only_what_changed_is_looked_at(tmp_path: Path) -> None:
    """With OS file events, a poll looks again only at the paths they reported (and the files settling), by the
    same rules as a full listing; a folder that appears, or the time for a full listing, lists everything."""
    root = tmp_path / "in"
    logs = root / "log_data"
    logs.mkdir(parents=True)
    (logs / "a.json").write_text("{}\n")
    lister = Lister([str(root)], full_every=60.0)
    lister.events = True
    assert list(lister.poll(0.0)) == [str(logs / "a.json")]
    (logs / "b.json").write_text("{}\n")
    (logs / "b.json.tmp").write_text("{}\n")
    (logs / ".c.json").write_text("{}\n")
    assert list(lister.poll(1.0)) == [str(logs / "a.json")]  # nothing reported: nothing looked at
    lister.changed([str(logs / "b.json"), str(logs / "b.json.tmp"), str(logs / ".c.json")])
    assert sorted(lister.poll(2.0)) == [str(logs / "a.json"), str(logs / "b.json")]
    (logs / "a.json").write_text("{}\n{}\n")
    assert lister.poll(3.0, settling=[str(logs / "a.json")])[str(logs / "a.json")][0] == 6  # settling: looked at
    (logs / "b.json").unlink()
    lister.changed([str(logs / "b.json")])
    assert list(lister.poll(4.0)) == [str(logs / "a.json")]
    (logs / ".hidden").mkdir()
    (logs / ".hidden" / "d.json").write_text("{}\n")
    lister.changed([str(logs / ".hidden" / "d.json")])
    assert list(lister.poll(5.0)) == [str(logs / "a.json")]
    (logs / "day").mkdir()
    (logs / "day" / "e.json").write_text("{}\n")
    (logs / "f.json").write_text("{}\n")  # not reported: the full listing finds it
    lister.changed([str(logs / "day")])
    assert sorted(lister.poll(6.0)) == sorted(map(str, [logs / "a.json", logs / "day" / "e.json", logs / "f.json"]))
    (logs / "g.json").write_text("{}\n")
    assert str(logs / "g.json") not in lister.poll(7.0)
    assert str(logs / "g.json") in lister.poll(66.0)  # a full listing every full_every seconds
    lister.events = False  # no events: every poll is a full listing
    (logs / "h.json").write_text("{}\n")
    assert str(logs / "h.json") in lister.poll(67.0)


# --- the watcher as a process, against PostgreSQL


class Watcher:
    """`musicstream watch --json` as a process, its events read as they come."""

    def __init__(self, db: Database, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "musicstream", "--database-url", db.conninfo, "watch", "--json"]
        command += ["--settle", "0.3", "--interval", "0.2", *args, str(folder)]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr or []:
            self.err.append(line)

    def _read(self) -> None:
        for line in self.proc.stdout or []:
            self.events.put(json.loads(line))

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.events.empty():
                    break
                continue
            self.seen.append(event)
            if wanted(event):
                return event
        raise AssertionError(f"no {what}; events {self.seen}; stderr {''.join(self.err)}")

    def batches_until(self, plays: int, db: Database) -> None:
        """Wait until the tables hold this many plays (a batch's event comes after its commit)."""
        while rows(db, "SELECT count(*) FROM trackplays")[0][0] < plays:
            self.wait_for(lambda e: e["event"] == "batch", f"batch reaching {plays} plays")

    def stop(self, how: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(how)
        try:
            code = self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.close()
            said = f"events {self.seen}; stderr {self.err}"
            raise AssertionError(f"still running {WAIT} s after {how!r}; {said}") from None
        self.close()
        while not self.events.empty():
            self.seen.append(self.events.get())
        return code

    def close(self) -> None:
        """After the process ended: its output read to the end, its pipes closed."""
        for reader in self.readers:
            reader.join(timeout=WAIT)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        if watcher.proc.poll() is None:
            watcher.proc.kill()
            watcher.proc.wait()
        watcher.close()


@pytest.fixture
def one_load(embedded: Database) -> Iterator[Callable[[list[Path]], dict[str, Any]]]:
    """The tables one `load` of these files gives, in a database of its own."""
    made: list[str] = []

    def load(paths: list[Path]) -> dict[str, Any]:
        name = f"ms_watch_ref_{os.getpid()}_{len(made)}"
        made.append(name)
        reference = Database(Settings(database_url=_fresh_database(embedded, name), home=embedded.settings.home))
        run_load(reference, paths)
        return snapshot(reference)

    yield load
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _plays(db: Database) -> int:
    return int(rows(db, "SELECT count(*) FROM trackplays")[0][0])


def _watch_once(db: Database, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "musicstream", "--database-url", db.conninfo, "watch", "--once"]
    return subprocess.run(
        [*command, "--settle", "0.3", *args, str(folder)],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


def test_once_loads_what_has_settled_and_equals_one_load(db: Database, tmp_path: Path, one_load: Any) -> None:
    folder = tmp_path / "in"
    shutil.copytree(UDACITY / "song_data", folder / "song_data")
    for day in ("01", "02", "03", "04"):
        _drop(_day(day), folder / "log_data" / f"{day}.json")
    (folder / "log_data" / "05.json.tmp").write_bytes(_day("05").read_bytes())  # a copy in progress: not read
    done = _watch_once(db, folder, "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in events] == ["started", "batch", "stopped"]
    assert events[1]["files"] == 75
    assert snapshot(db) == one_load([folder])
    again = _watch_once(db, folder, "--json")  # nothing new: no batch, no run
    assert again.returncode == 0 and '"batch"' not in again.stdout
    assert rows(db, "SELECT count(*) FROM etl_runs") == [(1,)]


def test_the_engine_is_made_once_for_every_batch(
    db: Database, tmp_path: Path, one_load: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watcher makes its engine as it starts and hands that one to every batch's run (the Spark engine's checks
    and session are not made again per batch): three batches of one file each, one engine."""
    from musicstream import engines
    from musicstream import watch as watching
    from musicstream.load.state import LoadOptions

    made: list[Any] = []
    real = watching.engine_for

    def counted(*args: Any) -> Any:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(watching, "engine_for", counted)
    monkeypatch.setattr(engines, "engine_for", counted)  # what a run makes when it is given none
    folder = tmp_path / "in"
    for day in ("01", "02", "03"):
        _drop(_day(day), folder / "log_data" / f"{day}.json")
    events: list[dict[str, Any]] = []
    options = watching.WatchOptions(settle=0.2, once=True, batch_files=1, load=LoadOptions(workers=1))
    assert watching.watch(db, [folder], options, events.append) == 3
    assert [e["event"] for e in events] == ["started", "batch", "batch", "batch", "stopped"]
    assert len(made) == 1
    assert snapshot(db) == one_load([folder])


def test_an_engine_that_cannot_run_stops_the_watcher_at_its_start(db: Database, tmp_path: Path) -> None:
    """No Java where JAVA_HOME says: `watch --engine spark` says so in one line and exits 1 before it watches,
    not when the first file lands."""
    folder = tmp_path / "in"
    folder.mkdir()
    command = [sys.executable, "-m", "musicstream", "--database-url", db.conninfo, "watch", "--json", "--once"]
    done = subprocess.run(
        [*command, "--engine", "spark", str(folder)],  # an empty folder: no batch would make an engine
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, "JAVA_HOME": str(tmp_path / "no-java")},
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""  # never started
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: JAVA_HOME is ") and "Traceback" not in done.stderr, done.stderr
    assert _status(db) is None or _status(db)["state"] != "watching"  # type: ignore[index]


def test_a_file_being_written_is_read_only_whole(db: Database, tmp_path: Path, watchers: list[Watcher]) -> None:
    """A writer that writes a log file in pieces, slower than the listings, pausing mid-line: the watcher reads
    it once it has settled, so no half line ever becomes a reject."""
    folder = tmp_path / "in" / "log_data"
    folder.mkdir(parents=True)
    watcher = Watcher(db, folder.parent, "--settle", "1.0")
    watchers.append(watcher)
    watcher.wait_for(lambda e: e["event"] == "started", "start")
    data = _day("15").read_bytes()
    target = folder / "2018-11-15-events.json"
    with target.open("wb") as out:
        for start in range(0, len(data), len(data) // 6 + 7):  # pieces that end mid-line
            out.write(data[start : start + len(data) // 6 + 7])
            out.flush()
            time.sleep(0.5)
    batch = watcher.wait_for(lambda e: e["event"] == "batch", "batch")
    assert batch["rejected"] == 0 and batch["files"] == 1
    assert rows(db, "SELECT count(*) FROM rejects") == [(0,)]
    assert rows(db, "SELECT count(*) FROM etl_runs") == [(1,)]
    assert watcher.stop() == 0


def test_a_replaced_file_and_a_corrupt_one(
    db: Database, tmp_path: Path, watchers: list[Watcher], one_load: Any
) -> None:
    """A day file replaced by a longer version while the watcher runs is read again; a corrupt file becomes
    rejects and the watcher goes on. The tables equal one load of the final files."""
    folder = tmp_path / "in" / "log_data"
    watcher = Watcher(db, folder.parent)
    watchers.append(watcher)
    day = _day("13").read_bytes().splitlines(keepends=True)
    half = tmp_path / "half.json"
    half.write_bytes(b"".join(day[: len(day) // 2]))
    _drop(half, folder / "13.json")
    watcher.wait_for(lambda e: e["event"] == "batch", "first batch")
    first = _plays(db)
    _drop(_day("13"), folder / "13.json")  # the whole day replaces the half
    watcher.wait_for(lambda e: e["event"] == "batch", "batch of the replaced file")
    assert _plays(db) > first
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_bytes(b"\x00\xff garbage {not json\n" * 5)
    _drop(corrupt, folder / "corrupt.json")
    bad = watcher.wait_for(lambda e: e["event"] == "batch", "batch of the corrupt file")
    assert bad["rejected"] == 5 and bad["records_loaded"] == 0
    _drop(_day("14"), folder / "14.json")
    watcher.wait_for(lambda e: e["event"] == "batch", "batch after the corrupt file")
    assert watcher.stop() == 0
    assert snapshot(db) == one_load([folder.parent])
    assert rows(db, "SELECT count(*) FROM rejects") == [(5,)]


def test_a_batch_that_fails_is_split_and_the_bad_file_held(
    db: Database, tmp_path: Path, watchers: list[Watcher], one_load: Any
) -> None:
    """With --max-rejects 0, a batch holding a file with bad records fails: its files are tried one by one, the
    good ones load, the bad one is held (said once) until it changes."""
    folder = tmp_path / "in" / "log_data"
    folder.mkdir(parents=True)
    (folder / "bad.json").write_bytes(_day("20").read_bytes() + b"{nope\n")
    shutil.copyfile(_day("21"), folder / "21.json")
    watcher = Watcher(db, folder.parent, "--max-rejects", "0")
    watchers.append(watcher)
    held = watcher.wait_for(lambda e: e["event"] == "held", "held file")
    assert held["path"].endswith("bad.json") and "more than --max-rejects 0" in held["error"]
    if not any(e["event"] == "batch" for e in watcher.seen):
        watcher.wait_for(lambda e: e["event"] == "batch", "the good file alone")
    assert rows(db, "SELECT path FROM loaded_files") == [(str(folder / "21.json"),)]
    time.sleep(1.5)  # held: not tried again while unchanged
    assert rows(db, "SELECT count(*) FROM etl_runs WHERE status = 'failed'") == [(2,)]
    _drop(_day("20"), folder / "bad.json")  # fixed
    watcher.wait_for(lambda e: e["event"] == "batch" and e["files"] == 1 and e["plays_added"] > 0, "fixed file")
    assert watcher.stop() == 0
    assert snapshot(db) == one_load([folder.parent])


KILL_POINTS = ["locked", "read:stage_plays:1", "merge:insert_plays", "merge:day_sets", "commit", "committed"]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_killed_mid_batch_then_restarted_equals_one_load(
    db: Database, tmp_path: Path, watchers: list[Watcher], one_load: Any, kill_at: str
) -> None:
    """kill -9 of the watcher at a point of its second batch (SIGKILL, as the OOM killer would); a new watcher
    then finds what is missing: the tables equal one load of the same files."""
    folder = tmp_path / "in" / "log_data"
    _drop(_day("07"), folder / "07.json")
    env = {"MUSICSTREAM_KILL_AT": kill_at, "MUSICSTREAM_KILL_ONCE_FILE": str(tmp_path / "killed")}
    first = _watch_once(db, folder.parent)  # the first batch, before the watcher that dies
    assert first.returncode == 0, first.stderr
    _drop(_day("08"), folder / "08.json")
    _drop(_day("09"), folder / "09.json")
    watcher = Watcher(db, folder.parent, env=env)
    watchers.append(watcher)
    assert watcher.proc.wait(timeout=WAIT) == -signal.SIGKILL
    deadline = time.monotonic() + WAIT
    while (status := _status(db)) is not None and status["running"]:  # the server sees the session go
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status is not None and status["state"] == "gone"
    again = Watcher(db, folder.parent)
    watchers.append(again)
    again.wait_for(lambda e: e["event"] == "started", "restart")
    expected = one_load([folder.parent])
    while snapshot(db) != expected:
        again.wait_for(lambda e: e["event"] == "batch", "the batch that completes the tables")
    assert again.stop() == 0
    assert rows(db, "SELECT count(*) FROM etl_runs WHERE status = 'running'") == [(0,)]


def test_killed_at_random_moments_while_files_drip(
    db: Database, tmp_path: Path, watchers: list[Watcher], one_load: Any
) -> None:
    """Files land (`generate --drip`) while watchers are started and killed with SIGKILL at random moments; the
    last one, left to finish, ends with the tables of one load of every file."""
    folder = tmp_path / "in"
    folder.mkdir()
    drip_options = ["--rate", "600", "--file-events", "300", "--files", "12", "--users", "50", "--songs", "20"]
    drip = subprocess.Popen(
        [sys.executable, "-m", "musicstream", "generate", "--drip", *drip_options, str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rng = random.Random(32)
        for _ in range(3):
            watcher = Watcher(db, folder)
            watchers.append(watcher)
            watcher.wait_for(lambda e: e["event"] == "started", "start")
            time.sleep(rng.uniform(0.3, 2.0))
            watcher.proc.kill()
            watcher.proc.wait(timeout=WAIT)
        assert drip.wait(timeout=WAIT) == 0
    finally:
        drip.kill()
        drip.wait()
    last = Watcher(db, folder)
    watchers.append(last)
    expected = one_load([folder])
    while snapshot(db) != expected:
        last.wait_for(lambda e: e["event"] == "batch", "the batch that completes the tables")
    assert last.stop() == 0
    assert rows(db, "SELECT count(*) FROM loaded_files") == [(32,)]


def _status(db: Database) -> dict[str, Any] | None:
    with db.connect(autocommit=True) as conn:
        return watcher_status(conn)


def test_sigterm_finishes_the_batch_and_ctrl_c_rolls_it_back(
    db: Database, tmp_path: Path, watchers: list[Watcher]
) -> None:
    folder = tmp_path / "in" / "log_data"
    _drop(_day("26"), folder / "26.json")
    pause = {"MUSICSTREAM_PAUSE_AT": "merge:insert_plays", "MUSICSTREAM_PAUSE_SECONDS": "5"}
    term = Watcher(db, folder.parent, env={**pause, "MUSICSTREAM_PAUSE_FILE": str(tmp_path / "term")})
    watchers.append(term)
    _wait_file(tmp_path / "term")
    assert _status(db)["state"] == "loading"  # type: ignore[index]
    assert term.stop(signal.SIGTERM) == 0
    assert [e["event"] for e in term.seen][-2:] == ["batch", "stopped"]
    assert term.seen[-1]["reason"] == "SIGTERM"
    plays = _plays(db)
    assert plays > 0
    assert _status(db)["state"] == "stopped"  # type: ignore[index]

    _drop(_day("27"), folder / "27.json")
    ctrl_c = Watcher(db, folder.parent, env={**pause, "MUSICSTREAM_PAUSE_FILE": str(tmp_path / "int")})
    watchers.append(ctrl_c)
    _wait_file(tmp_path / "int")
    assert ctrl_c.stop(signal.SIGINT) == 130
    assert "interrupted" in "".join(ctrl_c.err)
    assert _plays(db) == plays
    assert rows(db, "SELECT status FROM etl_runs ORDER BY run_id DESC LIMIT 1") == [("interrupted",)]

    idle = Watcher(db, folder.parent)  # the file Ctrl-C left is loaded; then idle, SIGTERM exits at once
    watchers.append(idle)
    idle.wait_for(lambda e: e["event"] == "batch", "batch")
    assert idle.stop(signal.SIGTERM) == 0


def _wait_file(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_one_watcher_per_database(db: Database, tmp_path: Path, watchers: list[Watcher]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    first = Watcher(db, folder)
    watchers.append(first)
    started = first.wait_for(lambda e: e["event"] == "started", "start")
    second = subprocess.run(
        [sys.executable, "-m", "musicstream", "--database-url", db.conninfo, "watch", str(folder)],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert second.returncode == 1
    assert second.stderr.startswith("error: another watcher is running on this database: pid")
    assert f"pid {started['pid']}" in second.stderr and "Traceback" not in second.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "musicstream", "--database-url", db.conninfo, "status", "--json"],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    status = json.loads(shown.stdout)["watcher"]
    assert status["running"] and status["pid"] == started["pid"] and status["paths"] == [str(folder)]
    assert {"last_run_id", "lag_seconds", "files_waiting"} <= set(status)
    assert first.stop() == 0


def test_the_database_restarted_and_down_a_while(
    pg15: dict[str, Any], tmp_path: Path, watchers: list[Watcher], one_load: Any
) -> None:
    """The server restarts mid-batch, then stops for a while: the watcher says once that it is gone and once that
    it is back, and loads every file once."""
    db = Database(Settings(database_url=pg15["url"]))
    from musicstream.db.schema import initialize

    initialize(db, reset=True)
    folder = tmp_path / "in" / "log_data"
    _drop(_day("10"), folder / "10.json")
    pause = {
        "MUSICSTREAM_PAUSE_AT": "merge:insert_plays",
        "MUSICSTREAM_PAUSE_FILE": str(tmp_path / "paused"),
        "MUSICSTREAM_PAUSE_ONCE": "1",
    }
    watcher = Watcher(db, folder.parent, env=pause)
    watchers.append(watcher)
    _wait_file(tmp_path / "paused")
    pg15["restart"]()
    watcher.wait_for(lambda e: e["event"] == "batch", "the batch again after the restart")
    pg15["stop"]()
    try:
        _drop(_day("11"), folder / "11.json")
        watcher.wait_for(lambda e: e["event"] == "database_down", "database down")
        time.sleep(4)  # several attempts, said once
    finally:
        pg15["start"]()
    watcher.wait_for(lambda e: e["event"] == "batch", "the batch once the database is back")
    assert watcher.stop() == 0
    # each outage said once when it began and once when it ended: the restart's, then the stop's
    said = [e["event"] for e in watcher.seen if e["event"] in ("database_down", "database_up")]
    assert said == ["database_down", "database_up"] * 2, said
    assert pg15["password"] not in json.dumps(watcher.seen) + "".join(watcher.err)
    assert snapshot(db) == one_load([folder.parent])


@pytest.fixture
def small_disk() -> Iterator[tuple[dict[str, Any], Path]]:
    """PostgreSQL 15 whose data is alone on a file system of 192 MB (a tmpfs mounted for the test), so that a test
    can fill the disk and free it again; its write-ahead log is elsewhere, so that a full disk fails a write of the
    tables (an error the session gets) and never one of the log (which stops the server). Mounting needs root and
    the right to mount (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is tested on a file system of its own, which only root can mount")
    disk = Path(tempfile.mkdtemp(prefix="ms-disk-", dir="/tmp"))  # the server's user must reach it
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here: {mounted.stderr.decode().strip()}")
    wal = Path(tempfile.mkdtemp(prefix="ms-wal-", dir="/tmp"))
    try:
        with pg15_server(disk, waldir=wal) as server:
            assert (disk / "data" / "pg_wal").resolve() == wal.resolve()
            yield server, disk
    finally:
        unmounted = subprocess.run(["umount", "--lazy", str(disk)], capture_output=True)
        shutil.rmtree(disk, ignore_errors=True)
        shutil.rmtree(wal, ignore_errors=True)
    assert unmounted.returncode == 0, unmounted.stderr


def test_a_full_disk_stops_the_batch_until_there_is_room(
    small_disk: tuple[dict[str, Any], Path], tmp_path: Path, watchers: list[Watcher], one_load: Any
) -> None:
    """The database's disk fills up: the batch is rolled back, the watcher says once that the database cannot take
    it and tries again, and once there is room every file is loaded once. `load` says the same in one line."""
    server, disk = small_disk
    db = Database(Settings(database_url=server["url"]))
    from musicstream.db.schema import initialize

    initialize(db, reset=True)
    folder = tmp_path / "in" / "log_data"
    _drop(_day("10"), folder / "10.json")
    watcher = Watcher(db, folder.parent)
    watchers.append(watcher)
    watcher.wait_for(lambda e: e["event"] == "batch", "the first batch")
    before = _plays(db)
    room = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as out:  # every byte but 64 KB taken
        os.posix_fallocate(out.fileno(), 0, room.f_bavail * room.f_frsize - 64 * 1024)
    try:
        for day in ("11", "12", "13"):
            _drop(_day(day), folder / f"{day}.json")
        down = watcher.wait_for(lambda e: e["event"] == "database_down", "the database out of room")
        assert "No space left on device" in down["error"], down
        assert _plays(db) == before  # nothing of the failed batch
        done = subprocess.run(
            [sys.executable, "-m", "musicstream", "--database-url", db.conninfo, "load", str(folder / "13.json")],
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert done.returncode == 1, done
        assert "No space left on device" in done.stderr and "Traceback" not in done.stderr, done.stderr
        time.sleep(3)  # attempts in vain, said once
    finally:
        filler.unlink()
    reference = one_load([folder.parent])
    watcher.batches_until(len(reference["trackplays"]), db)
    assert watcher.stop() == 0
    said = [e["event"] for e in watcher.seen if e["event"] in ("database_down", "database_up")]
    assert said == ["database_down", "database_up"], said
    assert snapshot(db) == reference
