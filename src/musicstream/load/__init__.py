"""A load run: lock → audit row → the engine stages the files → merge (set-based SQL) → commit, one transaction.

``musicstream.run_load`` (``api.py``) is the entry point; it picks the engine (``musicstream.engines``) and calls
``run``.
"""

from musicstream.load.pipeline import run
from musicstream.load.state import Engine, LoadOptions, RunState
from musicstream.load.stats import LoadResult

__all__ = ["Engine", "LoadOptions", "LoadResult", "RunState", "run"]
