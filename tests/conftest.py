"""Fixtures: a real embedded PostgreSQL 18 for the whole session, a fresh database per test, and Debian's
PostgreSQL 15 reached over TCP with password authentication."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql

from musicstream.config import Settings
from musicstream.db.connection import Database
from musicstream.db.schema import migrate

ROOT = Path(__file__).resolve().parents[1]
UDACITY = ROOT / "data"
PG15_BIN = Path("/usr/lib/postgresql/15/bin")

_counter = itertools.count()

pytest_plugins = ("pytester",)  # test_lanes.py runs pytest on tests of its own

# The longest files first, so that `make test` (pytest -n 3 --dist loadfile) starts them early on separate workers
# while the short ones fill in around them; the order changes nothing else.
LONG_FIRST = ("test_spark_cluster.py", "test_spark.py", "test_lake.py", "test_first_use.py", "test_crash.py")


# Test lanes: a test's marks follow the fixtures it uses, directly or through other fixtures. `make test-fast` runs
# the fast lane (FAST_LANE: no PostgreSQL, no JVM, no browser); `make test` runs every lane.
#   db       a PostgreSQL server: the session's embedded one, Debian's 15, or the embedded server the command line
#            starts in a state folder a test gives it (short_tmp in test_first_use.py, fresh_home in
#            test_notebooks.py); a test that starts it otherwise says so with @pytest.mark.db
#   spark    a Spark session or a standalone cluster (JVMs)
#   browser  headless Chromium
LANES: dict[str, frozenset[str]] = {
    "db": frozenset({"pg_home", "embedded", "db", "empty_db", "pg15", "short_tmp", "fresh_home"}),
    "spark": frozenset({"spark", "cluster"}),
    "browser": frozenset({"chromium"}),
}
FAST_LANE = " and ".join(f"not {lane}" for lane in LANES)


def lanes_of(item: pytest.Item) -> set[str]:
    """The lanes a test belongs to: those of the fixtures it uses, and those it is marked with."""
    used = set(getattr(item, "fixturenames", ()))
    return {lane for lane, fixtures in LANES.items() if used & fixtures or item.get_closest_marker(lane)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)

    for item in items:
        for lane in sorted(lanes_of(item)):
            if not item.get_closest_marker(lane):
                item.add_marker(lane)
    items.sort(key=rank)  # stable: within a file, and among the others, the collected order stays


# Hypothesis profiles: the default one (`make test`, CI) runs each property test's own example count; "fast"
# (`make test-fast`: --hypothesis-profile=fast) a tenth of it, at least 10. A test states its count in the default
# profile as @settings(max_examples=examples(N)).
settings.register_profile("fast", max_examples=10)
DEFAULT_EXAMPLES = 100  # hypothesis's default max_examples


def examples(full: int) -> int:
    """A property test's example count in the loaded profile: ``full`` in the default one, less in "fast"."""
    return max(10, full * settings.default.max_examples // DEFAULT_EXAMPLES)


class LaneError(AssertionError):
    """A test reached for a server its lane does not have: it needs the lane's fixture or mark (LANES)."""


@pytest.fixture(autouse=True)
def _lane_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test outside the db lane cannot connect to PostgreSQL, and one outside the spark lane cannot start a JVM,
    here or in a command it starts (libpq and PySpark read PGSSLMODE and JAVA_HOME from the environment it
    inherits): a test the marks put in the wrong lane fails, whichever lane runs it."""
    lanes = lanes_of(request.node)
    if "db" not in lanes:
        why = f"{request.node.nodeid} is outside the db lane: use a database fixture or @pytest.mark.db"

        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise LaneError(f"{why} (it connected to PostgreSQL)")

        monkeypatch.setattr(psycopg, "connect", refuse)
        monkeypatch.setattr(psycopg.Connection, "connect", refuse)
        # libpq refuses it before reaching any server: `invalid sslmode value: "test-outside-the-db-lane..."`,
        # also in a command given an environment of its own
        refused = "test-outside-the-db-lane:use-a-database-fixture-or-mark-db"
        monkeypatch.setenv("PGSSLMODE", refused)
        popen_init = subprocess.Popen.__init__

        def init(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
            if kwargs.get("env") is not None and "PGSSLMODE" not in kwargs["env"]:
                kwargs["env"] = {**kwargs["env"], "PGSSLMODE": refused}
            popen_init(self, *args, **kwargs)

        monkeypatch.setattr(subprocess.Popen, "__init__", init)
    if "spark" not in lanes:
        monkeypatch.setenv("JAVA_HOME", "/nonexistent/test-outside-the-spark-lane-started-a-jvm")


# The user's own settings file (~/.config/musicstream/musicstream.toml) must not reach the tests: an empty config
# folder of their own (inherited by every command they start).
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="mst-config-")
# Output goes to pipes, as in CI: a terminal's width must not reach the tests (pytest-xdist's workers set
# COLUMNS=80; tests that need a width set their own).
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)
# Spark's JVMs (drivers, executors, a test cluster's master and workers) JIT-compile with the first tier only, a
# user's Spark settings aside: tests/spark-conf/spark-defaults.conf says why.
os.environ["SPARK_CONF_DIR"] = str(Path(__file__).with_name("spark-conf"))
os.environ["SPARK_DAEMON_JAVA_OPTS"] = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@pytest.fixture(scope="session")
def udacity() -> Path:
    """The real public sample, shipped in the project's data/ (data/README.md)."""
    if not (UDACITY / "song_data").is_dir():
        pytest.fail(f"the public sample is missing: {UDACITY} (it ships with the project; see data/README.md)")
    return UDACITY


@pytest.fixture(scope="session")
def pg_home() -> Iterator[Path]:
    """MUSICSTREAM_HOME for the embedded server shared by the tests (a short path: sockets live there)."""
    home = Path(tempfile.mkdtemp(prefix="mst-", dir="/tmp"))
    os.chmod(home, 0o755)
    yield home
    # stop the server before its folder goes: its own stop-at-exit reads a file in that folder, and without it
    # the server would run on, orphaned, after the tests
    from musicstream.db import embedded

    server = embedded._servers.pop(home / "pgdata", None)
    if server is not None:
        server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded(pg_home: Path) -> Database:
    """The embedded PostgreSQL, with a template database holding the current schema."""
    db = Database(Settings(database_url=None, home=pg_home))
    with db.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS ms_template")
        conn.execute("CREATE DATABASE ms_template")
    with db.connect(autocommit=True, dbname="ms_template") as conn:
        migrate(conn)
    return db


def _fresh_database(admin: Database, name: str) -> str:
    with admin.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE ms_template").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(admin.conninfo, dbname=name)


@pytest.fixture
def db(embedded: Database) -> Iterator[Database]:
    """A fresh database with the schema, on the embedded server, reached by URL like any user's database."""
    name = f"ms_test_{os.getpid()}_{next(_counter)}"
    url = _fresh_database(embedded, name)
    yield Database(Settings(database_url=url, home=embedded.settings.home))
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_db(embedded: Database) -> Iterator[Database]:
    """A URL naming a database that does not exist yet (for `init`)."""
    name = f"ms_empty_{os.getpid()}_{next(_counter)}"
    url = psycopg.conninfo.make_conninfo(embedded.conninfo, dbname=name)
    yield Database(Settings(database_url=url, home=embedded.settings.home))
    with embedded.connect(autocommit=True, dbname="postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PG15_PASSWORD = "s3cr3t-Pa55:word@/x"


@contextlib.contextmanager
def pg15_server(base: Path, waldir: Path | None = None) -> Iterator[dict[str, Any]]:
    """Debian's PostgreSQL 15 with its data in ``base/data`` (its write-ahead log in ``waldir`` when given, an
    empty folder the server's user can reach), on 127.0.0.1 with scram-sha-256 password authentication: its URL,
    password, and functions to restart, stop and start it. Stopped at the end."""
    if not (PG15_BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 is not installed: apt-get install postgresql-15")
    data = base / "data"
    pwfile = base / "pw"
    pwfile.write_text(PG15_PASSWORD + "\n")
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(pwfile, "postgres")
        os.chmod(base, 0o700)
        if waldir is not None:
            shutil.chown(waldir, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [
            *as_user,
            str(PG15_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "admin",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            *([f"--waldir={waldir}"] if waldir is not None else []),
        ],
        check=True,
        capture_output=True,
    )
    log = base / "log"
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base}"

    def pg_ctl(*args: str) -> None:
        subprocess.run([*as_user, str(PG15_BIN / "pg_ctl"), "-D", str(data), *args], check=True, capture_output=True)

    pg_ctl("-l", str(log), "-w", "-o", options, "start")
    url = f"postgresql://admin:{quote(PG15_PASSWORD, safe='')}@127.0.0.1:{port}/musicstreamdb"
    try:
        yield {
            "host": "127.0.0.1",
            "port": port,
            "user": "admin",
            "password": PG15_PASSWORD,
            "url": url,
            "restart": lambda: pg_ctl("-l", str(log), "-w", "-m", "fast", "restart"),
            "stop": lambda: pg_ctl("-w", "-m", "fast", "stop"),
            "start": lambda: pg_ctl("-l", str(log), "-w", "-o", options, "start"),
            "data": data,
            "log": log,
        }
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl("-m", "immediate", "stop")


@pytest.fixture(scope="session")
def pg15() -> Iterator[dict[str, Any]]:
    """Debian's PostgreSQL 15 on 127.0.0.1 with scram-sha-256 password authentication (pg15_server), for the
    whole session.

    .ci/run installs postgresql-15; a missing server fails the test rather than skipping it.
    """
    base = Path(tempfile.mkdtemp(prefix="ms-pg15-", dir="/tmp"))
    try:
        with pg15_server(base) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One Spark session (local[2]) for every test in this process: starting one costs several seconds."""
    from musicstream.engines import require_spark

    require_spark()
    from musicstream.engines.spark_session import session

    spark = session("local[2]")
    yield spark
    spark.stop()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium, for the HTML report's test in a real browser (.ci/run installs it; missing, the test fails)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium is not installed: apt-get install chromium")
    return path


def rows(db: Database, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def scalar(db: Database, query: str, params: Any = None) -> Any:
    return rows(db, query, params)[0][0]


def schema_catalog(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every constraint and index of the public tables, as PostgreSQL writes their definitions: a load that drops
    keys or indexes for speed must leave exactly these behind."""
    return {
        "constraints": rows(
            db,
            """SELECT conrelid::regclass::text, conname::text, contype::text, pg_get_constraintdef(oid), convalidated
               FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid <> 0 ORDER BY 1, 2""",
        ),
        "indexes": rows(
            db,
            """SELECT tablename::text, indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'public'
               ORDER BY 1, 2""",
        ),
    }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """A real S3-compatible server (moto in server mode) on 127.0.0.1, and the AWS variables that reach it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "AWS_ACCESS_KEY_ID": "musicstream-test",
            "AWS_SECRET_ACCESS_KEY": "musicstream-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }
    finally:
        server.stop()


def upload_tree(env: dict[str, str], local: Path, bucket: str, prefix: str) -> str:
    """Put every file under ``local`` into ``s3://bucket/prefix/`` (the same relative paths); returns the URL."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=bucket)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local).as_posix()}")
    return f"s3://{bucket}/{prefix}"
