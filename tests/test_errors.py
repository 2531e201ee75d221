"""What a user sees when something goes wrong (issue 13): one message and a documented exit code for every case,
never a Python traceback. Each case runs the real command line in its own process, as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console

from conftest import rows
from musicstream import LoadOptions, run_load
from musicstream.cli.console import RichProgress
from musicstream.db.connection import Database
from musicstream.load.merge import STEPS

MERGE_STEPS = [step.name for step in STEPS]


def musicstream(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, str, str]:
    given = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # tables as wide as their content (a pipe)
    proc = subprocess.run(
        [sys.executable, "-m", "musicstream", *args],
        env={**given, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def _error_line(stderr: str) -> str:
    """The one message a failure prints: one line on stderr (after a Ctrl-C, the terminal's line may end first),
    usage errors included (no usage block)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "plays.csv"
    bad.write_text("user,song\n1,Yellow\n")
    mixed = tmp_path / "mixed" / "log_data"
    mixed.mkdir(parents=True)
    good = {"ts": 1541105830796, "userId": "39", "sessionId": 38, "itemInSession": 0, "level": "free",
            "page": "NextSong", "song": "Yellow", "artist": "Coldplay", "length": 269.0, "firstName": "A",
            "lastName": "B", "gender": "F", "location": "X", "userAgent": "Y", "auth": "Logged In",
            "method": "PUT", "status": 200, "registration": 1.5e12}  # fmt: skip
    (mixed / "day.json").write_text(json.dumps(good) + '\nnot json\n{"page": "NextSong", "userId": "39"}\n')
    return {"empty": empty, "bad": bad, "mixed": mixed.parent}


CASES = [
    # (name, arguments ({url}, {missing_url}, {empty}, {bad} filled in), exit code, words the message holds)
    ("unsupported scheme", ["--database-url", "mysql://u@h/db", "status"], 2, "unsupported database URL scheme"),
    ("scheme after the command", ["status", "--database-url", "mysql://u@h/db"], 2, "unsupported database URL"),
    ("no server there", ["--database-url", "postgresql://u:hunter2@127.0.0.1:1/x", "status"], 1, "server running"),
    ("missing database", ["--database-url", "{missing_url}", "status"], 1, "musicstream init"),
    ("unusable home", ["--home", "/proc/nope/home", "init"], 2, "cannot use /proc/nope"),
    ("path that does not exist", ["--database-url", "{url}", "load", "/nope/data"], 2, "does not exist"),
    ("no input files", ["--database-url", "{url}", "load", "{empty}"], 1, "no input files under"),
    ("every record rejected", ["--database-url", "{url}", "load", "{bad}"], 1, "every record read was rejected (2)"),
    ("query misspelt", ["--database-url", "{url}", "query", "top_trakcs"], 2, "did you mean 'top_tracks'"),
]


@pytest.mark.parametrize(("name", "args", "code", "words"), CASES, ids=[c[0] for c in CASES])
def test_each_failure_is_one_message_and_an_exit_code(
    db: Database, inputs: dict[str, Path], name: str, args: list[str], code: int, words: str
) -> None:
    values = {
        "url": db.conninfo,
        "missing_url": psycopg.conninfo.make_conninfo(db.conninfo, dbname="ms_no_such_db"),
        **{k: str(v) for k, v in inputs.items()},
    }
    got, _, stderr = musicstream(*(a.format(**values) for a in args))
    message = _error_line(stderr)
    assert got == code, (name, stderr)
    assert words in message, (name, message)
    assert "hunter2" not in stderr and "\t" not in message


USAGE_ERRORS = [
    # (arguments, words the one line holds): each exits 2, whichever command or subcommand click rejects it in
    (["load"], "missing argument 'PATHS...' (see `musicstream load --help`)"),
    (["load", "--nope", "data"], "no such option '--nope'"),
    (["frobnicate"], "no such command 'frobnicate'"),
    (["status", "--runs", "many"], "--runs: 'many' is not a valid integer"),
    (["report", "--since", "2018-11-31"], "--since: 2018-11-31 is not a date (YYYY-MM-DD)"),
    (["report", "--until", "notadate"], "--until: notadate is not a date (YYYY-MM-DD)"),
    (["report", "--since", "2018-11-20", "--until", "2018-11-10"], "--since is after --until"),
    (["report", "--tier", "gold"], "--tier: 'gold' is not one of 'free', 'paid'"),
    (["runs", "show"], "missing argument 'RUN_ID'"),
    (["runs", "show", "three"], "RUN_ID: 'three' is not a valid integer"),
    (["runs", "--limit", "0"], "--limit: 0 is not in the range x>=1"),
    (["runs", "show", "1", "--nope"], "no such option '--nope'"),
    (["sql", "SELECT 1", "--csv", "--json"], "--csv and --json: choose one"),
    (["sql", "CREATE TABLE t (a int)"], "this statement writes; add --write"),
    (["--quiet", "--verbose", "status"], "--quiet and --verbose: choose one"),
    (["query", "top_tracks", "limit=many"], "parameter limit takes a whole number"),
    (["load", "--master", "spark://h:7077", "."], "--master needs --engine spark"),
    (["watch", "--master", "spark://h:7077", "."], "--master needs --engine spark"),
    (["watch", "--engine", "flink", "."], "--engine: 'flink' is not one of 'local', 'spark'"),
]


@pytest.mark.parametrize(("args", "words"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_a_usage_error_is_one_line_and_exit_code_2(db: Database, args: list[str], words: str) -> None:
    code, out, err = musicstream("--database-url", db.conninfo, *args)
    message = _error_line(err)
    assert code == 2 and out == "", err
    assert words.lower() in message.lower(), message
    assert "Usage:" not in err and "Try " not in err


SQL_ERRORS = [
    # (statement, PostgreSQL's words, where) -- a failed query is a failure (exit 1), not a usage error
    ("SELEC 1", 'syntax error at or near "SELEC"', "at character 1"),
    ("SELECT nope FROM users", 'column "nope" does not exist', "at character 8"),
    ("SELECT * FROM no_such_table", 'relation "no_such_table" does not exist', "at character 15"),
    ("SELECT 1 / 0", "division by zero", ""),
]


@pytest.mark.parametrize(("statement", "words", "where"), SQL_ERRORS, ids=[s for s, _, _ in SQL_ERRORS])
def test_a_failed_sql_statement_says_what_and_where_and_exits_1(
    db: Database, statement: str, words: str, where: str
) -> None:
    code, out, err = musicstream("--database-url", db.conninfo, "sql", statement)
    message = _error_line(err)
    assert code == 1 and out == "", err
    assert words in message and where in message, message
    assert "at character" in message or not where


def test_allow_empty_and_the_top_reasons(db: Database, inputs: dict[str, Path]) -> None:
    code, out, _ = musicstream("--database-url", db.conninfo, "load", "--allow-empty", str(inputs["empty"]))
    assert code == 0 and "No input files found" in out
    code, out, _ = musicstream("--database-url", db.conninfo, "load", "--allow-empty", "--json", str(inputs["bad"]))
    assert code == 0 and json.loads(out)["rejected"] == 2
    assert rows(db, "SELECT count(*) FROM rejects") == [(2,)]
    code, out, _ = musicstream("--database-url", db.conninfo, "load", "--json", str(inputs["mixed"]))
    run = json.loads(out)
    assert code == 0 and run["records_loaded"] == 1 and run["rejected"] == 2
    examples = {r["example"] for r in run["top_rejects"]}
    assert {r["records"] for r in run["top_rejects"]} == {1} and sum(r["records"] for r in run["top_rejects"]) == 2
    assert {e.rsplit(":", 1)[1] for e in examples} == {"2", "3"} and all(
        e.endswith(("day.json:2", "day.json:3")) for e in examples
    )


def test_global_options_after_the_command(db: Database, udacity: Path) -> None:
    code, out, _ = musicstream("load", "--database-url", db.conninfo, "--json", str(udacity))
    assert code == 0 and json.loads(out)["rows_added"]["trackplays"] == 6820
    code, out, _ = musicstream("status", "--json", "--database-url", db.conninfo)
    assert code == 0 and json.loads(out)["tables"]["trackplays"] == 6820


@pytest.mark.db  # the command starts the embedded server
def test_the_embedded_default_in_a_folder_with_spaces_initialises_itself(tmp_path: Path, udacity: Path) -> None:
    """macOS's default state folder is under "Application Support": the embedded server works there, and the first
    command (a load, before any init) creates its database and schema."""
    home = tmp_path / "with space" / "Application Support" / "musicstream"
    env = {"MUSICSTREAM_HOME": str(home)}
    env_without_url = {k: v for k, v in os.environ.items() if k != "MUSICSTREAM_DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-m", "musicstream", "load", "--json", str(udacity)],
        env={**env_without_url, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["rows_added"]["trackplays"] == 6820
    assert (home / "pgdata" / "PG_VERSION").is_file()


@pytest.mark.parametrize("stop_at", ["read:stage_plays:2", "merge:insert_plays"])
def test_ctrl_c_says_nothing_was_committed(db: Database, tmp_path: Path, stop_at: str) -> None:
    """Ctrl-C reaches the loader and its worker processes (one process group): one message, exit code 130, the
    run recorded as interrupted with no half counts, and the tables as they were."""
    from musicstream.generate.core import generate

    data = tmp_path / "data"
    generate(data, users=60, days=6, songs=200, seed=3)
    paused = tmp_path / "paused"
    env = {
        **os.environ,
        "MUSICSTREAM_DATABASE_URL": db.conninfo,
        "MUSICSTREAM_PAUSE_AT": stop_at,
        "MUSICSTREAM_PAUSE_SECONDS": "120",
        "MUSICSTREAM_PAUSE_FILE": str(paused),
        "MUSICSTREAM_LOG_BATCH_BYTES": "1",  # one task per log file: the second is read while workers are busy
    }
    with subprocess.Popen(
        [sys.executable, "-m", "musicstream", "load", "--workers", "2", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job has
    ) as proc:
        deadline = time.monotonic() + 120
        while not paused.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the load never reached " + stop_at
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and _error_line(err) == "error: interrupted — nothing was committed"
    assert rows(db, "SELECT count(*) FROM trackplays") == [(0,)]
    ((status, read, loaded, error),) = rows(db, "SELECT status, records_read, records_loaded, error FROM etl_runs")
    assert (status, read, loaded) == ("interrupted", 0, 0) and "nothing was committed" in error


class _Steps:
    def __init__(self) -> None:
        self.steps: list[tuple[str, int, int]] = []

    def start(self, total_bytes: int, files: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def phase(self, name: str) -> None:
        pass

    def step(self, name: str, number: int, total: int) -> None:
        self.steps.append((name, number, total))


def test_the_merge_shows_its_steps(db: Database, udacity: Path) -> None:
    seen = _Steps()
    run_load(db, [udacity], LoadOptions(workers=1), seen)
    assert [n for _, n, _ in seen.steps] == list(range(1, len(MERGE_STEPS) + 1))
    assert [name for name, _, _ in seen.steps] == [s.replace("_", " ") for s in MERGE_STEPS]
    assert {total for _, _, total in seen.steps} == {len(MERGE_STEPS)}
    screen = StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    progress: Any = RichProgress(console)
    with progress:
        progress.start(100, 1)
        progress.advance(100)
        progress.step("insert plays", 15, len(MERGE_STEPS))
        progress._steps.refresh()
    shown = screen.getvalue()
    assert "merging" in shown and f"14/{len(MERGE_STEPS)}" in shown and "insert plays" in shown
