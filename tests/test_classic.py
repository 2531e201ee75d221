"""The original project's two scripts on a fresh database: ``python create_tables.py && python etl.py`` builds the
star schema from data/ with the public sample's figures; create_tables.py says what it drops and asks first on a
terminal; both use the CLI's exit codes."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, rows
from musicstream.db.connection import Database


def _env(db: Database) -> dict[str, str]:
    return {**os.environ, "MUSICSTREAM_DATABASE_URL": db.conninfo}


def _script(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=_env(db), stdin=subprocess.DEVNULL, capture_output=True, text=True
    )


def _on_a_terminal(db: Database, args: list[str], answer: bytes) -> tuple[int, str]:
    """Run a script with a terminal as its stdin/stdout, answer its question, return (exit code, what it showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its standard streams are the terminal
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, *args], _env(db))
    shown, answered, deadline = b"", False, time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        if not answered and b"[y/N]" in shown:
            os.write(fd, answer)
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def _figures(db: Database) -> tuple[Any, ...]:
    return rows(
        db,
        """SELECT (SELECT count(*) FROM trackplays), (SELECT count(*) FROM users),
                  (SELECT count(*) FROM users WHERE tier = 'paid'), (SELECT count(*) FROM timetb),
                  (SELECT count(*) FROM trackplays p JOIN tracks t USING (track_id) WHERE NOT t.is_inferred)""",
    )[0]


def test_create_tables_then_etl_build_the_public_sample(empty_db: Database) -> None:
    created = _script(empty_db, "create_tables.py")
    assert created.returncode == 0, created.stderr
    assert "Schema version" in created.stdout
    loaded = _script(empty_db, "etl.py")
    assert loaded.returncode == 0, loaded.stderr
    assert "succeeded" in loaded.stdout and "6,820" in loaded.stdout  # the CLI's summary
    assert _figures(empty_db) == (6820, 97, 22, 6813, 1)

    again = _script(empty_db, "create_tables.py")  # not on a terminal: drops without asking, as the original
    assert again.returncode == 0, again.stderr
    assert "trackplays (6,820 rows)" in again.stdout and "users (97 rows)" in again.stdout
    assert rows(empty_db, "SELECT count(*) FROM trackplays") == [(0,)]


def test_create_tables_asks_on_a_terminal(db: Database) -> None:
    assert _script(db, "etl.py").returncode == 0
    code, shown = _on_a_terminal(db, ["create_tables.py"], b"n\n")
    assert code == 1 and "trackplays (6,820 rows)" in shown and "Drop these tables" in shown
    assert rows(db, "SELECT count(*) FROM trackplays") == [(6820,)]  # said no: nothing dropped
    code, shown = _on_a_terminal(db, ["create_tables.py"], b"y\n")
    assert code == 0 and "Dropped the previous tables" in shown
    assert rows(db, "SELECT count(*) FROM trackplays") == [(0,)]


def test_etl_exit_codes_are_the_clis(db: Database) -> None:
    missing = _script(db, "etl.py", "no/such/folder")
    assert missing.returncode == 2 and "no/such/folder" in missing.stderr and "Traceback" not in missing.stderr
    unknown = _script(db, "create_tables.py", "--force")
    assert unknown.returncode == 2 and "--force" in unknown.stderr


@pytest.mark.parametrize("script", ["create_tables.py", "etl.py"])
def test_outside_the_venv_a_script_says_how_to_install(script: str, tmp_path: Path) -> None:
    """`python3 etl.py` with a Python that lacks the package and its dependencies (here: this one with no site
    packages, -I -S): one line saying how to install, exit code 1, no ModuleNotFoundError traceback."""
    bare = [sys.executable, "-I", "-S"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    for module in ("musicstream", "click"):
        probe = subprocess.run([*bare, "-c", f"import {module}"], cwd=tmp_path, env=env, capture_output=True)
        assert probe.returncode != 0, f"{module} imports without site packages: the test would prove nothing"
    done = subprocess.run(
        [*bare, str(ROOT / script)], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stdout == "", done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: musicstream is not installed") and "Traceback" not in done.stderr
    assert "make setup-run" in line and "pip install -e ." in line and f".venv/bin/python {script}" in line
