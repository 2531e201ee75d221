"""The command line: parses arguments, calls the library, maps errors to messages and exit codes.

Exit codes: 0 success, 1 failure (a load that failed, a check that failed), 2 usage or configuration error,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
import psycopg
from rich.console import Console

from musicstream import __version__
from musicstream.config import (
    FileSettings,
    Settings,
    config_paths,
    mask,
    mask_error,
    platform_home,
    read_settings_files,
)
from musicstream.errors import ConfigError, MusicstreamError, QueryError
from musicstream.rules import TIERS

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = "\b\nExamples:\n"


# The widest line written to a pipe or a file: each table or panel is as wide as its content up to this (rich
# would wrap them at 80 columns).
PIPE_WIDTH = 10_000

log = logging.getLogger("musicstream")  # the library's messages: stderr by --quiet/--verbose, all to --log-file
_errors = logging.getLogger("musicstream.errors")  # the messages the command line prints itself: the log file only
_errors.propagate = False
_errors.addHandler(logging.NullHandler())


def _configure_output(ctx: click.Context) -> None:
    """Where messages go, from ``--quiet``, ``--verbose`` and ``--log-file`` (before or after the command)."""
    quiet, verbose, log_file = (ctx.meta.get(k) for k in ("quiet", "verbose", "log_file"))
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose: choose one")
    for logger in (log, _errors):
        for handler in [h for h in logger.handlers if not isinstance(h, logging.NullHandler)]:
            logger.removeHandler(handler)
            handler.close()
    log.setLevel(logging.DEBUG)
    # The database driver's own warnings (a rollback that failed after a Ctrl-C, ...): the log file only; what
    # they mean reaches the terminal as musicstream's one message.
    driver = logging.getLogger("psycopg")
    driver.propagate = False
    for handler in [h for h in driver.handlers if not isinstance(h, logging.NullHandler)]:
        driver.removeHandler(handler)
    if not driver.handlers:
        driver.addHandler(logging.NullHandler())
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING)
    console.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(console)
    if log_file:
        try:
            to_file = logging.FileHandler(log_file, encoding="utf-8")  # appended to
        except OSError as exc:
            raise ConfigError(f"cannot open the log file {log_file}: {exc.strerror or exc}") from None
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(to_file)
        _errors.addHandler(to_file)
        driver.addHandler(to_file)


def _output_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``--quiet``, ``--verbose`` and ``--log-file``: recorded for the whole invocation, output set up again."""
    if value is None or value is False:
        return value
    ctx.meta[str(param.name)] = value
    if "settings_read" in ctx.meta:  # after the command: the group has set up the output already
        _configure_output(ctx)
    return value


def _quiet(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("quiet"))


def _say_error(message: str) -> None:
    """One error message: on stderr, and in the log file when there is one."""
    _errors.error("%s", message)
    click.echo(message, err=True)


def _console(stderr: bool = False) -> Console:
    """A console for results (stdout), or for a load's progress (stderr). Results written to a pipe or a file are
    each as wide as their content (up to $COLUMNS when set), with no colour and no padding."""
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if stderr or console.is_terminal:
        return console
    from musicstream.console import PipeConsole

    return PipeConsole(console.width if "COLUMNS" in os.environ else PIPE_WIDTH)


def _json_value(value: Any) -> Any:
    """Values orjson does not write itself: SQL numerics stay numbers (with decimals as floats: 4.0 stays 4.0, a
    count is an int), the rest as text (dates, ...)."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    return str(value)


def _emit_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=_json_value).decode())


def _handle_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MusicstreamError as exc:
            _say_error(f"error: {exc}")  # unwrapped and unstyled: logs and scripts read it whole
            sys.exit(exc.exit_code)
        except psycopg.errors.InsufficientPrivilege as exc:
            _say_error(f"error: permission denied: {mask_error(exc).strip()} (see `musicstream roles`)")
            sys.exit(1)
        except psycopg.Error as exc:
            _say_error(f"error: database error: {mask_error(exc).strip()}")
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _database(ctx: click.Context) -> Any:
    from musicstream.db.connection import Database

    settings: Settings = ctx.obj
    return Database(settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--database-url",
    metavar="URL",
    help="libpq URL or connection string of the PostgreSQL database. Default: $MUSICSTREAM_DATABASE_URL, "
    "else an embedded PostgreSQL in $MUSICSTREAM_HOME. PG* variables and ~/.pgpass apply as in libpq.",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for musicstream's own state, including the embedded server's data. Default: $MUSICSTREAM_HOME, "
    f"else {platform_home()}.",
)
@click.option("--quiet", "-q", is_flag=True, callback=_output_option, help="Print only results and errors.")
@click.option(
    "--verbose", "-v", is_flag=True, callback=_output_option, help="Also print what a load is doing, step by step."
)
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    callback=_output_option,
    help="Append every message, with its time, to this file (whatever --quiet or --verbose say).",
)
@click.version_option(__version__, prog_name="musicstream")
@click.pass_context
@_handle_errors
def cli(
    ctx: click.Context, database_url: str | None, home: Path | None, quiet: bool, verbose: bool, log_file: Path | None
) -> None:
    """Load a music-streaming app's JSON song files and event logs into a PostgreSQL star schema.

    \b
    Quick start (embedded PostgreSQL, no server needed), on the public sample in data/:
      musicstream init                      # create the database and schema
      musicstream load data/                # load; run it again and it skips every file
      musicstream status                    # what the database holds
      musicstream check                     # data-quality checks
      musicstream report                    # what people listen to

    \b
    A synthetic sample goes to a state folder (and database) of its own, never into the default one:
      musicstream generate sample/
      musicstream --home sample/.musicstream init
      musicstream --home sample/.musicstream load sample/

    Settings come from an option, else the environment, else a musicstream.toml (in the working directory, else
    in the user's config folder), else the defaults: `musicstream config` shows them and where each came from.
    """
    _configure_output(ctx)
    files = read_settings_files()
    ctx.meta["settings_read"] = files
    ctx.obj = Settings.resolve(database_url, home, files)
    ctx.default_map = _command_defaults(files)
    log.debug("musicstream %s, %s", __version__, ctx.invoked_subcommand)


def _command_defaults(files: FileSettings) -> dict[str, Any]:
    """The settings files' command tables as click's defaults, each key checked against the command's options
    (an option's long name, with - or _) and its value against the option's type."""

    def check(group: click.Group, table: dict[str, Any], where: str) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        for name, options in table.items():
            command = group.commands.get(name)
            origin = files.origin.get(f"{where}{name}", files.origin.get(where.split(".")[0], ""))
            if command is None or not isinstance(options, dict):
                raise ConfigError(
                    f"{origin or 'settings file'}: [{where}{name}] is not a command's table; the commands are "
                    f"{', '.join(sorted(group.commands))}"
                )
            known = {
                alias: param
                for param in command.params
                if isinstance(param, click.Option) and param.expose_value and param.name
                for alias in [param.name, *(o.lstrip("-").replace("-", "_") for o in param.opts if o.startswith("--"))]
            }
            own: dict[str, Any] = {}
            for key, value in options.items():
                if isinstance(command, click.Group) and key in command.commands:
                    own.update(check(command, {key: value}, f"{where}{name}."))
                    continue
                param = known.get(key.replace("-", "_"))
                if param is None or param.name is None:
                    raise ConfigError(
                        f"{origin}: [{where}{name}] has no option {key!r}; its options are "
                        f"{', '.join(sorted({p.opts[-1].lstrip('-') for p in known.values()}))}"
                    )
                try:
                    if param.is_flag and not isinstance(value, bool):
                        raise click.BadParameter(f"{value!r} is not true or false")
                    param.type.convert(value, param, None)
                except click.BadParameter as exc:
                    raise ConfigError(f"{origin}: [{where}{name}] {key} = {value!r}: {exc.message}") from None
                own[param.name] = value
            defaults[name] = own
        return defaults

    return check(cli, files.commands(), "")


@cli.command()
@click.option("--reset", is_flag=True, help="Drop musicstream's tables and views first (all loaded data is lost).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --reset.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
@_handle_errors
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

    db = _database(ctx)
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
        db, dropped, yes = _database(ctx), [], True
        _errors.warning("made the embedded database in %s again", settings.pgdata)
    holding = ", ".join(f"{name} ({count:,} row{'s' if count > 1 else ''})" for name, count in dropped if count)
    if reset and not yes and dropped:
        if not sys.stdin.isatty():
            raise click.UsageError("--reset drops all loaded data; add --yes to confirm when not on a terminal")
        click.echo(f"{db.describe()} holds: {holding or 'musicstream tables, all empty'}", err=True)
        click.confirm("Drop these tables and all their rows?", abort=True, err=True)
    outcome = initialize(db, reset=reset)
    outcome["dropped"] = dict(dropped)
    if as_json:
        _emit_json(outcome)
        return
    console = _console()
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
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="Who reads the files: worker processes here, or Apache Spark (pip install 'musicstream[spark]', Java 17+).",
)
@click.option("--master", metavar="URL", help="Spark master URL for --engine spark (default local[2]).")
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
@click.option("--json", "as_json", is_flag=True, help="Print the run's outcome as JSON (no progress bar).")
@click.pass_context
@_handle_errors
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
    from musicstream.console import RichProgress, load_summary

    if master and engine != "spark":
        raise click.UsageError("--master needs --engine spark")
    if output != "postgres":
        if not output.startswith("parquet:") or not output[len("parquet:") :]:
            raise click.UsageError("--output is postgres or parquet:PATH")
        if engine != "spark":
            raise click.UsageError("--output parquet:PATH needs --engine spark")
        if dry_run:
            raise click.UsageError("--dry-run checks a load into the database; it does not apply to --output parquet")
        from musicstream.engines import write_parquet

        lake = output[len("parquet:") :]
        written = write_parquet(paths, lake, master)
        if as_json:
            _emit_json({**written.as_dict(), "output": lake})
        else:
            _console().print(f"Parquet lake written to {lake}")
            _console().print(load_summary(written))
        return
    db = _database(ctx)
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
    )
    err = _console(stderr=True)
    show_bar = err.is_terminal and not as_json and not _quiet(ctx) and not ctx.meta.get("verbose")
    if show_bar:
        with RichProgress(err) as progress:
            result = run_load(db, paths, options, progress)
    else:
        result = run_load(db, paths, options)
    if as_json:
        _emit_json(result.as_dict())
    elif not _quiet(ctx):
        _console().print(load_summary(result))


@cli.command()
@click.option("--runs", default=5, show_default=True, help="How many recent runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@_handle_errors
def status(ctx: click.Context, runs: int, as_json: bool) -> None:
    """Show the schema version, row counts and the most recent load runs.

    \b
    Examples:
      musicstream status
      musicstream status --runs 20 --json
    """
    from musicstream.console import status_tables
    from musicstream.status import database_status

    db = _database(ctx)
    with db.connect() as conn:
        info = database_status(conn, runs)
    info["database"] = db.describe()
    if as_json:
        _emit_json(info)
        return
    console = _console()
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
@_handle_errors
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
    from musicstream.console import checks_table
    from musicstream.db.schema import require_schema

    db = _database(ctx)
    with db.connect(autocommit=True) as conn:
        require_schema(conn)
        results = run_checks(conn)
    failed = [r for r in results if not r.passed]
    if as_json:
        _emit_json({"passed": not failed, "checks": [r.__dict__ for r in results]})
    else:
        console = _console()
        console.print(checks_table(results))
        console.print("[red]Some checks failed." if failed else "[green]All checks passed.")
    if failed:
        sys.exit(1)


class _Date(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on; 8.1 is supported
    """A calendar day written YYYY-MM-DD (a day that does not exist, such as 2018-11-31, is not a date)."""

    name = "date"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.date):
            return value
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
                return dt.date.fromisoformat(str(value))
        except ValueError:
            pass
        self.fail(f"{value} is not a date (YYYY-MM-DD)", param, ctx)


@cli.command()
@click.option("--since", type=_Date(), help="First day to cover (UTC), e.g. 2018-11-05.")
@click.option("--until", type=_Date(), help="Last day to cover (UTC, inclusive).")
@click.option("--tier", type=click.Choice(TIERS), help="Only plays on this tier.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 1000), help="Length of top lists.")
@click.option("--html", "html_file", type=click.Path(path_type=Path, dir_okay=False), help="Write an HTML report.")
@click.option("--json", "as_json", is_flag=True, help="Print the report's figures as JSON.")
@click.pass_context
@_handle_errors
def report(
    ctx: click.Context,
    since: dt.date | None,
    until: dt.date | None,
    tier: str | None,
    top: int,
    html_file: Path | None,
    as_json: bool,
) -> None:
    """Report what people are listening to: plays, listeners, top tracks and artists, when, which tier.

    Prints rich tables on the terminal; --html writes one self-contained HTML file with charts (opens with no
    network); --json prints every figure for dashboards. Times are UTC.

    \b
    Examples:
      musicstream report
      musicstream report --since 2018-11-01 --until 2018-11-07 --tier paid
      musicstream report --html report.html
    """
    from musicstream.db.schema import require_schema
    from musicstream.report import ReportFilters, build_report

    if since and until and since > until:
        raise click.BadParameter("--since is after --until")
    filters = ReportFilters(since=since, until=until, tier=tier, top=top)
    db = _database(ctx)
    with db.connect(autocommit=True) as conn:
        require_schema(conn)
        figures = build_report(conn, filters)
    if html_file is not None:
        from musicstream.report.html import render_html

        html_file.write_text(render_html(figures), encoding="utf-8")
    if as_json:
        _emit_json(figures)
    elif html_file is not None:
        _console().print(f"Wrote {html_file} ({html_file.stat().st_size / 1024:.0f} KiB).")
    else:
        from musicstream.report.terminal import render

        _console().print(render(figures))


@cli.command()
@click.argument("name", required=False)
@click.argument("params", nargs=-1)
@click.option("--list", "list_queries", is_flag=True, help="List the curated queries and their parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows (or with --list, the queries) as JSON.")
@click.option("--sql", "show_sql", is_flag=True, help="Print the query's SQL instead of running it.")
@click.pass_context
@_handle_errors
def query(
    ctx: click.Context, name: str | None, params: tuple[str, ...], list_queries: bool, as_json: bool, show_sql: bool
) -> None:
    """Run a curated SQL query by NAME, with PARAM=VALUE parameters.

    The queries answer the questions analysts ask first (top tracks in a period, listeners of an artist,
    session lengths, free-to-paid conversion, hourly pattern); --sql shows the SQL to start your own from.

    \b
    Examples:
      musicstream query --list
      musicstream query top_tracks since=2018-11-01 until=2018-11-07 limit=5
      musicstream query artist_listeners artist=Coldplay --json
    """
    from rich.table import Table

    from musicstream import queries

    if list_queries or name is None:
        if as_json:
            _emit_json(
                [{"name": q.name, "title": q.title, "params": [vars(p) for p in q.params]} for q in queries.available()]
            )
            return
        table = Table(title="Curated queries", title_justify="left")
        for column in ("name", "what it answers", "parameters (default)"):
            table.add_column(column)
        for q in queries.available():
            described = ", ".join(f"{p.name}={'(required)' if p.required else p.default or 'null'}" for p in q.params)
            table.add_row(q.name, q.title, described)
        _console().print(table)
        return
    chosen = queries.get(name)
    values = queries.bind(chosen, list(params))
    if show_sql:
        click.echo(queries.runnable_sql(chosen, values), nl=False)
        return
    db = _database(ctx)
    with db.connect(autocommit=True) as conn:
        columns, rows = queries.run(conn, chosen, values)
    if not rows and not _quiet(ctx):
        click.echo(f"no rows: query {chosen.name} found nothing for these parameters", err=True)
    if as_json:
        _emit_json(rows)
        return
    _console().print(_rows_table(chosen.title, columns, rows))


@cli.command()
@click.option("--analyst", default="musicstream_analyst", show_default=True, help="Name of the read-only role.")
@click.option("--loader", default="musicstream_loader", show_default=True, help="Name of the loading role.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
@_handle_errors
def roles(ctx: click.Context, analyst: str, loader: str, as_json: bool) -> None:
    """Create a read-only analyst role and a loader role that needs no superuser (run as an admin).

    Both are group roles without login; give people and services LOGIN roles that are members. The loader owns
    musicstream's tables; the analyst can only read the star schema, the run audit and the sparkify views.

    \b
    Examples:
      musicstream roles
      psql -c "CREATE ROLE alice LOGIN PASSWORD 'secret' IN ROLE musicstream_analyst"
      psql -c "CREATE ROLE etl LOGIN PASSWORD 'secret' IN ROLE musicstream_loader"
    """
    import psycopg as pg

    from musicstream.db.roles import create_roles
    from musicstream.errors import DatabaseError

    db = _database(ctx)
    with db.connect(autocommit=True) as conn:
        try:
            outcome = create_roles(conn, analyst, loader)
        except pg.errors.InsufficientPrivilege as exc:
            raise DatabaseError(
                f"not allowed to create roles or grant privileges: {exc}. Run `musicstream roles` as a role with "
                "CREATEROLE that owns musicstream's tables (the one that ran `musicstream init`)"
            ) from None
    if as_json:
        _emit_json(outcome)
        return
    made = ", ".join(outcome["created"]) or "none (they existed; privileges refreshed)"
    _console().print(f"Roles {analyst} (read-only) and {loader} (loads) ready on {outcome['database']}; new: {made}.")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@_handle_errors
def psql(ctx: click.Context, psql_args: tuple[str, ...]) -> None:
    """Open psql on the database (the embedded server's own psql when embedded).

    Extra arguments go to psql.

    \b
    Examples:
      musicstream psql
      musicstream psql -c "SELECT count(*) FROM trackplays"
    """
    db = _database(ctx)
    argv, env = db.psql_command()
    try:
        completed = subprocess.run([*argv, *psql_args], env=env, check=False)
    except FileNotFoundError:
        raise click.ClickException(
            "psql was not found; install the PostgreSQL client (Debian: apt-get install postgresql-client)"
        ) from None
    sys.exit(completed.returncode)


def _cell(value: Any, width: int | None) -> str:
    """A value as table text (shown as is: no markup); cut to ``width`` characters on one line when given."""
    from rich.markup import escape

    text = "" if value is None else str(value)
    if width is not None:
        text = " ".join(text.split())
        text = text if len(text) <= width else text[: width - 1] + "…"
    return escape(text)


def _rows_table(title: str, columns: list[str], rows: list[dict[str, Any]], cut: dict[str, int] | None = None) -> Any:
    """Rows of a query (`query`, `sql`, `runs show`, `rejects`) as a table; ``cut``: columns cut to a width."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[c], (cut or {}).get(c)) for c in columns))
    return table


@cli.group(invoke_without_command=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@_handle_errors
def runs(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List the load runs, newest first: status, counts, duration and why a run failed.

    \b
    Examples:
      musicstream runs
      musicstream runs show 3              # one run: its files, counts and reject reasons
      musicstream runs --limit 100 --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from musicstream import ops

    with _database(ctx).connect() as conn:
        found = ops.runs(conn, limit)
    if as_json:
        _emit_json(found)
        return
    from musicstream.console import runs_table

    _console().print(runs_table(found, "Load runs (newest first; `musicstream runs show N` for one)"))


@runs.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@_handle_errors
def runs_show(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """Show one run: its record, the files it read, its reject reasons.

    \b
    Examples:
      musicstream runs show 1
      musicstream runs show 1 --json
    """
    from rich.markup import escape

    from musicstream import ops

    with _database(ctx).connect() as conn:
        run = ops.run_detail(conn, run_id)
    if as_json:
        _emit_json(run)
        return
    console = _console()
    seconds = f" in {run['seconds']} s" if run["seconds"] is not None else ""
    console.print(f"Run {run_id}: {run['status']}{seconds}, started {run['started_at']:%Y-%m-%d %H:%M:%S}")
    if run["error"]:
        console.print(f"  why: {escape(run['error'])}")
    console.print(
        f"  files read {run['files_read']:,}, unchanged {run['files_skipped']:,}; records read "
        f"{run['records_read']:,}: loaded {run['records_loaded']:,}, skipped by rule {run['records_skipped']:,}, "
        f"duplicates {run['duplicates']:,}, rejected {run['rejects']:,}"
    )
    if run["rows_added"] and run["status"] == "succeeded":
        console.print("  rows added: " + ", ".join(f"{k} {v:,}" for k, v in run["rows_added"].items()))
    if run["files"]:
        console.print(_rows_table("Files", ["path", "kind", "size_bytes", "records", "rejects"], run["files"]))
    if run["reject_reasons"]:
        console.print(_rows_table("Reject reasons", ["reason", "records", "example"], run["reject_reasons"]))


@cli.command()
@click.option("--run", "run_id", type=int, metavar="N", help="Only the rejects of run N.")
@click.option("--reason", metavar="TEXT", help="Only rejects whose reason contains TEXT (case-insensitive).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many rejects.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (with the whole raw text).")
@click.pass_context
@_handle_errors
def rejects(ctx: click.Context, run_id: int | None, reason: str | None, limit: int, as_json: bool) -> None:
    """List rejected records: file, line, reason and the raw text (cut to fit; --json gives all of it).

    The rejects of a file are those of its last read (a file read again replaces them).

    \b
    Examples:
      musicstream rejects
      musicstream rejects --run 3 --reason "malformed JSON"
      musicstream rejects --json > rejects.json
    """
    from musicstream import ops

    with _database(ctx).connect() as conn:
        found = ops.rejects(conn, run_id, reason, limit)
    if as_json:
        _emit_json(found)
        return
    if not found:
        _console().print("No rejects" + (" match." if run_id or reason else " are kept."))
        return
    table = _rows_table("Rejects", ["run_id", "file", "line", "reason", "raw"], found, {"raw": 60, "reason": 60})
    _console().print(table)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the paths dropped as JSON.")
@click.pass_context
@_handle_errors
def forget(ctx: click.Context, paths: tuple[str, ...], as_json: bool) -> None:
    """Drop files from the manifest, so that the next load reads them again (each PATH, or every file under it).

    What they loaded stays: read again, their plays are duplicates (kept once) and their songs update the
    catalog. To take loaded data out, start over: `musicstream init --reset --yes`, then load what you want.
    (Undoing one run is not sound: a run also moves plays to late catalog songs, changes users' latest details
    and inferred names' spellings, which later runs build on.)

    \b
    Examples:
      musicstream forget data/log_data/2018/11/2018-11-30-events.json
      musicstream forget data/song_data       # every song file under it
    """
    from musicstream import ops

    with _database(ctx).connect() as conn:
        dropped = ops.forget(conn, paths)
    if as_json:
        _emit_json(dropped)
        return
    if not dropped:
        raise click.UsageError("none of these paths is in the manifest: " + ", ".join(paths))
    many = len(dropped) > 1
    _console().print(
        f"Forgot {len(dropped):,} file{'s' if many else ''}: the next load reads {'them' if many else 'it'} again."
    )


@cli.command(name="sql")
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (with a header line).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--write", is_flag=True, help="Allow writes (the default is a read-only transaction).")
@click.pass_context
@_handle_errors
def sql_command(ctx: click.Context, query: str, as_csv: bool, as_json: bool, write: bool) -> None:
    """Run one SQL statement and print its rows (a table, --csv or --json); read-only unless --write.

    \b
    Examples:
      musicstream sql "SELECT tier, count(*) FROM users GROUP BY 1"
      musicstream sql --csv "SELECT * FROM sparkify.songplays" > songplays.csv
    """
    import csv
    import io

    from musicstream import ops

    if as_csv and as_json:
        raise click.UsageError("--csv and --json: choose one")
    with _database(ctx).connect() as conn:
        try:
            columns, found = ops.read_only_sql(conn, query, write)
        except psycopg.errors.ReadOnlySqlTransaction:
            raise click.UsageError("this statement writes; add --write if that is what you mean") from None
        except psycopg.errors.InsufficientPrivilege:
            raise
        except psycopg.Error as exc:
            if conn.broken or exc.diag.message_primary is None:
                raise  # not the statement's fault: a lost connection is a database error
            raise QueryError(f"the query failed: {_sql_error(exc)}") from None
    if as_json:
        _emit_json([dict(zip(columns, row, strict=True)) for row in found])
    elif as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(found)
        click.echo(buffer.getvalue(), nl=False)
    else:
        _console().print(
            _rows_table(
                f"{len(found):,} row{'s' if len(found) != 1 else ''}",
                columns,
                [dict(zip(columns, row, strict=True)) for row in found],
            )
        )


def _sql_error(exc: psycopg.Error) -> str:
    """PostgreSQL's message for a failed statement on one line: what, where in the statement (the character it
    counts from 1), and its hint when it has one."""
    diag = exc.diag
    message = " ".join(str(diag.message_primary).split())
    if diag.statement_position:
        message += f" (at character {diag.statement_position})"
    for extra in (diag.message_detail, diag.message_hint):
        if extra:
            message += f"; {' '.join(extra.split())}"
    return mask_error(Exception(message))


@cli.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--users", default=100, show_default=True, help="Number of users.")
@click.option("--days", default=30, show_default=True, help="Number of days of logs (one file a day).")
@click.option("--songs", default=200, show_default=True, help="Number of catalog songs (one file each).")
@click.option("--events", type=click.IntRange(min=1), help="About this many events in all (overrides the rate).")
@click.option("--seed", default=0, show_default=True, help="Random seed: the same seed gives the same bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@_handle_errors
def generate(out: Path, users: int, days: int, songs: int, events: int | None, seed: int, as_json: bool) -> None:
    """Write a realistic sample data set (song_data/ and log_data/ trees) to OUT.

    The data has the real layout and JSON shape: sessions, logged-out events, tier changes, skewed song
    popularity, most plays naming songs outside the catalog. Deterministic for a seed.

    \b
    Examples:
      musicstream generate sample/
      musicstream generate big/ --users 2000 --days 30 --events 100000 --seed 7
    """
    from musicstream.generate import generate as write_sample

    try:
        stats = write_sample(out, users=users, days=days, songs=songs, seed=seed, events=events)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        _emit_json(stats.__dict__)
        return
    _console().print(
        f"Wrote {stats.song_files:,} song files and {stats.log_files:,} log files "
        f"({stats.events:,} events, {stats.plays:,} plays, {stats.bytes_written / 1e6:.1f} MB) to {out}"
    )
    home = shlex.quote(str(out / ".musicstream"))
    _console().print(
        "This data is synthetic, with the real sample's user ids and month: load it into a state folder of its "
        f"own, so that it cannot mix with real data:\n  musicstream --home {home} init && "
        f"musicstream --home {home} load {shlex.quote(str(out))}"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@click.pass_context
@_handle_errors
def config(ctx: click.Context, as_json: bool) -> None:
    """Show the settings in effect and where each comes from: an option, the environment, a settings file, or
    the default (in that order of precedence). Passwords are never shown.

    A settings file is musicstream.toml in the working directory (the project) or in the user's config folder;
    the project's wins key by key. Top-level keys: database_url, home. A table named after a command sets that
    command's option defaults.

    \b
    Example musicstream.toml:
      database_url = "postgresql://loader@db.example.com/musicstreamdb"
      [load]
      workers = 2
      max-rejects = 100
      [report]
      top = 20

    \b
    Examples:
      musicstream config
      musicstream config --json
    """
    settings: Settings = ctx.obj
    files: FileSettings = ctx.meta["settings_read"]
    url = mask(settings.database_url) if settings.database_url is not None else None
    shown: list[dict[str, Any]] = [
        {
            "setting": "database_url",
            "value": url if url is not None else f"(embedded PostgreSQL in {settings.pgdata})",
            "source": settings.sources.get("database_url", "default"),
        },
        {"setting": "home", "value": str(settings.home), "source": settings.sources.get("home", "default")},
    ]
    for command, options in sorted(_command_defaults(files).items()):
        for key, value in sorted(_flatten(options).items()):
            origin = files.origin.get(f"{command}.{key}") or files.origin.get(command)
            shown.append({"setting": f"{command}.{key}", "value": value, "source": f"file {origin}"})
    looked = [{"path": str(path), "read": path in files.files} for path in config_paths()]
    if as_json:
        _emit_json({"settings": shown, "files": looked})
        return
    console = _console()
    console.print(
        _rows_table("Settings (option > environment > file > default)", ["setting", "value", "source"], shown)
    )
    for entry in looked:
        console.print(f"{'read' if entry['read'] else 'not found'}: {entry['path']}")


def _flatten(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True, help="File format."
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    metavar="NAME",
    help="A table to export (repeatable): trackplays, users, tracks, artists, timetb (the default: all five), or "
    "a Sparkify view: sparkify.songplays, sparkify.users, sparkify.songs, sparkify.artists, sparkify.time.",
)
@click.option("--overwrite", is_flag=True, help="Replace files of the same names in DIRECTORY.")
@click.option("--json", "as_json", is_flag=True, help="Print the files written as JSON.")
@click.pass_context
@_handle_errors
def export(
    ctx: click.Context, directory: Path, fmt: str, tables: tuple[str, ...], overwrite: bool, as_json: bool
) -> None:
    """Write the star schema to DIRECTORY, one file per table (NAME.csv with a header, or NAME.parquet).

    The tables are read in one consistent snapshot (a load committing meanwhile is either in every file or in
    none), in primary-key order; files appear only once all are complete. Parquet keeps the column types
    (NUMERIC as double); CSV holds PostgreSQL's text of each value.

    \b
    Examples:
      musicstream export star/
      musicstream export --format parquet lake/
      musicstream export --table sparkify.songplays --table sparkify.songs --overwrite out/
    """
    from musicstream.export import STAR_TABLES, export_tables

    with _database(ctx).connect(autocommit=True) as conn:
        written = export_tables(conn, directory, fmt, tables or STAR_TABLES, overwrite)
    if as_json:
        _emit_json(written)
        return
    if not _quiet(ctx):
        shown = [{**entry, "rows": f"{entry['rows']:,}", "bytes": f"{entry['bytes']:,}"} for entry in written]
        many = "s" if len(written) > 1 else ""
        _console().print(_rows_table(f"Exported {len(written)} table{many} to {directory}", list(shown[0]), shown))


def _override_setting(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A global option given after the command (``musicstream load --database-url URL data/``) overrides the one
    given before it, or the environment."""
    if value is None or not isinstance(ctx.obj, Settings):
        return value
    try:
        files = ctx.meta.get("settings_read")
        given = ctx.obj.sources
        url = (
            value
            if param.name == "database_url"
            else ctx.obj.database_url
            if given["database_url"] == "option"
            else None
        )
        home = Path(value) if param.name == "home" else ctx.obj.home if given["home"] == "option" else None
        ctx.obj = Settings.resolve(url, home, files)
    except MusicstreamError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


for _command in cli.commands.values():  # the global options, accepted after the command too
    _command.params += [
        click.Option(
            ["--database-url"],
            metavar="URL",
            expose_value=False,
            callback=_override_setting,
            help="As before the command: the PostgreSQL database to use.",
        ),
        click.Option(
            ["--home"],
            type=click.Path(path_type=Path, file_okay=False),
            expose_value=False,
            callback=_override_setting,
            help="As before the command: musicstream's state folder.",
        ),
    ]
    if _command.name == "psql":  # its own arguments go to psql, whose -q and -v mean other things
        continue
    _command.params += [
        click.Option(
            ["--quiet", "-q"],
            is_flag=True,
            expose_value=False,
            callback=_output_option,
            help="As before the command: print only results and errors.",
        ),
        click.Option(
            ["--verbose", "-v"],
            is_flag=True,
            expose_value=False,
            callback=_output_option,
            help="As before the command: also print what a load is doing.",
        ),
        click.Option(
            ["--log-file"],
            type=click.Path(path_type=Path, dir_okay=False),
            expose_value=False,
            callback=_output_option,
            help="As before the command: append every message to this file.",
        ),
    ]


def _click_message(exc: click.ClickException) -> str:
    """A click error as one line (click's own shows a usage block first): what is wrong, naming the option or
    argument it concerns, and for a command line that does not parse, where its help is."""
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
        hint: Any = exc.param_hint
        param = exc.param
        if hint is None and param is not None:
            hint = max(param.opts, key=len) if isinstance(param, click.Option) else param.human_readable_name
        hint = " / ".join(hint) if isinstance(hint, list | tuple) else hint
        message = f"{hint}: {exc.message}" if hint else exc.message
    else:
        message = exc.format_message()
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())
    unparsed = (
        click.MissingParameter,
        click.NoSuchOption,
        click.BadOptionUsage,
        click.BadArgumentUsage,
        click.exceptions.NoSuchCommand,
    )
    if isinstance(exc, unparsed) or message.startswith("Got unexpected"):
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            message = f"{message.removesuffix('.')} (see `{ctx.command_path} --help`)"
    return message


EXIT_INTERRUPTED = 130  # the shell's convention for a process stopped by Ctrl-C (128 + SIGINT)


def main(args: list[str] | None = None, prog_name: str = "musicstream") -> None:
    """The command line; ``args`` and ``prog_name`` let the classic scripts (create_tables.py, etl.py) run it.

    Every outcome is one message and a documented exit code (0, 1, 2 usage, 130 interrupted), never a traceback:
    errors musicstream expects are handled by each command (``_handle_errors``); this is the last resort for the
    rest (an interrupt, a file system error, a bug).
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    try:
        code = _run(args, prog_name)
    finally:
        # What is left is the exit's own cleanup (the embedded server stops when its last user exits): a Ctrl-C
        # now would break it off half-way, with a traceback from the exit handlers. The outcome is decided.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _run(args: list[str] | None, prog_name: str) -> int:
    """The command's exit code; every failure said in one message."""
    try:
        code = cli.main(args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort as exc:  # Ctrl-C (click turns it into Abort), or "no" at a confirmation
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _say_error("error: interrupted — nothing was committed")
            sys.exit(EXIT_INTERRUPTED)
        _say_error("error: aborted — nothing was changed")
        sys.exit(1)
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare `musicstream`: the help, as usage (exit 2)
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # a usage error (exit 2), or a failure a command reports through click
        _say_error(f"error: {_click_message(exc)}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _say_error("error: interrupted — nothing was committed")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader of our output went away (| head): nothing left to say to anyone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        _say_error(f"error: {exc.strerror or exc}{where}: check the path and its permissions")
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one message, with where to report it
        _say_error(
            f"error: unexpected {type(exc).__name__}: {mask_error(exc)}. This is a bug in musicstream; please report "
            "it with the command you ran (set MUSICSTREAM_DEBUG=1 to see the traceback)"
        )
        if os.environ.get("MUSICSTREAM_DEBUG"):
            raise
        sys.exit(1)
    return code if isinstance(code, int) else 0
