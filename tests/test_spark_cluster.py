"""The Spark engine on a real standalone cluster: a master and two workers, each its own JVM started from the
PySpark package's bin/spark-class on 127.0.0.1, with executors in their own JVMs and Python workers, and
PostgreSQL reached over TCP with a password (Debian's PostgreSQL 15). The driver is the musicstream command line,
run as a user would run it.

Marked ``cluster``: ``pytest -m "not cluster"`` skips them for a fast lane; CI runs them (``make test``)."""

from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from conftest import _fresh_database, rows
from musicstream import LoadOptions, run_load
from musicstream.config import Settings
from musicstream.db.connection import Database
from spark_cluster import free_port, standalone_cluster
from test_order_independence import snapshot
from test_spark import bookkeeping

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

_names = itertools.count()
COUNTS = ("files_read", "files_skipped", "records_read", "records_loaded", "records_skipped", "duplicates", "rejected")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Spark standalone master and two workers (1 core, 1 GB each) on 127.0.0.1 (tests/spark_cluster.py)."""
    from musicstream.engines import require_spark

    require_spark()  # Java 17+ and PySpark: CI installs both; missing, the test fails rather than skips
    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as started:
        yield started


@pytest.fixture
def tcp_db(pg15: dict[str, Any]) -> Iterator[Database]:
    """A fresh database on PostgreSQL 15, reached over TCP with a password (as executors reach it)."""
    name = f"ms_cluster_{os.getpid()}_{next(_names)}"
    url = make_conninfo(pg15["url"], dbname=name)
    db = Database(Settings(database_url=url))
    code, _out, err = _musicstream(db, "init")
    assert code == 0, err
    yield db
    with psycopg.connect(make_conninfo(pg15["url"], dbname="postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _musicstream(
    db: Database, *args: str, env: dict[str, str] | None = None, python: str | None = None
) -> tuple[int, str, str]:
    """The command line as a user runs it; ``python`` is what the executors run (this Python by default: it has
    musicstream installed, as docs/scale-out.md's "install the wheel on every node" says)."""
    proc = _start(db, *args, env=env, python=python)
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def _start(
    db: Database, *args: str, env: dict[str, str] | None = None, python: str | None = None
) -> subprocess.Popen[str]:
    given = {k: v for k, v in os.environ.items() if not k.startswith(("MUSICSTREAM_", "PYSPARK_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "musicstream", "--database-url", db.conninfo, *args],
        env={**given, "PYSPARK_PYTHON": python or sys.executable, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _cluster_load(db: Database, cluster: dict[str, Any], *paths: Path, **kw: Any) -> dict[str, Any]:
    code, out, err = _musicstream(
        db, "load", "--engine", "spark", "--master", cluster["master"], "--json", *map(str, paths), **kw
    )
    assert code == 0, err
    assert "Traceback" not in err, err
    result: dict[str, Any] = json.loads(out)
    return result


def _counts(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in (*COUNTS, "rows_added")}


@pytest.fixture(scope="module")
def local_sample(embedded: Database, udacity: Path) -> dict[str, Any]:
    """What the local engine makes of the public sample in an empty database (one worker): its counts, tables and
    bookkeeping, the clean run every cluster run of the sample is compared with."""
    name = f"ms_cluster_local_{os.getpid()}"
    db = Database(Settings(database_url=_fresh_database(embedded, name), home=embedded.settings.home))
    local = run_load(db, [udacity], LoadOptions(workers=1))
    made = {"counts": _counts(local.as_dict()), "snapshot": snapshot(db), "bookkeeping": bookkeeping(db)}
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return made


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 200,000 generated events, one day sent twice under another name (duplicates), songs kept apart."""
    from musicstream.generate import generate

    root = tmp_path_factory.mktemp("generated")
    generate(root, users=1000, days=31, songs=2000, seed=14, events=200_000)
    days = sorted((root / "log_data").rglob("*.json"))
    shutil.copy(days[5], days[5].with_name("resent-copy.json"))
    return root


def test_generated_data_with_duplicates_and_late_songs_equals_the_local_engine(
    cluster: dict[str, Any], tcp_db: Database, db: Database, generated: Path
) -> None:
    """Logs in a first run (duplicates in it), song files in a second (rule 8 moves known plays), on both."""
    runs = []
    for paths in ([generated / "log_data"], [generated / "song_data"]):
        on_cluster = _cluster_load(tcp_db, cluster, *paths)
        local = run_load(db, paths, LoadOptions())
        assert _counts(on_cluster) == _counts(local.as_dict())
        runs.append(on_cluster)
    assert runs[0]["duplicates"] > 500 and runs[0]["event_records"] > 180_000
    assert runs[1]["rows_added"]["plays_moved_to_catalog"] > 0
    assert snapshot(tcp_db) == snapshot(db)
    assert bookkeeping(tcp_db) == bookkeeping(db)


def _executor_jvm_of(pid: int) -> int:
    """The executor JVM a Python worker runs under (its nearest java ancestor)."""
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        command = Path(f"/proc/{parent}/cmdline").read_bytes()
        if b"CoarseGrainedExecutorBackend" in command:
            return parent
        pid = parent
    raise AssertionError("no executor JVM above the paused Python worker")


def _wait_for(marker: Path, proc: subprocess.Popen[str], seconds: float = 180) -> int:
    deadline = time.monotonic() + seconds
    while not (marker.exists() and marker.read_text()):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached its pause point"
        time.sleep(0.2)
    return int(marker.read_text())


def _killed_while_staging(db: Database, tmp_path: Path, *args: str) -> None:
    """Run the command line, and kill it (SIGKILL) while an executor's first staging task holds its partition."""
    marker = tmp_path / "paused"
    pause = {"MUSICSTREAM_PAUSE_AT": "task:0", "MUSICSTREAM_PAUSE_FILE": str(marker), "MUSICSTREAM_PAUSE_SECONDS": "5"}
    proc = _start(db, *args, env=pause)
    try:
        _wait_for(marker, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL


def test_an_executor_killed_mid_stage_is_retried_and_nothing_is_staged_twice(
    cluster: dict[str, Any], tcp_db: Database, local_sample: dict[str, Any], udacity: Path, tmp_path: Path
) -> None:
    """The JVM of the executor running a staging task is killed (SIGKILL) once the task has written its rows,
    before it commits (its Python worker goes with it, so that transaction rolls back): Spark runs the task again
    on an executor it starts anew, and the run ends equal to a clean one, each file counted once."""
    marker = tmp_path / "paused"
    pause = {
        "MUSICSTREAM_PAUSE_AT": "task:1",
        "MUSICSTREAM_PAUSE_FILE": str(marker),
        "MUSICSTREAM_PAUSE_SECONDS": "10",
        "MUSICSTREAM_PAUSE_ONCE": "1",  # the retried task goes on at once
    }
    proc = _start(tcp_db, "load", "--engine", "spark", "--master", cluster["master"], "--json", str(udacity), env=pause)
    try:
        worker = _wait_for(marker, proc)
        executor = _executor_jvm_of(worker)
        os.kill(executor, signal.SIGKILL)
        time.sleep(1)
        orphan = Path(f"/proc/{worker}").exists()  # the lost attempt's Python worker, still holding its partition
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    with pytest.raises(ProcessLookupError):
        os.kill(executor, 0)  # it really died
    print(f"the lost attempt's Python worker {'outlived' if orphan else 'died with'} its executor")
    assert _counts(json.loads(out)) == local_sample["counts"], "each file counted once"
    assert snapshot(tcp_db) == local_sample["snapshot"]
    assert bookkeeping(tcp_db) == local_sample["bookkeeping"]


def test_a_task_lost_after_committing_is_retried_and_nothing_is_staged_twice(
    cluster: dict[str, Any], tcp_db: Database, local_sample: dict[str, Any], udacity: Path, tmp_path: Path
) -> None:
    """A staging task's Python worker is killed (SIGKILL) right after its partition committed, before Spark heard
    of it: the retried task removes the partition's rows and writes them again, so nothing is staged twice."""
    lost = {"MUSICSTREAM_KILL_AT": "task-committed:1", "MUSICSTREAM_KILL_ONCE_FILE": str(tmp_path / "killed")}
    on_cluster = _cluster_load(tcp_db, cluster, udacity, env=lost)
    assert (tmp_path / "killed").exists(), "the task was killed once"
    assert _counts(on_cluster) == local_sample["counts"], "no play staged twice (no extra duplicates)"
    assert snapshot(tcp_db) == local_sample["snapshot"]


def test_the_public_sample_on_a_cluster_equals_the_local_engine_also_after_a_killed_driver(
    cluster: dict[str, Any], tcp_db: Database, db: Database, udacity: Path, tmp_path: Path
) -> None:
    """Three days (loaded by the local engine: a cluster run onto a cluster run is the generated-data test's), then
    the whole sample with the driver (the musicstream process) killed while executors stage: the database keeps its
    committed state and the staging schema is left; the next run drops it, skips the three days, and the tables,
    rejects, manifest and counts equal the local engine's."""
    days = udacity / "log_data" / "2018" / "11"
    first = tmp_path / "first"
    (first / "log_data").mkdir(parents=True)
    for day in ("2018-11-01", "2018-11-02", "2018-11-03"):
        shutil.copy(days / f"{day}-events.json", first / "log_data")
    run_load(db, [first], LoadOptions(workers=1))
    run_load(tcp_db, [first], LoadOptions(workers=1))
    before = snapshot(tcp_db)
    assert before == snapshot(db)
    _killed_while_staging(tcp_db, tmp_path, "load", "--engine", "spark", "--master", cluster["master"], str(udacity))
    assert snapshot(tcp_db) == before, "a killed run committed nothing"
    assert bookkeeping(tcp_db)["staging_schemas"], "the killed run's staging schema is left for the next run"

    on_cluster = _cluster_load(tcp_db, cluster, udacity)
    local = run_load(db, [udacity], LoadOptions(workers=1))
    assert _counts(on_cluster) == _counts(local.as_dict())
    assert snapshot(tcp_db) == snapshot(db)
    assert bookkeeping(tcp_db) == bookkeeping(db)  # staging_schemas: none left
    assert rows(tcp_db, "SELECT count(*) FROM trackplays") == [(6820,)]
    statuses = [row[0] for row in rows(tcp_db, "SELECT status FROM etl_runs ORDER BY run_id")]
    assert statuses == ["succeeded", "abandoned", "succeeded"]


def _loaded_files(db: Database) -> int:
    return int(rows(db, "SELECT count(*) FROM loaded_files")[0][0])


def _until_loaded(db: Database, proc: subprocess.Popen[str], files: int, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while _loaded_files(db) < files:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"the watcher loaded {_loaded_files(db)} of {files} files"
        time.sleep(0.5)


def test_a_watcher_on_the_cluster_loads_files_as_they_land_exactly_once_after_kill_9(
    cluster: dict[str, Any], tcp_db: Database, local_sample: dict[str, Any], udacity: Path, tmp_path: Path
) -> None:
    """Streaming on the cluster: `watch --engine spark --master spark://...` keeps one Spark session and has the
    executors stage each micro-batch into the same staging and merge as a load. The first watcher is killed
    (SIGKILL) while executors stage its batch; a second one drops the left staging schema, loads the files that
    were waiting, then the rest of the sample as it lands, and stops on SIGTERM (exit 0). The tables equal the
    local engine's one load of the sample, and no staging schema is left."""
    watched = tmp_path / "incoming"
    shutil.copytree(udacity / "song_data", watched / "song_data")
    days = sorted((udacity / "log_data").rglob("*.json"))
    wave1, wave2 = days[:10], days[10:]
    (watched / "log_data").mkdir()
    for day in wave1:
        shutil.copy(day, watched / "log_data")
    songs = sum(1 for _ in (watched / "song_data").rglob("*.json"))
    watch = ["watch", "--json", "--settle", "0.2", "--interval", "0.5", "--engine", "spark"]
    watch += ["--master", cluster["master"], str(watched)]
    _killed_while_staging(tcp_db, tmp_path, *watch)
    assert _loaded_files(tcp_db) == 0, "the killed batch committed nothing"
    assert bookkeeping(tcp_db)["staging_schemas"], "its staging schema is left for the next run"

    proc = _start(tcp_db, *watch)
    try:
        _until_loaded(tcp_db, proc, songs + len(wave1))
        for day in wave2:  # each written under a temporary name, renamed into place
            shutil.copy(day, watched / "log_data" / (day.name + ".tmp"))
            os.replace(watched / "log_data" / (day.name + ".tmp"), watched / "log_data" / day.name)
        _until_loaded(tcp_db, proc, songs + len(days))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    events = [json.loads(line) for line in out.splitlines()]
    batches = [e for e in events if e["event"] == "batch"]
    assert len(batches) >= 2 and events[-1]["event"] == "stopped", events
    assert snapshot(tcp_db) == local_sample["snapshot"]
    assert not bookkeeping(tcp_db)["staging_schemas"]
    assert rows(tcp_db, "SELECT DISTINCT engine FROM etl_runs WHERE status = 'succeeded'") == [("spark",)]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python of the same version without musicstream: the commonest cluster mistake."""
    folder = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return str(folder / "bin" / "python")


def test_executors_without_musicstream_get_one_clear_message(
    cluster: dict[str, Any], tcp_db: Database, udacity: Path, tmp_path: Path, bare_python: str
) -> None:
    """For the PostgreSQL output (the Parquet output runs the same probe first: engines/lake.py write_parquet)."""
    before = snapshot(tcp_db)
    target: list[str] = []
    started = time.monotonic()
    code, out, err = _musicstream(
        tcp_db, "load", "--engine", "spark", "--master", cluster["master"], *target, str(udacity), python=bare_python
    )
    assert code == 1 and out == ""
    assert "Traceback" not in err and "failed 4 times" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "the Spark executors cannot import musicstream (ModuleNotFoundError" in errors[0]
    assert f"Python {bare_python}" in errors[0] and "spark.pyspark.python" in errors[0]
    assert time.monotonic() - started < 120
    assert snapshot(tcp_db) == before and not (tmp_path / "lake").exists()


def test_executors_that_cannot_reach_the_database_are_told_so(
    cluster: dict[str, Any], pg15: dict[str, Any], udacity: Path
) -> None:
    """A URL the executors cannot reach (here: nobody can) is reported by the executors' probe, before any work."""
    nowhere = Database(Settings(database_url=make_conninfo(pg15["url"], port=str(free_port()), dbname="x")))
    code, _out, err = _musicstream(nowhere, "load", "--engine", "spark", "--master", cluster["master"], str(udacity))
    assert code == 1 and "Traceback" not in err
    assert "error: the Spark executors cannot reach the database" in err and pg15["password"] not in err


def test_the_cluster_recipe_runs_as_written(
    cluster: dict[str, Any], tcp_db: Database, local_sample: dict[str, Any], udacity: Path, tmp_path: Path
) -> None:
    """The "Running on a cluster" block of docs/scale-out.md, run by bash in a folder of its own: a wheel of this
    project, an environment for the executors packed by venv-pack, spark-submit with --archives and
    spark.pyspark.python.
    Changed: the master, the executors' size, the database URL, the input, and where spark-submit and the project
    are; every other word is the page's (a page that drifts from these fails here)."""
    import pyspark

    from conftest import ROOT

    page = (ROOT / "docs" / "scale-out.md").read_text(encoding="utf-8")
    block = page.split("## Running on a cluster\n\n```sh\n", 1)[1].split("```", 1)[0]
    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    python = shlex.quote(sys.executable)
    for old, new in (
        ("pip wheel --no-deps -w dist .", f"{python} -m pip wheel --no-deps -w dist {shlex.quote(str(ROOT))}"),
        ("python -m venv env", f"{python} -m venv env"),
        ("spark-submit --master yarn", f"{shlex.quote(str(spark_submit))} --master {cluster['master']}"),
        ("--num-executors 8 --executor-cores 4 --executor-memory 4g", "--executor-cores 1 --executor-memory 1g"),
        ("'postgresql://loader@db.internal:5432/musicstreamdb?sslmode=require'", shlex.quote(tcp_db.conninfo)),
        ("s3a://bucket/sparkify/", shlex.quote(str(udacity))),
    ):
        assert block.count(old) == 1, f"the recipe of docs/scale-out.md changed: {old!r} is not in it once"
        block = block.replace(old, new)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSICSTREAM_", "PYSPARK_", "VIRTUAL_ENV"))}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.rindex("\n{\n")  # the load's --json, after pip's and venv-pack's own output
    result = json.loads(done.stdout[last:])
    assert result["status"] == "succeeded" and result["rows_added"]["trackplays"] == 6820
    assert rows(tcp_db, "SELECT engine FROM etl_runs") == [("spark",)]
    assert snapshot(tcp_db) == local_sample["snapshot"]
