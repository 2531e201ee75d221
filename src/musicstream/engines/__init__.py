"""Engines that run a load, behind one interface (``load.state.Engine``): the local engine (worker processes,
``engines/local.py``) and Apache Spark (``engines/spark_session.py``: the session and the inputs;
``engines/spark.py``: the PostgreSQL output; ``engines/lake.py``: the Parquet lake; executors run
``engines/tasks.py``).

Both read files with the same reader (``engines/read.py``), so records, rejects and reasons are the same whatever
the engine, and both fill the same staging tables that the run then merges. PySpark is an optional extra: only
those three modules import it, and only after ``require_spark`` has checked that it and a Java runtime are there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from musicstream.errors import EngineError

if TYPE_CHECKING:
    from musicstream.db.connection import Database
    from musicstream.load.state import Engine, LoadOptions
    from musicstream.load.stats import LoadResult

ENGINES = ("local", "spark")
JAVA_MIN = 17
INSTALL_SPARK = "pip install 'musicstream[spark]'"
INSTALL_JAVA = "apt-get install openjdk-17-jre-headless (Debian/Ubuntu), or set JAVA_HOME to a Java 17+ runtime"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home, "bin", "java")
        if not os.access(java, os.X_OK):
            raise EngineError(f"JAVA_HOME is {home}, but {java} is not there. Fix JAVA_HOME, or {INSTALL_JAVA}")
        return str(java)
    found = shutil.which("java")
    if found is None:
        raise EngineError(f"the Spark engine needs Java {JAVA_MIN} or newer, and none was found: {INSTALL_JAVA}")
    return found


def require_spark() -> None:
    """Raise EngineError saying exactly what to install when PySpark or a Java 17+ runtime is missing."""
    try:
        import pyspark  # noqa: F401 - only to know that it is there; the Spark modules use it
    except ImportError:
        raise EngineError(f"the Spark engine needs PySpark, which is not installed: {INSTALL_SPARK}") from None
    java = _java()
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False).stderr
    except OSError as exc:
        raise EngineError(f"cannot run {java}: {exc}. {INSTALL_JAVA}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if match is None:
        raise EngineError(f"cannot tell the version of {java}. The Spark engine needs Java {JAVA_MIN}+: {INSTALL_JAVA}")
    major = int(match.group(1)) if match.group(1) != "1" else int(match.group(2) or 0)
    if major < JAVA_MIN:
        raise EngineError(f"{java} is Java {major}; the Spark engine needs Java {JAVA_MIN} or newer: {INSTALL_JAVA}")


def write_parquet(
    paths: Sequence[str | Path], out: str, master: str | None = None, repair_names: bool = True
) -> LoadResult:
    """The star schema of the files under ``paths``, computed by Spark and written as a Parquet lake at ``out``
    (``repair_names``: rule 6's repair of names)."""
    require_spark()
    from musicstream.engines import lake

    if "://" not in out:
        out = os.path.abspath(out)
    return lake.write_parquet(paths, out, master, repair_names)


def engine_for(db: Database, options: LoadOptions) -> Engine:
    """The engine ``options.engine`` names, ready to run (for Spark: checked first, then its session started)."""
    if options.engine == "local":
        from musicstream.engines.local import LocalEngine

        return LocalEngine(options.workers, options.repair_names)
    if options.engine != "spark":
        raise EngineError(f"unknown engine {options.engine!r}: choose one of {', '.join(ENGINES)}")
    require_spark()
    from musicstream.engines.spark import SparkEngine

    return SparkEngine(db, options.master, options.repair_names)
