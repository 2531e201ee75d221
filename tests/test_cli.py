"""CLI: commands run, then we query what they wrote; every command has help with an example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import ROOT, rows, scalar
from musicstream.cli import cli
from musicstream.db.connection import Database
from musicstream.db.schema import latest_version
from musicstream.db.sqlfiles import schema_files


def invoke(db: Database, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--database-url", db.conninfo, *args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(name: str) -> None:
    command = cli.commands[name]
    assert command.help and len(command.help) > 40, f"{name} has no help text"
    assert "Example" in command.help, f"{name}'s help shows no example"
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_init_creates_database_and_is_idempotent(empty_db: Database) -> None:
    code, out = invoke(empty_db, "init", "--json")
    assert code == 0
    first = json.loads(out)
    assert first["created_database"] is True and first["applied"] == [version for version, _ in schema_files()]
    code, out = invoke(empty_db, "init", "--json")
    assert code == 0 and json.loads(out)["applied"] == []
    assert scalar(empty_db, "SELECT max(version) FROM schema_migrations") == latest_version()
    assert scalar(empty_db, "SELECT count(*) FROM information_schema.views WHERE table_schema = 'sparkify'") == 5


def test_reset_needs_yes_when_not_a_terminal(db: Database, udacity: Path) -> None:
    invoke(db, "load", str(udacity / "song_data"))
    code, out = invoke(db, "init", "--reset")
    assert code == 2 and "--yes" in out
    assert scalar(db, "SELECT count(*) FROM tracks") == 71
    code, _ = invoke(db, "init", "--reset", "--yes")
    assert code == 0 and scalar(db, "SELECT count(*) FROM tracks") == 0


def test_load_status_check_json(db: Database, udacity: Path) -> None:
    code, out = invoke(db, "load", str(udacity), "--json")
    assert code == 0
    run = json.loads(out)
    assert run["status"] == "succeeded" and run["rows_added"]["trackplays"] == 6820 and run["reconciles"]
    assert scalar(db, "SELECT count(*) FROM trackplays") == 6820

    code, out = invoke(db, "status", "--json")
    assert code == 0
    status = json.loads(out)
    assert status["tables"]["trackplays"] == 6820 and status["recent_runs"][0]["status"] == "succeeded"

    code, out = invoke(db, "check", "--json")
    assert code == 0 and json.loads(out)["passed"] is True

    code, out = invoke(db, "load", str(udacity))
    assert code == 0 and "101" in out and "succeeded" in out


def test_check_fails_with_exit_1_on_bad_data(db: Database, udacity: Path) -> None:
    invoke(db, "load", str(udacity))
    with db.connect() as conn:
        conn.execute("DELETE FROM timetb WHERE start_time = (SELECT min(start_time) FROM timetb)")
    code, out = invoke(db, "check", "--json")
    assert code == 1
    failed = [c["name"] for c in json.loads(out)["checks"] if c["failures"]]
    assert failed == ["timetb_covers_plays"]


def test_usage_and_failure_exit_codes(db: Database, tmp_path: Path) -> None:
    code, _ = invoke(db, "load", str(tmp_path / "missing"))
    assert code == 2
    logs = tmp_path / "log_data"
    logs.mkdir()
    (logs / "bad.json").write_text("not json\n")
    code, out = invoke(db, "load", "--max-rejects", "0", str(tmp_path))
    assert code == 1 and "max-rejects" in out
    assert rows(db, "SELECT status FROM etl_runs") == [("failed",)]


@pytest.mark.db  # libpq tries a port where nothing listens
def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--database-url", "postgresql://u:hunter2@127.0.0.1:1/x", "status"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "cannot connect" in result.output and "hunter2" not in result.output


def test_generate_then_load(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "sample"
    code, text = invoke(db, "generate", str(out), "--users", "20", "--days", "3", "--songs", "30", "--json")
    assert code == 0
    stats = json.loads(text)
    code, text = invoke(db, "load", str(out), "--json")
    run = json.loads(text)
    assert code == 0 and run["rejected"] == 0 and run["reconciles"]
    assert run["event_records"] == stats["events"]
    assert scalar(db, "SELECT count(*) FROM trackplays") == stats["plays"]
    assert scalar(db, "SELECT count(*) FROM tracks WHERE NOT is_inferred") == stats["song_files"]
    assert scalar(db, "SELECT count(*) FROM trackplays p JOIN tracks t USING (track_id) WHERE NOT t.is_inferred") > 0


@pytest.mark.db  # the command starts the embedded server
def test_console_script_on_the_embedded_default(tmp_path: Path, udacity: Path) -> None:
    """The real entry point, with no database URL: the embedded server in MUSICSTREAM_HOME."""
    home = Path("/tmp") / f"msh-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSICSTREAM_", "PG"))}
    env["MUSICSTREAM_HOME"] = str(home)
    try:
        for args in (["init"], ["load", str(udacity)], ["status"]):
            done = subprocess.run(
                [sys.executable, "-m", "musicstream", *args], env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, done.stderr
        assert "6,820" in done.stdout and "embedded PostgreSQL" in done.stdout
        done = subprocess.run(
            [sys.executable, "-m", "musicstream", "psql", "-tAc", "SELECT count(*) FROM users"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and done.stdout.strip() == "97"
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=False)


def test_classic_scripts(db: Database, tmp_path: Path, udacity: Path) -> None:
    """`python create_tables.py` then `python etl.py` load ./data, on the same library code."""
    (tmp_path / "data").symlink_to(udacity)
    env = {**os.environ, "MUSICSTREAM_DATABASE_URL": db.conninfo}
    for script in ("create_tables.py", "etl.py"):
        done = subprocess.run(
            [sys.executable, str(ROOT / script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    assert scalar(db, "SELECT count(*) FROM trackplays") == 6820
    assert scalar(db, "SELECT count(*) FROM users WHERE tier = 'paid'") == 22


def test_sql_queries_module_reads_the_package_sql() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        import sql_queries
    finally:
        sys.path.remove(str(ROOT))
    from musicstream.db.sqlfiles import read_sql

    assert sql_queries.create_table_queries[0] == read_sql("schema/0001_star_schema")
    assert "insert_plays" in sql_queries.load_queries
    assert isinstance(click.Group, type)


def test_load_with_workers_flag(db: Database, udacity: Path) -> None:
    code, out = invoke(db, "load", "--workers", "2", str(udacity), "--json")
    assert code == 0 and json.loads(out)["rows_added"]["trackplays"] == 6820
    code, _ = invoke(db, "load", "--workers", "0", str(udacity))
    assert code == 2


def test_the_top_level_help_agrees_with_the_readme() -> None:
    """Its quick start loads the public sample (data/) as the README's does; a generated sample goes to a state
    folder of its own (README, "A bigger, synthetic sample"), never into the default database."""
    shown = CliRunner().invoke(cli, ["--help"]).output
    readme = (ROOT / "README.md").read_text()
    commands = [line.split("#")[0].strip() for line in shown.splitlines() if line.strip().startswith("musicstream ")]
    assert "musicstream load data/" in commands
    for command in commands:
        if "generate" in command or "sample" in command:
            assert "generate" in command or "--home sample/.musicstream" in command, command
        else:
            assert command in readme, f"{command!r} is in --help, not in the README"
    assert "musicstream --home sample/.musicstream" in readme
