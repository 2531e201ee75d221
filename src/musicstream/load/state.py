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
from musicstream.load.rejects import RejectSink, RowSpool
from musicstream.load.stats import LoadResult
from musicstream.transform.records import UserEvent, keep_latest


@dataclass(frozen=True)
class LoadOptions:
    """How to run a load.

    ``full`` re-reads files the manifest lists as unchanged; ``max_rejects`` turns more rejects than that into
    a failed (rolled back) run; ``allow_empty`` lets a run that finds no input file, or rejects every record it
    reads, succeed (else it fails: usually the wrong path); ``wait`` waits for another load on the same
    database instead of failing; ``workers`` is the number of parsing processes of the local engine (default: one
    per core);
    ``statement_timeout`` (seconds) fails the run when one statement takes longer. ``engine`` "spark" reads and
    stages the files with Spark (``master``: its master URL, ``local[2]`` by default); the merge is the same.
    ``dry_run`` does everything a load does, in its transaction, and rolls it back: the counts are exactly what
    the load would do to this database, and nothing is written (no run recorded, no index dropped).
    ``repair_names`` repairs damaged song titles and artist names as they are read (rule 6); off, names are
    stored exactly as the files give them.
    """

    full: bool = False
    max_rejects: int | None = None
    allow_empty: bool = False
    wait: bool = True
    workers: int | None = None
    statement_timeout: float | None = None
    engine: str = "local"
    master: str | None = None
    dry_run: bool = False
    repair_names: bool = True


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
    repairs: RowSpool = field(default_factory=RowSpool)  # rule 6's repairs: (file, original, repaired, line, count)
    staged_songs: int = 0
    staged_plays: int = 0
    tasks_done: int = 0

    def see_users(self, users: dict[int, UserEvent]) -> None:
        for event in users.values():
            keep_latest(self.users, event)


@dataclass(frozen=True)
class Staged:
    """What an engine staged: the rows in ``stage_plays`` and ``stage_songs`` (the merge counts duplicates from
    them)."""

    plays: int
    songs: int


class Engine(Protocol):
    """What a run needs from an engine: four steps, called in this order by ``load.pipeline.run``.

    ``stage`` runs inside the load's transaction on ``conn`` and leaves, visible to it, the staging tables of
    ``load/staging.sql`` (``stage_songs``, ``stage_plays``, ``stage_users``, ``stage_rejects``, ``stage_files``,
    ``stage_mtimes``) filled, the result's counts of files and records set as it reads, and returns what it staged.
    """

    name: str

    def discover(self, paths: Sequence[str | Path]) -> list[InputFile]:
        """The input files under ``paths``, in a stable order."""
        ...

    def stage(
        self, conn: psycopg.Connection[Any], run: RunState, files: Sequence[InputFile], full: bool, started_ns: int
    ) -> Staged:
        """Read the new or changed ``files`` (all of them when ``full``) into the staging tables."""
        ...

    def before_commit(self, conn: psycopg.Connection[Any]) -> None:
        """Last work inside the load's transaction, after the merge."""
        ...

    def after_failure(self) -> None:
        """Clean up after a failed run (its transaction is already rolled back)."""
        ...
