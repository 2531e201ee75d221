"""PostgreSQL 15 over TCP with password authentication: the same load, and the password never shows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from conftest import PG15_PASSWORD, scalar
from musicstream.cli import cli
from musicstream.config import Settings
from musicstream.db.connection import Database


def test_load_over_tcp_with_password(pg15: dict[str, Any], udacity: Path) -> None:
    url = pg15["url"]
    runner = CliRunner()
    outputs = []
    for args in (
        ["init", "--reset", "--yes"],
        ["load", str(udacity), "--json"],
        ["status", "--json"],
        ["check"],
        ["status"],
    ):
        result = runner.invoke(cli, ["--database-url", url, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    run = json.loads(outputs[1])
    assert run["rows_added"]["trackplays"] == 6820
    status = json.loads(outputs[2])
    assert status["server_version"] // 10000 == 15
    assert status["tables"] == {"trackplays": 6820, "users": 97, "tracks": 5394, "artists": 3206, "timetb": 6813}
    for text in outputs:
        assert PG15_PASSWORD not in text

    db = Database(Settings(database_url=url))
    assert scalar(db, "SELECT count(*) FROM users WHERE tier = 'paid'") == 22
    assert scalar(db, "SELECT count(*) FROM trackplays p JOIN tracks t USING (track_id) WHERE NOT t.is_inferred") == 1
    assert scalar(db, "SELECT count(*) FROM etl_runs WHERE error LIKE %s", (f"%{PG15_PASSWORD}%",)) == 0


def test_pg_environment_and_pgpass(pg15: dict[str, Any], tmp_path: Path, monkeypatch: Any) -> None:
    """A URL with no password and no database: libpq's PG* variables and .pgpass fill them in."""
    pgpass = tmp_path / "pgpass"
    escaped = PG15_PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    pgpass.write_text(f"127.0.0.1:{pg15['port']}:*:{pg15['user']}:{escaped}\n")
    os.chmod(pgpass, 0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(pg15["port"]))
    monkeypatch.setenv("PGUSER", pg15["user"])
    monkeypatch.delenv("PGDATABASE", raising=False)
    result = CliRunner().invoke(cli, ["--database-url", "postgresql://", "init", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["database"] == "musicstreamdb"
