"""Names full of SQL and shell metacharacters arrive as data; passwords never show in output or the audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from conftest import PG15_PASSWORD, rows
from musicstream import run_load
from musicstream.cli import cli
from musicstream.config import Settings
from musicstream.db.connection import Database
from test_rejects import event

NASTY = [
    "Robert'); DROP TABLE users;--",
    '$(rm -rf /tmp/x) `whoami` "quoted" \\backslash',
    "%s %(name)s {0} ${HOME} ; | & > /dev/null",
    "tab\there, new\nline, E'\\x41'",
]


def test_metacharacters_arrive_as_data(db: Database, tmp_path: Path) -> None:
    logs = tmp_path / "log_data"
    logs.mkdir()
    lines = [
        json.dumps(event(itemInSession=i, song=name, artist=name, firstName=name, location=name, userAgent=name))
        for i, name in enumerate(NASTY)
    ]
    (logs / "nasty.json").write_text("\n".join(lines))
    songs = tmp_path / "song_data"
    songs.mkdir()
    (songs / "nasty.json").write_text(
        json.dumps(
            {
                "num_songs": 1,
                "artist_id": NASTY[0],
                "artist_latitude": None,
                "artist_longitude": None,
                "artist_location": NASTY[1],
                "artist_name": NASTY[2],
                "song_id": NASTY[3],
                "title": NASTY[0],
                "duration": 1.0,
                "year": 0,
            }
        )
    )
    result = run_load(db, [tmp_path])
    assert result.status == "succeeded" and result.rejected == 0
    assert rows(db, "SELECT to_regclass('public.users') IS NOT NULL") == [(True,)]
    got = rows(
        db,
        "SELECT n.song_title, n.artist_name, p.location, p.user_agent FROM trackplays p "
        "JOIN play_names n USING (name_id) ORDER BY p.item_in_session",
    )
    assert got == [(name, name, name, name) for name in NASTY]
    assert rows(db, "SELECT track_id, title, artist_id FROM tracks WHERE NOT is_inferred") == [
        (NASTY[3], NASTY[0], NASTY[0])
    ]
    assert rows(db, "SELECT first_name FROM users") == [(NASTY[-1],)]
    query = CliRunner().invoke(
        cli, ["--database-url", db.conninfo, "query", "artist_listeners", f"artist={NASTY[0]}", "--json"]
    )
    assert query.exit_code == 0 and json.loads(query.output)[0]["plays"] == 1


def test_password_never_shown(pg15: dict[str, Any], tmp_path: Path) -> None:
    runner = CliRunner()
    url = pg15["url"]
    bad_logs = tmp_path / "log_data"
    bad_logs.mkdir()
    (bad_logs / "bad.json").write_text("not json\n")
    outputs = []
    for args in (
        ["init"],
        ["status"],
        ["status", "--json"],
        ["load", "--max-rejects", "0", str(tmp_path)],
        ["load", "--max-rejects", "0", "--json", str(tmp_path)],
        ["check", "--json"],
    ):
        result = runner.invoke(cli, ["--database-url", url, *args])
        outputs.append(result.output)
    wrong_port = url.replace(f":{pg15['port']}/", ":1/")
    outputs.append(runner.invoke(cli, ["--database-url", wrong_port, "status"]).output)
    wrong_user = url.replace("admin:", "nobody:")
    outputs.append(runner.invoke(cli, ["--database-url", wrong_user, "status"]).output)
    for text in outputs:
        assert PG15_PASSWORD not in text
    assert "***" in outputs[1]  # status shows where the database is, with the password masked
    db = Database(Settings(database_url=url))
    audit = rows(db, "SELECT coalesce(error, '') FROM etl_runs")
    assert audit and all(PG15_PASSWORD not in error for (error,) in audit)
