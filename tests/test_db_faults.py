"""Database faults during a load: the server restarts, the connection drops, a statement times out. Each gives a
clear error and exit code 1, changes nothing, and running the load again gives the right result."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from conftest import rows
from musicstream.cli import cli
from musicstream.config import Settings
from musicstream.db.connection import Database


def _paused_load(url: str, paths: list[Path]) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MUSICSTREAM_DATABASE_URL": url,
        "MUSICSTREAM_PAUSE_AT": "merge:insert_plays",
        "MUSICSTREAM_PAUSE_SECONDS": "4",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "musicstream", "load", "--workers", "1", *map(str, paths)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_running(db: Database) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if rows(db, "SELECT 1 FROM etl_runs WHERE status = 'running'"):
                time.sleep(0.5)  # well inside the pause
                return
        except Exception:
            pass
        assert time.monotonic() < deadline, "the load did not start"
        time.sleep(0.1)


def _terminate_backend(pg15: dict[str, Any]) -> None:
    with psycopg.connect(pg15["url"].replace("/musicstreamdb", "/postgres"), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'musicstream' AND datname = 'musicstreamdb' AND pid <> pg_backend_pid()"
        )


@pytest.mark.parametrize("fault", ["connection dropped", "server restarted"])
def test_fault_mid_load_then_rerun(pg15: dict[str, Any], udacity: Path, fault: str) -> None:
    url = pg15["url"]
    runner = CliRunner()
    assert runner.invoke(cli, ["--database-url", url, "init", "--reset", "--yes"]).exit_code == 0
    db = Database(Settings(database_url=url))
    load = _paused_load(url, [udacity])
    _wait_running(db)
    action: Callable[[], None] = (
        (lambda: _terminate_backend(pg15)) if fault == "connection dropped" else pg15["restart"]
    )
    action()
    out, err = load.communicate(timeout=120)
    assert load.returncode == 1, (out, err)
    assert "lost the connection to the database" in err and "run the load again" in err
    assert pg15["password"] not in err
    assert rows(db, "SELECT count(*) FROM trackplays") == [(0,)]
    result = runner.invoke(cli, ["--database-url", url, "load", str(udacity)])
    assert result.exit_code == 0, result.output
    assert rows(db, "SELECT count(*) FROM trackplays") == [(6820,)]
    assert rows(db, "SELECT count(*) FROM users WHERE tier = 'paid'") == [(22,)]
    # the failed run is recorded on a new connection when the server answers again by then, else marked abandoned
    # by the next command
    (first, why), second = rows(db, "SELECT status, coalesce(error, '') FROM etl_runs ORDER BY run_id")
    assert second == ("succeeded", "")
    assert (first == "failed" and "lost the connection to the database" in why) or (first, why) == ("abandoned", "")
    assert runner.invoke(cli, ["--database-url", url, "check"]).exit_code == 0


def test_statement_timeout(db: Database, udacity: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--database-url", db.conninfo, "load", "--statement-timeout", "0.001", str(udacity)]
    )
    assert result.exit_code == 1 and "statement timeout" in result.output
    assert rows(db, "SELECT count(*) FROM trackplays") == [(0,)]
    assert rows(db, "SELECT status FROM etl_runs") == [("failed",)]
