"""What every command shares: where messages go (--quiet, --verbose, --log-file), the console for results (a
terminal's, or plain lines for a pipe), JSON output, row tables, and one error message per failure."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import click
import orjson
import psycopg
from rich.console import Console

from musicstream.config import (
    Settings,
    mask_error,
)
from musicstream.errors import ConfigError, MusicstreamError

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = "\b\nExamples:\n"


# The widest line written to a pipe or a file: each table or panel is as wide as its content up to this (rich
# would wrap them at 80 columns).
PIPE_WIDTH = 10_000

log = logging.getLogger("musicstream")  # the library's messages: stderr by --quiet/--verbose, all to --log-file
error_log = logging.getLogger("musicstream.errors")  # the messages the command line prints itself: the log file only
error_log.propagate = False
error_log.addHandler(logging.NullHandler())


def configure_output(ctx: click.Context) -> None:
    """Where messages go, from ``--quiet``, ``--verbose`` and ``--log-file`` (before or after the command)."""
    quiet, verbose, log_file = (ctx.meta.get(k) for k in ("quiet", "verbose", "log_file"))
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose: choose one")
    for logger in (log, error_log):
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
        error_log.addHandler(to_file)
        driver.addHandler(to_file)


def output_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``--quiet``, ``--verbose`` and ``--log-file``: recorded for the whole invocation, output set up again."""
    if value is None or value is False:
        return value
    ctx.meta[str(param.name)] = value
    if "settings_read" in ctx.meta:  # after the command: the group has set up the output already
        configure_output(ctx)
    return value


def is_quiet(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("quiet"))


def say_error(message: str) -> None:
    """One error message: on stderr, and in the log file when there is one."""
    error_log.error("%s", message)
    click.echo(message, err=True)


def make_console(stderr: bool = False) -> Console:
    """A console for results (stdout), or for a load's progress (stderr). Results written to a pipe or a file are
    each as wide as their content (up to $COLUMNS when set), with no colour and no padding."""
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if stderr or console.is_terminal:
        return console
    from musicstream.cli.console import PipeConsole

    return PipeConsole(console.width if "COLUMNS" in os.environ else PIPE_WIDTH)


def _json_value(value: Any) -> Any:
    """Values orjson does not write itself: SQL numerics stay numbers (with decimals as floats: 4.0 stays 4.0, a
    count is an int), the rest as text (dates, ...)."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    return str(value)


def emit_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=_json_value).decode())


def emit_json_line(data: Any) -> None:
    """One JSON object on one line of stdout, with the time it was written, flushed at once (a log for machines)."""
    import datetime as dt

    stamped = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **data}
    click.echo(orjson.dumps(stamped, option=orjson.OPT_NON_STR_KEYS, default=_json_value).decode())
    sys.stdout.flush()


def handle_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MusicstreamError as exc:
            say_error(f"error: {exc}")  # unwrapped and unstyled: logs and scripts read it whole
            sys.exit(exc.exit_code)
        except psycopg.errors.InsufficientPrivilege as exc:
            say_error(f"error: permission denied: {mask_error(exc).strip()} (see `musicstream roles`)")
            sys.exit(1)
        except psycopg.Error as exc:
            say_error(f"error: database error: {mask_error(exc).strip()}")
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def database_of(ctx: click.Context) -> Any:
    from musicstream.db.connection import Database

    settings: Settings = ctx.obj
    return Database(settings)


def _cell(value: Any, width: int | None) -> str:
    """A value as table text (shown as is: no markup); cut to ``width`` characters on one line when given."""
    from rich.markup import escape

    text = "" if value is None else str(value)
    if width is not None:
        text = " ".join(text.split())
        text = text if len(text) <= width else text[: width - 1] + "…"
    return escape(text)


def rows_table(title: str, columns: list[str], rows: list[dict[str, Any]], cut: dict[str, int] | None = None) -> Any:
    """Rows of a query (`query`, `sql`, `runs show`, `rejects`) as a table; ``cut``: columns cut to a width."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[c], (cut or {}).get(c)) for c in columns))
    return table
