"""Two loads at once: the second waits for the first (or, with --no-wait, exits at once with a clear message),
the result equals one load, and readers are not blocked while a load runs."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import rows
from musicstream import LoadOptions, run_load
from musicstream.cli import cli
from musicstream.db.connection import Database
from test_order_independence import snapshot


def _cli(db: Database, *args: str, pause_at: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "MUSICSTREAM_DATABASE_URL": db.conninfo}
    if pause_at:
        env["MUSICSTREAM_PAUSE_AT"] = pause_at
        env["MUSICSTREAM_PAUSE_SECONDS"] = "6"
    return subprocess.Popen(
        [sys.executable, "-m", "musicstream", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_until_running(db: Database) -> None:
    deadline = time.monotonic() + 60
    while not rows(db, "SELECT 1 FROM etl_runs WHERE status = 'running'"):
        assert time.monotonic() < deadline, "the load did not start"
        time.sleep(0.1)


def test_second_load_waits_or_fails_fast_and_readers_go_on(db: Database, udacity: Path) -> None:
    run_load(db, [udacity / "log_data" / "2018" / "11" / "2018-11-01-events.json"], LoadOptions(workers=1))
    before = snapshot(db)
    first = _cli(db, "load", "--workers", "1", str(udacity), pause_at="merge:insert_plays")
    try:
        _wait_until_running(db)

        refused = _cli(db, "load", "--no-wait", str(udacity))
        out, err = refused.communicate(timeout=60)
        assert refused.returncode == 1 and "another load is running" in err

        waiting = _cli(db, "load", "--json", str(udacity))
        started = time.monotonic()
        report = CliRunner().invoke(cli, ["--database-url", db.conninfo, "report", "--json"])
        assert report.exit_code == 0 and time.monotonic() - started < 5, "a reader waited for the load"
        assert snapshot(db) == before, "readers see the state before the load until it commits"
        assert waiting.poll() is None, "the second load waits for the first"
    finally:
        first.communicate(timeout=120)
    assert first.returncode == 0
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert '"files_read": 0' in out, "the second load found every file loaded already"
    assert rows(db, "SELECT count(*) FROM trackplays") == [(6820,)]
    assert rows(db, "SELECT status FROM etl_runs ORDER BY run_id") == [("succeeded",)] * 3


@pytest.mark.parametrize("pause_at", ["merge:insert_plays", "merge:session_lengths"])
def test_readers_are_not_blocked_by_a_first_load(db: Database, udacity: Path, pause_at: str) -> None:
    """Loading into empty tables builds their indexes and keys at the end; readers still only wait for the commit
    (paused after the plays went in, before their keys; and after the index builds, the keys not yet attached)."""
    first = _cli(db, "load", "--workers", "1", str(udacity), pause_at=pause_at)
    try:
        _wait_until_running(db)
        time.sleep(0.5)
        started = time.monotonic()
        report = CliRunner().invoke(cli, ["--database-url", db.conninfo, "report", "--json"])
        assert report.exit_code == 0 and time.monotonic() - started < 5, "a reader waited for the load"
        assert first.poll() is None, "the load was still running while the reader read"
    finally:
        first.communicate(timeout=120)
    assert first.returncode == 0
    assert rows(db, "SELECT count(*) FROM trackplays") == [(6820,)]


def test_a_waiting_load_says_whom_it_waits_for(db: Database, udacity: Path, tmp_path: Path) -> None:
    """A load that finds another running on the database says so once on stderr (no -v needed): which run, its
    process, when it started, and how to stop or skip; when the first goes (here: killed), it loads."""
    paused = tmp_path / "paused"
    env = {
        **os.environ,
        "MUSICSTREAM_DATABASE_URL": db.conninfo,
        "MUSICSTREAM_PAUSE_AT": "run-recorded",
        "MUSICSTREAM_PAUSE_SECONDS": "120",
        "MUSICSTREAM_PAUSE_FILE": str(paused),
    }
    first = subprocess.Popen(
        [sys.executable, "-m", "musicstream", "load", "--workers", "1", str(udacity)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    second = None
    try:
        deadline = time.monotonic() + 120
        while not paused.exists() or not paused.read_text():
            assert first.poll() is None and time.monotonic() < deadline, "the first load never got the lock"
            time.sleep(0.1)
        assert int(paused.read_text()) == first.pid
        ((run_id, started),) = rows(db, "SELECT run_id, started_at FROM etl_runs WHERE status = 'running'")
        second = _cli(db, "load", "--json", str(udacity))
        assert second.stderr is not None
        said = second.stderr.readline()  # the first line it writes
        assert second.poll() is None, "the second load waits"
        when = started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert said.endswith(
            f"waiting for load {run_id} (pid {first.pid}, started {when} UTC) — Ctrl-C to stop, --no-wait to fail "
            "at once\n"
        ), said
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the first load's connection ends, and the lock with it
        first.wait(timeout=60)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "waiting" not in err, "said once"
    assert json.loads(out)["records_loaded"] == 6891
    assert rows(db, "SELECT run_id, status FROM etl_runs ORDER BY run_id") == [
        (run_id, "abandoned"),
        (run_id + 1, "succeeded"),
    ]
