"""`musicstream roles`: the analyst can read but not write; the loader loads without being a superuser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from click.testing import CliRunner

from musicstream.cli import cli


def _url(pg15: dict[str, Any], user: str, password: str) -> str:
    return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{pg15['port']}/musicstreamdb"


def test_analyst_reads_loader_loads(pg15: dict[str, Any], udacity: Path) -> None:
    admin = pg15["url"]
    runner = CliRunner()
    assert runner.invoke(cli, ["--database-url", admin, "init", "--reset", "--yes"]).exit_code == 0
    first = runner.invoke(cli, ["--database-url", admin, "roles", "--json"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, ["--database-url", admin, "roles", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["created"] == []
    with psycopg.connect(admin, autocommit=True) as conn:
        for user, group in (("ana", "musicstream_analyst"), ("etl", "musicstream_loader")):
            conn.execute(f"DROP ROLE IF EXISTS {user}")
            conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'pw-{user}' IN ROLE {group}")
        supers = conn.execute("SELECT rolname FROM pg_roles WHERE rolsuper AND rolname IN ('ana', 'etl')").fetchall()
        assert supers == []

    loader = _url(pg15, "etl", "pw-etl")
    loaded = runner.invoke(cli, ["--database-url", loader, "load", str(udacity), "--json"])
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.output)["rows_added"]["trackplays"] == 6820
    assert runner.invoke(cli, ["--database-url", loader, "check"]).exit_code == 0

    analyst = _url(pg15, "ana", "pw-ana")
    report = runner.invoke(cli, ["--database-url", analyst, "report", "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["headline"]["plays"] == 6820
    query = runner.invoke(cli, ["--database-url", analyst, "query", "top_tracks", "limit=1", "--json"])
    assert query.exit_code == 0, query.output
    with psycopg.connect(analyst, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM sparkify.songplays WHERE song_id IS NOT NULL").fetchone() == (1,)
        for statement in (
            "INSERT INTO users (user_id, tier, last_event_ts, last_session_id, last_item) VALUES (1, 'free', 0, 0, 0)",
            "DELETE FROM trackplays",
            "UPDATE users SET tier = 'paid'",
            "TRUNCATE timetb",
            "SELECT raw FROM rejects",
            "DROP TABLE artists",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)  # type: ignore[arg-type]
    refused = runner.invoke(cli, ["--database-url", analyst, "load", str(udacity)])
    assert refused.exit_code == 1
