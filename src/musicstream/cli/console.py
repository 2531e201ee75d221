"""How results look on a terminal: rich tables and a progress bar (nothing fancy when not a TTY)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from musicstream.checks import CheckResult
from musicstream.load.stats import LoadResult


class PipeConsole(Console):
    """Where results go when stdout is not a terminal (a pipe, a file): each thing printed is as wide as its
    content needs, up to ``max_width``, with no colour and no trailing spaces. (A console as wide as ``max_width``
    would pad, and draw panels and rules that wide.)"""

    def __init__(self, max_width: int) -> None:
        super().__init__(highlight=False, soft_wrap=False, color_system=None, force_terminal=False, width=max_width)
        self.max_width = max_width

    def print(self, *objects: Any, **kwargs: Any) -> None:
        for renderable in self._pieces(objects):
            width = Measurement.get(self, self.options, renderable).maximum
            page = Console(
                file=io.StringIO(),
                width=max(1, min(width, self.max_width)),
                highlight=False,
                soft_wrap=False,
                color_system=None,
                force_terminal=False,
            )
            page.print(renderable, **kwargs)
            written = page.file.getvalue()  # type: ignore[attr-defined]
            self.file.write("".join(line.rstrip() + "\n" for line in written.splitlines()))
        self.file.flush()

    def _pieces(self, objects: tuple[Any, ...]) -> list[RenderableType]:
        """The things to print one by one: text with its markup applied, a group's members each on its own."""
        pieces: list[RenderableType] = []
        for item in objects:
            if isinstance(item, str):
                pieces.append(self.render_str(item))
            elif isinstance(item, Group):
                pieces.extend(self._pieces(tuple(item.renderables)))
            else:
                pieces.append(item)
        return pieces


class RichProgress:
    """A load's progress on stderr: bytes read while reading, then the merge's steps (step k of n, its name, the
    time the merge has taken), so that a long merge never looks like a hang."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: Any = None
        self._steps: Progress | None = None
        self._step_task: Any = None

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._steps is not None:
            self._steps.stop()
        self._progress.__exit__(None, None, None)

    def step(self, name: str, number: int, total: int) -> None:
        if self._steps is None:
            self._progress.stop()  # transient: the reading bar goes, the merge's line takes its place
            self._steps = Progress(
                SpinnerColumn(),
                TextColumn("[bold]merging"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._steps.start()
            self._step_task = self._steps.add_task(name, total=total)
        self._steps.update(self._step_task, completed=number - 1, description=name)

    def start(self, total_bytes: int, files: int) -> None:
        self._task = self._progress.add_task(f"reading {files} files", total=total_bytes or 1)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)

    def phase(self, name: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=name)


def load_summary(result: LoadResult) -> Table | Group:
    ok = result.status == "succeeded"
    dry = result.status == "dry-run"
    title = (
        f"Load run {result.run_id}: {'[green]succeeded' if ok else '[red]' + result.status} in {result.seconds:.2f} s"
    )
    if dry:
        title = f"Dry run in {result.seconds:.2f} s: [green]nothing was written"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("files read / unchanged, skipped", f"{result.files_read:,} / {result.files_skipped:,}")
    table.add_row("records read", f"{result.records_read:,}")
    table.add_row("  loaded (new plays + new catalog songs)", f"{result.records_loaded:,}")
    table.add_row("  skipped by rule (not a play, logged out)", f"{result.records_skipped:,}")
    table.add_row("  duplicates", f"{result.duplicates:,}")
    table.add_row("  rejected", f"[red]{result.rejected:,}" if result.rejected else "0")
    if result.names_repaired:
        table.add_row(
            "names repaired (table name_repairs)",
            f"{result.names_repaired:,} ({result.spellings_repaired:,} distinct)",
        )
    for name, count in result.rows_added.items():
        table.add_row(f"{name} rows {'to add' if dry else 'added'}", f"{count:,}")
    if not result.files_found:
        table.caption = "No input files found (--allow-empty)."
    elif not result.files_read:
        table.caption = "Nothing new: every file is unchanged since it was loaded."
    elif result.rejected:
        reasons = [f"  {top['records']:,} × {top['reason']} (e.g. {top['example']})" for top in result.top_rejects]
        more = f"musicstream rejects --run {result.run_id}" if result.run_id else "musicstream rejects"
        if dry:
            more = "a load keeps them in the rejects table (musicstream rejects)"
        lines = ["Most frequent reject reasons:", *reasons, f"All of them: {more}"]
        return Group(table, Text("\n".join(lines)))
    return table


def status_tables(status: dict[str, Any]) -> list[Table | Group]:
    counts = Table(title="Tables", title_justify="left")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for name, count in status["tables"].items():
        counts.add_row(name, f"{count:,}")
    if "inferred_tracks" in status:
        counts.add_row("[dim]inferred tracks", f"[dim]{status['inferred_tracks']:,}")
        counts.add_row("[dim]inferred artists", f"[dim]{status['inferred_artists']:,}")
        counts.add_row("files in manifest", f"{status['files_loaded']:,}")
        counts.add_row("rejects kept", f"{status['rejects']:,}")
    shown: list[Table | Group] = [counts]
    if status.get("watcher"):
        shown.append(watcher_table(status["watcher"]))
    return [*shown, runs_table(status["recent_runs"], "Recent runs")]


def watcher_table(watcher: dict[str, Any]) -> Table:
    """The watcher's row of `status`: running or not, its process, its last batch, its lag, the files waiting."""
    table = Table(title="Watcher", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    if watcher["running"]:
        state = f"[green]running[/] ({watcher['state']}), pid {watcher['pid']} on {watcher['host']}"
    elif watcher["state"] == "stopped":
        state = f"stopped at {watcher['stopped_at']:%Y-%m-%d %H:%M:%S} (was pid {watcher['pid']} on {watcher['host']})"
    else:
        state = f"[red]not running[/]: pid {watcher['pid']} on {watcher['host']} stopped without saying (killed?)"
    table.add_row("state", state)
    table.add_row("watching", ", ".join(watcher["paths"]))
    table.add_row("since", f"{watcher['started_at']:%Y-%m-%d %H:%M:%S}; last seen {watcher['seen_at']:%H:%M:%S}")
    if watcher["last_run_id"] is not None:
        table.add_row(
            "last batch",
            f"run {watcher['last_run_id']} at {watcher['last_batch_at']:%H:%M:%S}, {watcher['last_batch_files']:,} "
            f"files, newest {watcher['last_batch_lag'] or 0:.1f} s old when committed ({watcher['batches']:,} batches)",
        )
    table.add_row("files waiting", f"{watcher['files_waiting']:,} ({watcher['bytes_waiting'] / 1e6:.1f} MB)")
    table.add_row("lag", f"{watcher['lag_seconds']:.1f} s (how long the oldest file waiting has waited)")
    return table


def watch_line(event: dict[str, Any]) -> tuple[str, str]:
    """A watcher's event as one line, and where it goes: "out" (stdout: what was loaded), "info" (stderr, unless
    --quiet: the watcher started, stopped) or "warn" (stderr always: what went wrong, or came right again)."""
    import datetime as dt

    now = f"{dt.datetime.now():%H:%M:%S}"
    kind = event["event"]
    if kind == "batch":
        lag = "" if event["lag_s"] is None else f"; newest file {event['lag_s']:.1f} s old"
        waiting = f"; {event['waiting']:,} more waiting" if event["waiting"] else ""
        rejected = f", {event['rejected']:,} rejected" if event["rejected"] else ""
        return (
            f"{now} run {event['run_id']}: {event['files']:,} file{'s' if event['files'] > 1 else ''}, "
            f"{event['records_read']:,} records, {event['plays_added']:,} new plays{rejected} in "
            f"{event['seconds']:.2f} s{lag}{waiting}",
            "out",
        )
    if kind == "started":
        how = "file events and listing" if event["file_events"] else "listing"
        paths = ", ".join(event["paths"])
        return f"{now} watching {paths} (pid {event['pid']}, {how}); SIGTERM or Ctrl-C stops", "info"
    if kind == "held":
        return f"{now} warning: {event['path']} failed and is held until it changes: {event['error']}", "warn"
    if kind == "database_down":
        why, retry = event["error"], event["retry"]
        return f"{now} warning: the database cannot be reached or take a batch ({why}); retrying {retry}", "warn"
    if kind == "database_up":
        return f"{now} the database is back: watching again", "warn"
    if kind == "left":
        return f"{now} {event['files']:,} files still being written are left for the next run", "info"
    if kind == "stopped":
        return f"{now} stopped ({event['reason']}) after {event['batches']:,} batches", "info"
    return "", "info"


def runs_table(runs: list[dict[str, Any]], title: str) -> Group:
    """Load runs as a table (`status`, `runs`), with why each failed run failed below it."""
    table = Table(title=title, title_justify="left")
    for column in ("run", "started (UTC)", "status", "s", "files", "records", "loaded", "dup", "rejects"):
        left = column in ("started (UTC)", "status")
        table.add_column(column, justify="left" if left else "right", no_wrap=True, min_width=len(column))
    table.caption = "files: read/unchanged; records read = loaded + skipped by rule + dup + rejects"
    table.caption_justify = "left"
    for run in runs:
        took = run["finished_at"] - run["started_at"] if run["finished_at"] else None
        table.add_row(
            str(run["run_id"]),
            f"{run['started_at']:%Y-%m-%d %H:%M}",
            run["status"],
            "" if took is None else f"{took.total_seconds():.1f}",
            f"{run['files_read']:,}/{run['files_skipped']:,}",
            f"{run['records_read']:,}",
            f"{run['records_loaded']:,}",
            f"{run['duplicates']:,}",
            f"{run['rejects']:,}",
        )
    why = [Text(f"run {run['run_id']} {run['status']}: {run['error']}") for run in runs if run.get("error")]
    return Group(table, *why)


def checks_table(results: list[CheckResult]) -> Table:
    table = Table(title="Data-quality checks", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("what it means")
    for result in results:
        verdict = "[green]pass" if result.passed else f"[red]FAIL ({result.failures:,})"
        table.add_row(result.name, verdict, result.description)
    return table
