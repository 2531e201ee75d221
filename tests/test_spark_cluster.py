"""The Spark engine on a real standalone cluster: a master and two workers, each its own JVM started from the
PySpark package's bin/spark-class on 127.0.0.1, with executors in their own JVMs and Python workers, and
PostgreSQL reached over TCP with a password (Debian's PostgreSQL 15). The driver is the musicstream command line,
run as a user would run it.

Marked ``cluster``: ``pytest -m "not cluster"`` skips them for a fast lane; CI runs them (``make test``)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from musicstream import LoadOptions, run_load
from musicstream.config import Settings
from musicstream.db.connection import Database
from test_order_independence import snapshot
from test_spark import bookkeeping

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

_names = itertools.count()
COUNTS = ("files_read", "files_skipped", "records_read", "records_loaded", "records_skipped", "duplicates", "rejected")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive_workers(webui: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=5) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Spark standalone master and two workers (1 core, 1 GB each) on 127.0.0.1, stopped by their process ids."""
    import pyspark

    from musicstream.engines import require_spark

    require_spark()  # Java 17+ and PySpark: CI installs both; missing, the test fails rather than skips
    spark_home = Path(pyspark.__file__).parent
    base = tmp_path_factory.mktemp("spark-cluster")
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(base)}
    port, webui = _free_port(), _free_port()
    master = f"spark://127.0.0.1:{port}"
    spark_class = str(spark_home / "bin" / "spark-class")
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []

    def start(name: str, *args: str) -> None:
        log = (base / f"{name}.log").open("wb")
        logs.append(log)
        processes.append(
            subprocess.Popen(
                [spark_class, *args], env=env, cwd=base, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
          "--webui-port", str(webui))  # fmt: skip
    for n in (1, 2):
        start(
            f"worker{n}", "org.apache.spark.deploy.worker.Worker", master, "--host", "127.0.0.1", "--cores", "1",
            "--memory", "1g", "--webui-port", str(_free_port()), "--work-dir", str(base / f"work{n}"),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while _alive_workers(webui) < 2:
            assert all(p.poll() is None for p in processes), "a Spark daemon exited: see " + str(base)
            assert time.monotonic() < deadline, "the Spark cluster did not come up in 120 s: see " + str(base)
            time.sleep(1)
        yield {"master": master, "webui": webui, "logs": base}
    finally:
        for process in processes:  # each daemon leads its own process group: its JVM and any child go with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in logs:
            log.close()


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
    musicstream installed, as the README's "install it on every node" asks)."""
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


def test_the_public_sample_on_a_cluster_equals_the_local_engine(
    cluster: dict[str, Any], tcp_db: Database, db: Database, udacity: Path
) -> None:
    on_cluster = _cluster_load(tcp_db, cluster, udacity)
    local = run_load(db, [udacity], LoadOptions(workers=1))
    assert on_cluster["status"] == "succeeded" and on_cluster["rows_added"]["trackplays"] == 6820
    assert _counts(on_cluster) == _counts(local.as_dict())
    assert snapshot(tcp_db) == snapshot(db)
    assert bookkeeping(tcp_db) == bookkeeping(db)


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
    for paths in ([generated / "log_data"], [generated / "song_data"]):
        on_cluster = _cluster_load(tcp_db, cluster, *paths)
        local = run_load(db, paths, LoadOptions())
        assert _counts(on_cluster) == _counts(local.as_dict())
    assert on_cluster["rows_added"]["plays_moved_to_catalog"] > 0
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


def test_an_executor_killed_mid_stage_is_retried_and_nothing_is_staged_twice(
    cluster: dict[str, Any], tcp_db: Database, db: Database, udacity: Path, tmp_path: Path
) -> None:
    """The JVM of the executor running a staging task is killed (SIGKILL) while the task holds its partition:
    Spark runs the task again on an executor it starts anew, and the run ends equal to a clean one."""
    marker = tmp_path / "paused"
    pause = {
        "MUSICSTREAM_PAUSE_AT": "task:1",
        "MUSICSTREAM_PAUSE_FILE": str(marker),
        "MUSICSTREAM_PAUSE_SECONDS": "15",
        "MUSICSTREAM_PAUSE_ONCE": "1",  # the retried task goes on at once
    }
    proc = _start(tcp_db, "load", "--engine", "spark", "--master", cluster["master"], "--json", str(udacity), env=pause)
    try:
        worker = _wait_for(marker, proc)
        executor = _executor_jvm_of(worker)
        os.kill(executor, signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    with pytest.raises(ProcessLookupError):
        os.kill(executor, 0)  # it really died
    local = run_load(db, [udacity], LoadOptions(workers=1))
    assert _counts(json.loads(out)) == _counts(local.as_dict()), "each file counted once"
    assert snapshot(tcp_db) == snapshot(db)
    assert bookkeeping(tcp_db) == bookkeeping(db)


def test_a_killed_driver_changes_nothing_and_the_next_run_cleans_up(
    cluster: dict[str, Any], tcp_db: Database, db: Database, udacity: Path, tmp_path: Path
) -> None:
    """The driver (the musicstream process) is killed while executors stage: the database keeps its committed
    state; the staging schema it left is dropped by the next run, which ends equal to a clean run."""
    days = udacity / "log_data" / "2018" / "11"
    first = tmp_path / "first"
    (first / "log_data").mkdir(parents=True)
    for day in ("2018-11-01", "2018-11-02", "2018-11-03"):
        shutil.copy(days / f"{day}-events.json", first / "log_data")
    _cluster_load(tcp_db, cluster, first)
    before = snapshot(tcp_db)
    marker = tmp_path / "paused"
    pause = {"MUSICSTREAM_PAUSE_AT": "task:0", "MUSICSTREAM_PAUSE_FILE": str(marker), "MUSICSTREAM_PAUSE_SECONDS": "5"}
    proc = _start(tcp_db, "load", "--engine", "spark", "--master", cluster["master"], str(udacity), env=pause)
    try:
        _wait_for(marker, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(tcp_db) == before, "a killed run committed nothing"
    assert bookkeeping(tcp_db)["staging_schemas"], "the killed run's staging schema is left for the next run"

    _cluster_load(tcp_db, cluster, udacity)
    run_load(db, [first], LoadOptions(workers=1))
    run_load(db, [udacity], LoadOptions(workers=1))
    assert snapshot(tcp_db) == snapshot(db)
    assert bookkeeping(tcp_db) == bookkeeping(db)  # staging_schemas: none left
    statuses = [row[0] for row in _rows(tcp_db, "SELECT status FROM etl_runs ORDER BY run_id")]
    assert statuses == ["succeeded", "abandoned", "succeeded"]


def _rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python of the same version without musicstream: the commonest cluster mistake."""
    folder = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return str(folder / "bin" / "python")


@pytest.mark.parametrize("output", ["postgres", "parquet"])
def test_executors_without_musicstream_get_one_clear_message(
    cluster: dict[str, Any], tcp_db: Database, udacity: Path, tmp_path: Path, bare_python: str, output: str
) -> None:
    before = snapshot(tcp_db)
    target = ["--output", f"parquet:{tmp_path / 'lake'}"] if output == "parquet" else []
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
    nowhere = Database(Settings(database_url=make_conninfo(pg15["url"], port=str(_free_port()), dbname="x")))
    code, _out, err = _musicstream(nowhere, "load", "--engine", "spark", "--master", cluster["master"], str(udacity))
    assert code == 1 and "Traceback" not in err
    assert "error: the Spark executors cannot reach the database" in err and pg15["password"] not in err
