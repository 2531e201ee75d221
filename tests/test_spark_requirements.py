"""Without PySpark or Java, `load --engine spark` exits 1 and says exactly what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from musicstream.cli import cli
from musicstream.db.connection import Database


def test_missing_pyspark(db: Database, udacity: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError, as when not installed
    result = CliRunner().invoke(cli, ["--database-url", db.conninfo, "load", "--engine", "spark", str(udacity)])
    assert result.exit_code == 1
    assert "pip install 'musicstream[spark]'" in result.output


def _spark_load(udacity: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "musicstream", "load", "--engine", "spark", str(udacity)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_missing_java(db: Database, udacity: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)  # the venv's scripts: python, musicstream; no java
    env["MUSICSTREAM_DATABASE_URL"] = db.conninfo
    done = _spark_load(udacity, env)
    assert done.returncode == 1, done.stderr
    assert "openjdk-17-jre-headless" in done.stderr and "Traceback" not in done.stderr
    env["JAVA_HOME"] = str(tmp_path)  # set, but no bin/java there
    done = _spark_load(udacity, env)
    assert done.returncode == 1 and "JAVA_HOME" in done.stderr and "openjdk-17-jre-headless" in done.stderr


def test_parquet_needs_spark_and_master_needs_spark(udacity: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["load", "--output", f"parquet:{tmp_path}", str(udacity)])
    assert result.exit_code == 2 and "--engine spark" in result.output
    result = runner.invoke(cli, ["load", "--master", "local[1]", str(udacity)])
    assert result.exit_code == 2 and "--engine spark" in result.output
