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
    return {"old": old, "old_tables": read_lake(old), "new_tables": read_lake(new)}


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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_at", "sees"),
    [("lake:written:trackplays", "old"), ("lake:written", "old"), ("lake:published", "new")],
)
def test_a_writer_killed_at_any_step_leaves_a_whole_lake(
    lakes: dict[str, Any], udacity: Path, tmp_path: Path, kill_at: str, sees: str
) -> None:
    """Killed after its first table, after all its tables, or after publishing (before removing old versions):
    a reader following _CURRENT reads the old lake or the new one, complete; the next run publishes the new one
    and keeps two versions."""
    lake = tmp_path / "lake"
    shutil.copytree(lakes["old"], lake)
    killed = _spark_cli(lake, udacity, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert read_lake(lake) == lakes[f"{sees}_tables"]
    if kill_at == "lake:written":  # one clean run after a kill is enough to show the recovery
        again = _spark_cli(lake, udacity)
        assert again.returncode == 0, again.stderr
        assert read_lake(lake) == lakes["new_tables"]
        versions = sorted(p.name for p in lake.iterdir() if p.name.startswith("v-"))
        assert len(versions) == 2 and current(lake).name == versions[-1], "the current version and the one before"
        assert sorted(p.name for p in lake.iterdir() if not p.name.startswith("v-")) == ["_CURRENT"]


def test_the_lake_answers_the_reports_figures_with_duckdb(
    spark: Any, db: Database, udacity: Path, tmp_path: Path
) -> None:
    """The report's headline and top tracks, computed by DuckDB from the lake alone, equal `musicstream report`
    on a PostgreSQL load of the same files."""
    import duckdb

    from musicstream import run_load
    from musicstream.engines import write_parquet

    lake = tmp_path / "lake"
    write_parquet([udacity], str(lake))
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
