"""Object storage: inputs under an ``s3://`` URL (a real S3 server on 127.0.0.1) load exactly like the same
files on disk; the manifest and the rejects name them by URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import rows, upload_tree
from musicstream import run_load
from musicstream.db.connection import Database
from musicstream.errors import InputError
from musicstream.extract.files import discover
from test_order_independence import snapshot


@pytest.fixture
def s3_env(s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    return s3_server


def test_s3_inputs_load_like_local_files(
    db: Database, embedded: Database, udacity: Path, s3_env: dict[str, str], tmp_path: Path
) -> None:
    url = upload_tree(s3_env, udacity, "local-engine", "sample/udacity")
    found = discover([url])
    assert len(found) == len(discover([udacity]))
    assert all(f.path.startswith("s3://local-engine/sample/udacity/") for f in found)
    # as a user runs it: the CLI in its own process, the AWS variables in its environment, two parsing workers
    done = subprocess.run(
        [sys.executable, "-m", "musicstream", "load", "--workers", "2", "--json", url],
        env={**os.environ, "MUSICSTREAM_DATABASE_URL": db.conninfo},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded" and result["reconciles"] and result["files_read"] == len(found)
    assert result["rejected"] == 0

    from conftest import _fresh_database
    from musicstream.config import Settings

    disk = Database(Settings(database_url=_fresh_database(embedded, "ms_s3_disk"), home=embedded.settings.home))
    try:
        run_load(disk, [udacity])
        assert snapshot(db) == snapshot(disk)
    finally:
        with embedded.connect(autocommit=True, dbname="postgres") as conn:
            conn.execute("DROP DATABASE IF EXISTS ms_s3_disk WITH (FORCE)")
    # the manifest names each file by its URL; loading again skips every file
    assert rows(db, "SELECT count(*) FROM loaded_files WHERE path LIKE 's3://local-engine/%%'") == [(len(found),)]
    again = run_load(db, [url])
    assert again.files_skipped == len(found) and again.records_read == 0


def test_s3_rejects_are_named_by_url(db: Database, s3_env: dict[str, str], tmp_path: Path) -> None:
    from test_rejects import event

    logs = tmp_path / "log_data"
    logs.mkdir()
    (logs / "day.json").write_text(json.dumps(event()) + "\nnot json\n")
    url = upload_tree(s3_env, tmp_path, "rejects", "in")
    result = run_load(db, [url])
    assert result.rejected == 1 and result.reconciles
    assert rows(db, "SELECT file, line FROM rejects") == [("s3://rejects/in/log_data/day.json", 2)]


def test_missing_bucket_and_hadoop_schemes_are_clear_errors(s3_env: dict[str, str]) -> None:
    with pytest.raises(InputError, match="s3://no-such-bucket"):
        discover(["s3://no-such-bucket/x"])
    with pytest.raises(InputError, match="--engine spark"):
        discover(["s3a://bucket/x"])


def test_hidden_folders_are_skipped_like_on_disk(s3_env: dict[str, str], tmp_path: Path) -> None:
    from test_rejects import event

    logs = tmp_path / "log_data"
    (logs / ".ipynb_checkpoints").mkdir(parents=True)
    (logs / "day.json").write_text(json.dumps(event()) + "\n")
    (logs / ".ipynb_checkpoints" / "day-checkpoint.json").write_text(json.dumps(event()) + "\n")
    url = upload_tree(s3_env, tmp_path, "hidden", "in")
    assert [f.path for f in discover([url])] == ["s3://hidden/in/log_data/day.json"]
    assert [Path(f.path).name for f in discover([tmp_path])] == ["day.json"]


def test_watch_once_loads_an_s3_prefix_and_then_only_what_is_new(
    db: Database, udacity: Path, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """`watch --once s3://…` lists the prefix (sizes and last-modified times), loads what has settled, and on the
    next run finds nothing new until an object is added."""
    first = tmp_path / "first" / "log_data"
    first.mkdir(parents=True)
    day = udacity / "log_data" / "2018" / "11"
    (first / "a.json").write_bytes((day / "2018-11-05-events.json").read_bytes())
    url = upload_tree(s3_env, first.parent, "watched", "in")
    command = [sys.executable, "-m", "musicstream", "watch", "--once", "--settle", "0.2", "--json", url]
    env = {**os.environ, "MUSICSTREAM_DATABASE_URL": db.conninfo}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    batches = [e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "batch"]
    assert [b["files"] for b in batches] == [1] and batches[0]["plays_added"] > 0
    again = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and '"batch"' not in again.stdout
    second = tmp_path / "second" / "log_data"
    second.mkdir(parents=True)
    (second / "b.json").write_bytes((day / "2018-11-06-events.json").read_bytes())
    upload_tree(s3_env, second.parent, "watched", "in")
    third = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    batches = [e for e in map(json.loads, third.stdout.splitlines()) if e["event"] == "batch"]
    assert [b["files"] for b in batches] == [1]
    assert rows(db, "SELECT path FROM loaded_files ORDER BY 1") == [
        ("s3://watched/in/log_data/a.json",),
        ("s3://watched/in/log_data/b.json",),
    ]
