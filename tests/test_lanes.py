"""The test lanes (tests/conftest.py): a test's marks follow the fixtures it uses, and a test outside the db or the
spark lane cannot reach PostgreSQL or start a JVM, in this process or in a command it starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import FAST_LANE, LANES, LaneError

NOWHERE = "postgresql://u@127.0.0.1:1/x"

MARKED = """
import pytest


@pytest.fixture
def loaded(db):
    return db


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    return tmp_path_factory


def test_db(db): pass
def test_empty_db(empty_db): pass
def test_embedded(embedded): pass
def test_pg15(pg15): pass
def test_through_a_fixture(loaded): pass
def test_spark(spark): pass
def test_spark_through_a_fixture(lake): pass
def test_spark_and_db(spark, loaded): pass
def test_chromium(chromium): pass
@pytest.mark.db
def test_marked_db(tmp_path): pass
def test_plain(tmp_path, monkeypatch): pass
def test_nothing(): pass
"""

# Print each test's lanes once collected (after tests/conftest.py has marked them).
SHOW = """

def pytest_collection_finish(session):
    for item in session.items:
        print("lanes:", item.name, *sorted(m.name for m in item.iter_markers() if m.name in LANES))
"""


def test_marks_follow_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text(encoding="utf-8") + SHOW)
    pytester.makepyfile(test_marked=MARKED)
    done = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    lanes = {line.split()[1]: line.split()[2:] for line in done.outlines if line.startswith("lanes: ")}
    assert lanes == {
        "test_db": ["db"],
        "test_empty_db": ["db"],
        "test_embedded": ["db"],
        "test_pg15": ["db"],
        "test_through_a_fixture": ["db"],
        "test_spark": ["spark"],
        "test_spark_through_a_fixture": ["spark"],
        "test_spark_and_db": ["db", "spark"],
        "test_chromium": ["browser"],
        "test_marked_db": ["db"],
        "test_plain": [],
        "test_nothing": [],
    }, done.stdout.str()
    fast = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", "-m", FAST_LANE)
    assert sorted(line.split()[1] for line in fast.outlines if line.startswith("lanes: ")) == [
        "test_nothing",
        "test_plain",
    ]


def test_the_lanes_are_registered_marks(pytestconfig: pytest.Config) -> None:
    """--strict-markers: a misspelt lane in a mark or a -m expression is an error, not an empty lane."""
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(LANES) <= registered
    assert "--strict-markers" in pytestconfig.getini("addopts")


def test_make_test_fast_runs_this_lane() -> None:
    makefile = (Path(__file__).parents[1] / "Makefile").read_text(encoding="utf-8")
    assert f"FAST_LANE := {FAST_LANE}\n" in makefile
    assert '-m "$(FAST_LANE)" --hypothesis-profile=fast' in makefile


def test_a_fast_test_cannot_connect() -> None:
    with pytest.raises(LaneError, match="outside the db lane"):
        psycopg.connect(NOWHERE)
    with pytest.raises(LaneError, match="outside the db lane"):
        psycopg.Connection.connect(NOWHERE)


@pytest.mark.parametrize("env", ["inherited", "its own"])
def test_a_command_a_fast_test_starts_cannot_connect(env: str) -> None:
    """Also when the test gives the command an environment of its own (as tests that drop PG* variables do)."""
    done = subprocess.run(
        [sys.executable, "-c", f"import psycopg; psycopg.connect({NOWHERE!r})"],
        env=None if env == "inherited" else {"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "test-outside-the-db-lane" in done.stderr, done.stderr


def test_a_fast_test_cannot_start_a_jvm() -> None:
    from musicstream.engines import require_spark
    from musicstream.errors import EngineError

    with pytest.raises(EngineError, match="test-outside-the-spark-lane"):
        require_spark()
