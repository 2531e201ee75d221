"""What a run holds while it runs, and what it asks of an engine.

An engine (``musicstream.engines``: local worker processes, or Apache Spark) lists the input files and fills the
run's staging tables; the run (``load/pipeline.py``) does everything else: the lock, the audit row, the merge,
the commit. The run never asks which engine it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg

from musicstream.extract.files import InputFile
from musicstream.load.rejects import RejectSink
from musicstream.load.stats import LoadResult
from musicstream.transform.records import UserEvent, keep_latest


class Progress(Protocol):
    """Where a run reports progress (a rich bar on a terminal, nothing otherwise)."""

    def start(self, total_bytes: int, files: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def phase(self, name: str) -> None: ...
    def step(self, name: str, number: int, total: int) -> None: ...


@dataclass
class RunState:
    """What the engine gathered while staging, for the merge and the bookkeeping."""

    result: LoadResult
    progress: Progress
    rejects: RejectSink = field(default_factory=RejectSink)
    users: dict[int, UserEvent] = field(default_factory=dict)
    mtimes: list[tuple[str, int]] = field(default_factory=list)  # unchanged files whose time the manifest lacks
    staged_songs: int = 0
    staged_plays: int = 0
    tasks_done: int = 0

    def see_users(self, users: dict[int, UserEvent]) -> None:
        for event in users.values():
            keep_latest(self.users, event)


class Engine(Protocol):
    """What a run needs from an engine: four steps, called in this order by ``load.pipeline.run``.

    ``stage`` runs inside the load's transaction on ``conn`` and leaves, visible to it, the staging tables of
    ``load/staging.sql`` (``stage_songs``, ``stage_plays``, ``stage_users``, ``stage_rejects``, ``stage_files``,
    ``stage_mtimes``) filled, with ``run.staged_plays`` / ``run.staged_songs`` and the result's counts set.
    """

    name: str

    def discover(self, paths: Sequence[str | Path]) -> list[InputFile]:
        """The input files under ``paths``, in a stable order."""
        ...

    def stage(
        self, conn: psycopg.Connection[Any], run: RunState, files: Sequence[InputFile], full: bool, started_ns: int
    ) -> None:
        """Read the new or changed ``files`` (all of them when ``full``) into the staging tables."""
        ...

    def before_commit(self, conn: psycopg.Connection[Any]) -> None:
        """Last work inside the load's transaction, after the merge."""
        ...

    def after_failure(self) -> None:
        """Clean up after a failed run (its transaction is already rolled back)."""
        ...
