"""The library's entry point: ``run_load`` loads files into the star schema, as ``musicstream load`` does.

It picks the engine the options name (``engines``: local worker processes or Apache Spark) and hands it to the run
(``load/pipeline.py``), which does the rest: the lock, the audit row, the merge and the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from musicstream.db.connection import Database
    from musicstream.load.state import Engine, LoadOptions, Progress
    from musicstream.load.stats import LoadResult


def run_load(
    db: Database,
    paths: Sequence[str | Path],
    options: LoadOptions | None = None,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> LoadResult:
    """Load the song and log files under ``paths`` into the star schema, as one atomic run. ``engine``: one
    ``musicstream.engines.engine_for(db, options)`` made before, for many runs (a watcher makes the Spark engine's
    checks and starts its session once); by default the run makes its own."""
    from musicstream.engines import engine_for
    from musicstream.load.pipeline import run
    from musicstream.load.state import LoadOptions

    options = options or LoadOptions()
    return run(db, engine if engine is not None else engine_for(db, options), paths, options, progress)
