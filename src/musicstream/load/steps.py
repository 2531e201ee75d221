"""What a merge step is, and how one runs: shared by the star merge (``load/merge.py``) and the rollups
(``load/rollups.py``), whose step lists ``merge.STEPS`` puts in order.

A step's name is its statement (in the SQL file its list reads: ``source``), or the name of what it does in
Python; its crash point is ``merge:NAME`` (tests/test_crash.py); its line in the progress display and its timing
carry the same name.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from musicstream.db.sqlfiles import named_statements
from musicstream.faults import point
from musicstream.load.state import RunState

log = logging.getLogger("musicstream.load")  # shown with --verbose, kept with --log-file


@dataclass(frozen=True)
class Handover:
    """What the star merge hands the rollups when it is done (docs/architecture.md, "The hand-over").

    ``after_play``: the plays this run added are those with ``trackplay_id > after_play``. ``moved_names``: how
    many known names rule 8 moved to another track or artist. With them, two temporary tables: ``touched_days``
    (day, new_play: the days the run added plays to, and the days of the known plays that moved) and
    ``touched_names`` (name_id: the names that moved). The rollups read these and the star's tables, nothing else
    of the star merge."""

    after_play: int
    moved_names: int


@dataclass
class Merge:
    """One merge under way: the run, the ids before it, the counts its steps keep, the hand-over once the star is
    merged, and ``plan``: every step of the merge in order (the progress display's "step k of n")."""

    conn: psycopg.Connection[Any]
    run: RunState
    ids: dict[str, int]
    plan: tuple[Step, ...]
    added: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    handover: Handover | None = None

    def params(self, which: str | None) -> dict[str, Any] | None:
        if which == "ids":
            return self.ids
        if which == "run":
            return {"run_id": self.run.result.run_id}
        if which == "handover":
            assert self.handover is not None, "a rollup step ran before the star merge handed over"
            return {"after_play": self.handover.after_play}
        return None


@dataclass(frozen=True)
class Step:
    """One step of the merge.

    ``name``: its statement in ``source`` (unless ``does``), crash point, progress line and timing.
    ``phase``: what it maintains (the star, the rollups, or the run's bookkeeping after the reject checks).
    ``when``: it runs only when this holds (else it is passed). ``params``: "ids" (the largest play and name ids
    before the run), "run" (the run's id) or "handover" (``after_play`` of the hand-over). ``scalar``: its
    statement returns its count as its one value (an upsert's new rows), else the count is the rows it wrote.
    ``adds``: the count is added to this table's rows added (``-table``: taken from them). ``keeps``: the count is
    kept under this name for later steps. ``does``: what it does, when more than its statement (a first load's
    variant, an index build). ``analyze``: a table analysed after it, when ``analyze_when`` holds (always when
    None). ``source``: the SQL file of its statements."""

    name: str
    phase: str
    when: Callable[[Merge], bool] | None = None
    params: str | None = None
    scalar: bool = False
    adds: str | None = None
    keeps: str | None = None
    does: Callable[[Merge, Step], int] | None = None
    analyze: str | None = None
    analyze_when: Callable[[Merge], bool] | None = None
    source: str = "load/merge"

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    @property
    def point(self) -> str:
        return f"merge:{self.name}"


_EXPLAIN = os.environ.get("MUSICSTREAM_EXPLAIN")  # profiling aid: append each merge step's plan to this file


def _explain(conn: psycopg.Connection[Any], name: str, params: dict[str, Any] | None, query: str) -> None:
    if not _EXPLAIN:
        return
    if query.lstrip().upper().startswith(("CREATE", "ANALYZE")):
        return
    with conn.transaction():  # a savepoint: the plan's execution is rolled back, then the step runs for real
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params).fetchall()
        with open(_EXPLAIN, "a", encoding="utf-8") as out:
            out.write(f"-- {name}\n" + "\n".join(str(row[0]) for row in plan) + "\n\n")
        raise psycopg.Rollback()


def execute(m: Merge, step: Step, statement: str | None = None, *, again: bool = False) -> int:
    """Run ``step``'s statement (or the named ``statement`` standing for it) and time it; its count. ``again``: the
    step ran once already in this merge (a first load's attempt, rolled back), its time is added to the first's."""
    params = m.params(step.params)
    query = named_statements(step.source)[statement or step.name]
    _explain(m.conn, statement or step.name, params, query)
    started = time.perf_counter()
    cur = m.conn.execute(query, params)
    if step.scalar:
        row = cur.fetchone()
        count = int(row[0]) if row and row[0] is not None else 0
    else:
        count = cur.rowcount
    timings = m.run.result.timings
    timings[step.name] = round(time.perf_counter() - started + (timings.get(step.name, 0.0) if again else 0.0), 4)
    return count


def _reach(m: Merge, step: Step) -> None:
    """The merge reaches a step: its crash point, its log line and the progress display's "step k of n"."""
    point(step.point)
    number = m.plan.index(step) + 1
    log.info("merge step %d/%d: %s", number, len(m.plan), step.name)
    m.run.progress.step(step.label, number, len(m.plan))


def walk(m: Merge, steps: tuple[Step, ...]) -> None:
    """Run ``steps`` in order: each is reached (its crash point and progress line), then run unless its ``when``
    is false; the counts it returns are added and kept as its entry says."""
    for step in steps:
        _reach(m, step)
        if step.when is not None and not step.when(m):
            continue
        count = step.does(m, step) if step.does is not None else execute(m, step)
        if step.adds is not None:
            table = step.adds.lstrip("-")
            m.added[table] = m.added.get(table, 0) + (-count if step.adds.startswith("-") else count)
        if step.keeps is not None:
            m.kept[step.keeps] = count
        if step.analyze is not None and (step.analyze_when is None or step.analyze_when(m)):
            m.conn.execute(f"ANALYZE {step.analyze}")  # a table name of a step list, not input
