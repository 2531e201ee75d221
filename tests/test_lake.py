"""The Parquet lake (`load --engine spark --output parquet:PATH`): a reader never sees it half-written, whatever
moment the writer is killed at (SIGKILL, through the real command line), and it answers the report's figures on
its own, read with DuckDB as an analyst would read it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from musicstream.db.connection import Database
from test_errors import musicstream
from test_spark import current, read_lake

DAYS = ("2018-11-01", "2018-11-02", "2018-11-03")


@pytest.fixture(scope="module")
def first_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import UDACITY

    root = tmp_path_factory.mktemp("first")
    shutil.copytree(UDACITY / "song_data", root / "song_data")
    (root / "log_data").mkdir()
    for day in DAYS:
        shutil.copy(UDACITY / "log_data" / "2018" / "11" / f"{day}-events.json", root / "log_data")
    return root


@pytest.fixture(scope="module")
def lakes(spark: Any, first_batch: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A lake published from the first batch ("old"), and what the whole sample gives ("new")."""
    from conftest import UDACITY
    from musicstream.engines import write_parquet

    old = tmp_path_factory.mktemp("old") / "lake"
    write_parquet([first_batch], str(old))
    new = tmp_path_factory.mktemp("new") / "lake"
    write_parquet([UDACITY], str(new))
    return {"old": old, "old_tables": read_lake(old), "new": new, "new_tables": read_lake(new)}


def _spark_cli(lake: Path, data: Path, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSICSTREAM_", "PYSPARK_"))}
    if kill_at:
        env["MUSICSTREAM_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "musicstream", "load", "--engine", "spark", "--output", f"parquet:{lake}", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# The first table written, the last, all of them (before _CURRENT changes), and after publishing (before the old
# versions go): between tables the lake's state differs only by which folders of the unpublished version exist.
STEPS = ("lake:written:trackplays", "lake:written:rejects", "lake:written", "lake:published")


def test_a_writer_stopped_at_any_step_leaves_a_whole_lake(
    spark: Any, lakes: dict[str, Any], udacity: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At each step of one write (after each table, after all of them, after publishing, before the old versions
    go), the lake on disk is what a kill there leaves: a reader following _CURRENT reads the old lake or the new
    one, whole."""
    from musicstream.engines import lake as lake_writer
    from musicstream.engines import write_parquet

    lake = tmp_path / "lake"
    shutil.copytree(lakes["old"], lake)
    seen: dict[str, dict[str, Any]] = {}

    def look(name: str) -> None:
        if name.startswith("lake:"):
            seen[name] = read_lake(lake)

    monkeypatch.setattr(lake_writer, "point", look)
    write_parquet([udacity], str(lake))
    assert set(STEPS) <= set(seen)
    for step, tables in seen.items():
        assert tables == lakes["new_tables" if step == "lake:published" else "old_tables"], step
    assert read_lake(lake) == lakes["new_tables"]


@pytest.mark.slow
def test_a_writer_killed_before_publishing_then_run_again(
    spark: Any, lakes: dict[str, Any], udacity: Path, tmp_path: Path
) -> None:
    """SIGKILL (through the command line) after every table is written, before _CURRENT changes: readers still read
    the old lake; the next run publishes the new one, keeps the version before it, and removes the killed run's (and
    a pointer file a publish killed before its rename would leave)."""
    from musicstream.engines import write_parquet

    lake = tmp_path / "lake"
    shutil.copytree(lakes["old"], lake)
    killed = _spark_cli(lake, udacity, "lake:written")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert read_lake(lake) == lakes["old_tables"]
    assert len([p for p in lake.iterdir() if p.name.startswith("v-")]) == 2  # the old one and the unpublished one
    (lake / "._CURRENT-x1y2z3").write_text("v-what-a-publish-killed-before-its-rename-left\n")
    write_parquet([udacity], str(lake))
    assert read_lake(lake) == lakes["new_tables"]
    versions = sorted(p.name for p in lake.iterdir() if p.name.startswith("v-"))
    assert len(versions) == 2 and current(lake).name == versions[-1], "the current version and the one before"
    assert sorted(p.name for p in lake.iterdir() if not p.name.startswith("v-")) == ["_CURRENT"]


def test_the_lake_answers_the_reports_figures_with_duckdb(lakes: dict[str, Any], db: Database, udacity: Path) -> None:
    """The report's headline and top tracks, computed by DuckDB from the lake of the sample alone, equal
    `musicstream report` on a PostgreSQL load of the same files."""
    import duckdb

    from musicstream import run_load

    lake = lakes["new"]  # write_parquet([udacity]) into a new folder
    run_load(db, [udacity])
    code, out, err = musicstream("--database-url", db.conninfo, "report", "--json", "--top", "5")
    assert code == 0, err
    report = json.loads(out)

    version = (lake / "_CURRENT").read_text().strip()  # what a reader does: follow the pointer
    plays = f"read_parquet('{lake}/{version}/trackplays/**/*.parquet', hive_partitioning = true)"
    tracks = f"read_parquet('{lake}/{version}/tracks/*.parquet')"
    con = duckdb.connect()
    headline = con.execute(
        f"""SELECT count(*), count(DISTINCT user_id), round(sum(length_ms) / 3600000.0, 1),
                   count(DISTINCT (user_id, session_id)), min(start_time), max(start_time)
            FROM {plays}"""  # noqa: S608 - a path of our own
    ).fetchone()
    assert headline is not None
    expected = report["headline"]
    assert headline[:4] == (expected["plays"], expected["listeners"], expected["listening_hours"], expected["sessions"])
    assert [t.isoformat() for t in headline[4:]] == [expected["first_play"], expected["last_play"]]

    top = con.execute(
        f"""SELECT p.track_id, t.title, count(*) AS plays, count(DISTINCT p.user_id) AS listeners
            FROM {plays} p JOIN {tracks} t USING (track_id)
            GROUP BY 1, 2 ORDER BY plays DESC, listeners DESC, p.track_id LIMIT 5"""  # noqa: S608
    ).fetchall()
    assert top == [(r["track_id"], r["title"], r["plays"], r["listeners"]) for r in report["top_tracks"]["by_plays"]]
    assert expected["plays"] == 6820
