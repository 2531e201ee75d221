"""The commands that set up and fill the database: init, load, status, check."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from musicstream.cli.app import cli
from musicstream.cli.output import (
    database_of,
    emit_json,
    emit_json_line,
    error_log,
    handle_errors,
    is_quiet,
    make_console,
)
from musicstream.config import (
    Settings,
)


@cli.command()
@click.option("--reset", is_flag=True, help="Drop musicstream's tables and views first (all loaded data is lost).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --reset.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
@handle_errors
def init(ctx: click.Context, reset: bool, yes: bool, as_json: bool) -> None:
    """Create the database (when missing) and the star schema; safe to run again.

    \b
    Examples:
      musicstream init
      musicstream --database-url postgresql://me@db.example.com/musicstreamdb init
      musicstream init --reset --yes        # start over, dropping all loaded data
    """
    from musicstream.db.embedded import EmbeddedServerError, remake
    from musicstream.db.schema import initialize, table_rows
    from musicstream.load.rollups import rebuild as rebuild_rollups

    db = database_of(ctx)
    try:
        dropped = table_rows(db) if reset else []
    except EmbeddedServerError as exc:  # a damaged state folder: --reset makes its database again
        settings: Settings = ctx.obj
        if not (reset and settings.embedded):
            raise
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError(
                    f"{exc}; --reset makes the folder's database again, losing what it held: add --yes to confirm"
                ) from None
            click.echo(f"error: {exc}", err=True)
            click.confirm(
                f"Make the embedded database in {settings.pgdata} again, losing what it held?", abort=True, err=True
            )
        remake(settings.pgdata)
        db, dropped, yes = database_of(ctx), [], True
        error_log.warning("made the embedded database in %s again", settings.pgdata)
    holding = ", ".join(f"{name} ({count:,} row{'s' if count > 1 else ''})" for name, count in dropped if count)
    if reset and not yes and dropped:
        if not sys.stdin.isatty():
            raise click.UsageError("--reset drops all loaded data; add --yes to confirm when not on a terminal")
        click.echo(f"{db.describe()} holds: {holding or 'musicstream tables, all empty'}", err=True)
        click.confirm("Drop these tables and all their rows?", abort=True, err=True)
    outcome = initialize(db, reset=reset, backfill=rebuild_rollups)
    outcome["dropped"] = dict(dropped)
    if as_json:
        emit_json(outcome)
        return
    console = make_console()
    console.print(f"Database: {db.describe()}")
    if outcome["created_database"]:
        console.print(f"Created database {outcome['database']}.")
    if reset:
        console.print(f"Dropped the previous tables: {holding or 'none held rows'}." if dropped else "Nothing to drop.")
    applied = outcome["applied"]
    if applied:
        console.print(f"Applied schema migrations {', '.join(map(str, applied))}.")
    console.print(f"Schema version {outcome['schema_version']}: ready.")


class _InputPath(click.Path):
    """A local path that must exist, or an object-storage URL (s3://bucket/prefix) passed on as text."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "://" in value:
            return value
        return super().convert(value, param, ctx)


# The engine options of `load` and `watch`, defined once.
engine_option = click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="Who reads the files: worker processes here, or Apache Spark (pip install 'musicstream[spark]', Java 17+).",
)
master_option = click.option("--master", metavar="URL", help="Spark master URL for --engine spark (default local[2]).")


def _check_master(engine: str, master: str | None) -> None:
    if master and engine != "spark":
        raise click.UsageError("--master needs --engine spark")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=_InputPath(exists=True, path_type=Path))
@click.option("--full", is_flag=True, help="Re-read every file, also those the manifest lists as unchanged.")
@click.option(
    "--max-rejects",
    type=click.IntRange(min=0),
    metavar="N",
    help="Fail (and load nothing) when more than N records are rejected.",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Succeed even when no input file is found, or every record read is rejected (else exit code 1).",
)
@click.option("--no-wait", is_flag=True, help="Exit at once if another load is running on the database.")
@click.option(
    "--statement-timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Fail the run (changing nothing) when one database statement takes longer than this.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Parsing processes (default: one per core; small inputs are parsed in-process).",
)
@engine_option
@master_option
@click.option(
    "--output",
    metavar="postgres|parquet:PATH",
    default="postgres",
    show_default=True,
    help="Where the star schema goes: the database, or (with --engine spark) a Parquet lake at PATH.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read, check and merge everything as a load would, then roll it all back: see what would be loaded, "
    "skipped, duplicate and rejected, write nothing.",
)
@click.option(
    "--repair-names/--no-repair-names",
    default=True,
    show_default=True,
    envvar="MUSICSTREAM_REPAIR_NAMES",
    help="Repair song titles and artist names damaged before publication (double-encoded UTF-8, curly quotes cut "
    "to a control character) as they are read, keeping each original in the name_repairs table; "
    "--no-repair-names stores names exactly as given. Also $MUSICSTREAM_REPAIR_NAMES (0 or 1), or repair_names "
    "in the [load] table of musicstream.toml.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run's outcome as JSON (no progress bar).")
@click.pass_context
@handle_errors
def load(
    ctx: click.Context,
    paths: tuple[Path | str, ...],
    full: bool,
    max_rejects: int | None,
    allow_empty: bool,
    no_wait: bool,
    statement_timeout: float | None,
    workers: int | None,
    engine: str,
    master: str | None,
    output: str,
    dry_run: bool,
    repair_names: bool,
    as_json: bool,
) -> None:
    """Load song and log files into the star schema, as one atomic run.

    Each PATH is a folder holding song_data/ and log_data/ trees (or one of them), or a single .json or
    .json.gz file, or an s3://bucket/prefix URL (credentials and endpoint from the AWS_* variables). Files
    loaded before and unchanged since are skipped; bad records are kept in the rejects table with file, line
    and reason, and the summary names the most frequent reasons. Exit code 1 when the run fails (nothing is
    changed then), also when no input file is found or every record is rejected (unless --allow-empty); 130
    when interrupted (Ctrl-C: nothing is committed).

    \b
    Examples:
      musicstream load data/
      musicstream load data/log_data/2018/11 data/song_data
      musicstream load --full --json data/ > run.json
      musicstream load --dry-run new-data/   # what would be loaded and rejected; nothing is written
      musicstream load s3://my-bucket/sparkify/
      musicstream load --engine spark data/
      musicstream load --engine spark --output parquet:lake/ data/
    """
    from musicstream import LoadOptions, run_load
    from musicstream.cli.console import RichProgress, load_summary

    _check_master(engine, master)
    if output != "postgres":
        if not output.startswith("parquet:") or not output[len("parquet:") :]:
            raise click.UsageError("--output is postgres or parquet:PATH")
        if engine != "spark":
            raise click.UsageError("--output parquet:PATH needs --engine spark")
        if dry_run:
            raise click.UsageError("--dry-run checks a load into the database; it does not apply to --output parquet")
        from musicstream.engines import write_parquet

        lake = output[len("parquet:") :]
        written = write_parquet(paths, lake, master, repair_names)
        if as_json:
            emit_json({**written.as_dict(), "output": lake})
        else:
            make_console().print(f"Parquet lake written to {lake}")
            make_console().print(load_summary(written))
        return
    db = database_of(ctx)
    options = LoadOptions(
        full=full,
        max_rejects=max_rejects,
        allow_empty=allow_empty,
        wait=not no_wait,
        workers=workers,
        statement_timeout=statement_timeout,
        engine=engine,
        master=master,
        dry_run=dry_run,
        repair_names=repair_names,
    )
    err = make_console(stderr=True)
    show_bar = err.is_terminal and not as_json and not is_quiet(ctx) and not ctx.meta.get("verbose")
    if show_bar:
        with RichProgress(err) as progress:
            result = run_load(db, paths, options, progress)
    else:
        result = run_load(db, paths, options)
    if as_json:
        emit_json(result.as_dict())
    elif not is_quiet(ctx):
        make_console().print(load_summary(result))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=_InputPath(exists=True, path_type=Path))
@click.option(
    "--once", is_flag=True, help="Load what has settled now, then exit (for cron); files still being written wait."
)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="A file is read once its size and modification time have stayed the same this long.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="The longest pause between two listings (OS file events wake the watcher sooner).",
)
@click.option(
    "--batch-files",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    metavar="N",
    help="The most files one batch (one run) reads.",
)
@click.option("--no-file-events", is_flag=True, help="List the folders only; do not ask the OS for file events.")
@click.option(
    "--max-rejects",
    type=click.IntRange(min=0),
    metavar="N",
    help="A batch with more than N rejects fails; its files are then tried one by one, and held if they fail alone.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Parsing processes for big batches (default: one per core; small batches are parsed in-process).",
)
@engine_option
@master_option
@click.option("--json", "as_json", is_flag=True, help="Write one JSON line per event on stdout, for machines.")
@click.pass_context
@handle_errors
def watch(
    ctx: click.Context,
    paths: tuple[Path | str, ...],
    once: bool,
    settle: float,
    interval: float,
    batch_files: int,
    no_file_events: bool,
    max_rejects: int | None,
    workers: int | None,
    engine: str,
    master: str | None,
    as_json: bool,
) -> None:
    """Load new and changed files as they land in PATHs, in micro-batches, until stopped.

    Each batch is an ordinary load run (one transaction, the manifest, the rejects, the same rules), so the
    tables always equal one `load` of the files read so far, whatever stops the watcher. Names that are not
    inputs (*.tmp, *._COPYING_, dot files) are never read; a file is read once its size and time have settled,
    a .json.gz file once its gzip stream is complete. A file whose records are all bad becomes rejects, and the
    watcher goes on. One watcher runs per database. SIGTERM finishes the current batch, then exits 0; Ctrl-C rolls
    it back and exits 130. When the database cannot be reached, the watcher retries, saying so once. Exit code 1
    when another watcher holds the database, or (with --once) when a batch or the database fails, or when
    the engine cannot run. With --engine spark, Spark's executors stage each batch (one Spark session for the
    watcher's life) and the merge is a load's.

    \b
    Examples:
      musicstream watch incoming/
      musicstream watch --once incoming/          # from cron: what has settled, then exit
      musicstream watch --json incoming/ >> watch.jsonl
      musicstream watch s3://my-bucket/sparkify/
      musicstream watch --engine spark --master spark://host:7077 s3://my-bucket/sparkify/
    """
    from musicstream.cli.console import watch_line
    from musicstream.load.state import LoadOptions
    from musicstream.watch import WatchOptions
    from musicstream.watch import watch as run_watch

    _check_master(engine, master)
    options = WatchOptions(
        settle=settle,
        interval=interval,
        once=once,
        batch_files=batch_files,
        file_events=not no_file_events,
        load=LoadOptions(max_rejects=max_rejects, workers=workers, engine=engine, master=master),
    )
    quiet = is_quiet(ctx)
    failed: list[str] = []

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "held":
            failed.append(event["path"])
        if as_json:
            emit_json_line(event)
            return
        line, channel = watch_line(event)
        if channel == "warn" or (channel == "info" and not quiet):
            error_log.warning("%s", line)
            click.echo(line, err=True)
        elif channel == "out" and not quiet:
            click.echo(line)

    run_watch(database_of(ctx), paths, options, on_event)
    if once and failed:
        sys.exit(1)


@cli.command()
@click.option("--runs", default=5, show_default=True, help="How many recent runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def status(ctx: click.Context, runs: int, as_json: bool) -> None:
    """Show the schema version, row counts and the most recent load runs.

    \b
    Examples:
      musicstream status
      musicstream status --runs 20 --json
    """
    from musicstream.cli.console import status_tables
    from musicstream.status import database_status

    db = database_of(ctx)
    with db.connect() as conn:
        info = database_status(conn, runs)
    info["database"] = db.describe()
    if as_json:
        emit_json(info)
        return
    console = make_console()
    console.print(f"Database: {info['database']} (PostgreSQL {info['server_version'] // 10000})")
    if info["schema_version"] == 0:
        console.print("No musicstream schema here yet: run `musicstream init`.")
        return
    console.print(f"Schema version {info['schema_version']} (latest {info['schema_latest']})")
    for table in status_tables(info):
        console.print(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
@handle_errors
def check(ctx: click.Context, as_json: bool) -> None:
    """Run data-quality checks on the loaded tables; exit code 1 when any fails.

    Checks keys, foreign keys, that every play resolved to a track and artist, that timetb covers every play,
    that tiers are valid, and that every run's counts reconcile.

    \b
    Examples:
      musicstream check
      musicstream check --json
    """
    from musicstream.checks import run_checks
    from musicstream.cli.console import checks_table
    from musicstream.db.schema import require_schema

    db = database_of(ctx)
    with db.connect(autocommit=True) as conn:
        require_schema(conn)
        results = run_checks(conn)
    failed = [r for r in results if not r.passed]
    if as_json:
        emit_json({"passed": not failed, "checks": [r.__dict__ for r in results]})
    else:
        console = make_console()
        console.print(checks_table(results))
        console.print("[red]Some checks failed." if failed else "[green]All checks passed.")
    if failed:
        sys.exit(1)
