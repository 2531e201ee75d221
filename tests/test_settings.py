"""Settings files (musicstream.toml), `musicstream config`, and --quiet / --verbose / --log-file (issue 13), through
the real command line in a project folder of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from musicstream.db.connection import Database
from musicstream.load.merge import STEPS

MERGE_STEPS = [step.name for step in STEPS]


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    given = {
        k: v for k, v in os.environ.items() if k not in ("COLUMNS", "MUSICSTREAM_DATABASE_URL", "MUSICSTREAM_HOME")
    }
    proc = subprocess.run(
        [sys.executable, "-m", "musicstream", *args],
        cwd=cwd,
        env={**given, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def _config(project: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    code, out, err = run(project, *args, "config", "--json", env=env)
    assert code == 0, err
    return {s["setting"]: s for s in json.loads(out)["settings"]}


def test_option_beats_environment_beats_file_beats_default(project: Path, tmp_path: Path) -> None:
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "musicstream"
    user.mkdir(parents=True, exist_ok=True)
    (user / "musicstream.toml").write_text(
        'database_url = "postgresql://user-file@h1/db1"\nhome = "state"\n[load]\nworkers = 3\nmax-rejects = 7\n'
    )
    try:
        (project / "musicstream.toml").write_text(
            'database_url = "postgresql://project:s3cret@h2/db2"\n[load]\nworkers = 1\n'
        )
        shown = _config(project)
        assert shown["database_url"]["value"] == "postgresql://project:***@h2:5432/db2"
        assert shown["database_url"]["source"] == f"file {project / 'musicstream.toml'}"
        assert shown["home"] == {
            "setting": "home",
            "value": str(user / "state"),
            "source": f"file {user / 'musicstream.toml'}",
        }
        assert shown["load.workers"]["value"] == 1 and shown["load.max_rejects"]["value"] == 7  # key by key

        env = {"MUSICSTREAM_DATABASE_URL": "postgresql://env@h3/db3", "MUSICSTREAM_HOME": str(tmp_path / "env-home")}
        shown = _config(project, env=env)
        assert shown["database_url"]["value"] == "postgresql://env@h3:5432/db3"
        assert shown["database_url"]["source"] == "environment (MUSICSTREAM_DATABASE_URL)"
        assert shown["home"]["source"] == "environment (MUSICSTREAM_HOME)"

        shown = _config(project, "--database-url", "postgresql://opt@h4/db4", "--home", str(tmp_path / "h"), env=env)
        assert (shown["database_url"]["source"], shown["home"]["source"]) == ("option", "option")
        code, out, err = run(project, "config", "--home", str(tmp_path / "after"), env=env)  # after the command too
        assert code == 0 and str(tmp_path / "after") in out
        assert "s3cret" not in out + err
    finally:
        (user / "musicstream.toml").unlink()


def test_no_settings_file_means_the_defaults(project: Path) -> None:
    shown = _config(project)
    assert shown["database_url"]["source"] == "default" and "embedded PostgreSQL" in str(shown["database_url"]["value"])
    assert shown["home"]["source"] == "default"
    code, out, _ = run(project, "config")
    assert code == 0 and f"not found: {project / 'musicstream.toml'}" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[load\n", "is not valid TOML"),
        ("colour = 1\n", "unknown setting 'colour'"),
        ("home = 3\n", "home must be a non-empty string"),
        ("[lod]\nworkers = 2\n", "[lod] is not a command's table"),
        ("[load]\nworkerz = 2\n", "[load] has no option 'workerz'"),
        ('[load]\nworkers = "many"\n', "[load] workers = 'many'"),
        ("[load]\nworkers = 0\n", "[load] workers = 0"),
        ('[load]\nfull = "yes"\n', "[load] full = 'yes': 'yes' is not true or false"),
        ('database_url = "mysql://x@y/z"\n', "unsupported database URL scheme 'mysql' (from the file "),
    ],
)
def test_a_bad_settings_file_is_one_clear_message(project: Path, text: str, message: str) -> None:
    (project / "musicstream.toml").write_text(text)
    code, out, err = run(project, "status")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert str(project / "musicstream.toml") in err


def test_a_commands_defaults_come_from_the_file_and_its_options_win(
    project: Path, db: Database, udacity: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "input" / "log_data" / "bad.json"
    bad.parent.mkdir(parents=True)
    bad.write_bytes((udacity / "log_data" / "2018" / "11" / "2018-11-01-events.json").read_bytes() + b"not json\n")
    (project / "musicstream.toml").write_text("[load]\nmax-rejects = 0\njson = true\n")
    env = {"MUSICSTREAM_DATABASE_URL": db.conninfo}
    code, _, err = run(project, "load", str(bad.parent.parent), env=env)
    assert code == 1 and "more than --max-rejects 0" in err
    code, out, err = run(project, "load", "--max-rejects", "5", str(bad.parent.parent), env=env)
    assert code == 0, err
    assert json.loads(out)["rejected"] == 1  # json = true from the file: the outcome as JSON


def test_quiet_verbose_and_log_file(project: Path, db: Database, udacity: Path, tmp_path: Path) -> None:
    env = {"MUSICSTREAM_DATABASE_URL": db.conninfo}
    log = tmp_path / "logs" / "musicstream.log"
    log.parent.mkdir()
    code, out, err = run(project, "-q", "--log-file", str(log), "load", str(udacity), env=env)
    assert (code, out, err) == (0, "", "")
    written = log.read_text()
    assert f"merge step 1/{len(MERGE_STEPS)}: touched_artist_keys" in written and " committed in " in written

    code, out, err = run(project, "load", "--full", "-v", str(udacity), env=env)
    assert code == 0 and f"merge step {len(MERGE_STEPS)}/{len(MERGE_STEPS)}: record_files" in err and "Load run" in out
    assert "merge step" not in out, "stdout holds results only"

    code, out, err = run(project, "load", "--log-file", str(log), str(tmp_path / "empty"), env=env)
    assert code == 2  # no such path: a usage error, in the log too
    assert "does not exist" in log.read_text().splitlines()[-1]
    code, _, err = run(project, "-q", "-v", "status", env=env)
    assert code == 2 and "--quiet and --verbose: choose one" in err
    code, _, err = run(project, "--log-file", str(tmp_path / "no" / "such" / "x.log"), "status", env=env)
    assert code == 2 and err.startswith("error: cannot open the log file")


def test_psql_keeps_its_own_short_options(project: Path, db: Database) -> None:
    """-q and -v after `psql` are psql's (quiet, a variable), not musicstream's --quiet and --verbose."""
    code, out, err = run(
        project,
        "psql",
        "-qAt",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        "SELECT 40 + 2",
        env={"MUSICSTREAM_DATABASE_URL": db.conninfo},
    )
    assert (code, out.strip()) == (0, "42"), err
