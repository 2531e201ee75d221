"""The ``musicstream`` group: its global options (before or after the command), the settings files' defaults,
and ``main``, which turns every outcome into one message and a documented exit code."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from musicstream import __version__
from musicstream.cli.output import configure_output, handle_errors, log, output_option, say_error
from musicstream.config import (
    FileSettings,
    Settings,
    mask_error,
    platform_home,
    read_settings_files,
)
from musicstream.errors import ConfigError, MusicstreamError


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
@click.option("--quiet", "-q", is_flag=True, callback=output_option, help="Print only results and errors.")
@click.option(
    "--verbose", "-v", is_flag=True, callback=output_option, help="Also print what a load is doing, step by step."
)
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    callback=output_option,
    help="Append every message, with its time, to this file (whatever --quiet or --verbose say).",
)
@click.version_option(__version__, prog_name="musicstream")
@click.pass_context
@handle_errors
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
    configure_output(ctx)
    files = read_settings_files()
    ctx.meta["settings_read"] = files
    ctx.obj = Settings.resolve(database_url, home, files)
    ctx.default_map = command_defaults(files)
    log.debug("musicstream %s, %s", __version__, ctx.invoked_subcommand)


def command_defaults(files: FileSettings) -> dict[str, Any]:
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


def add_global_options() -> None:
    """The global options, accepted after the command too (called once every command is registered)."""
    for _command in cli.commands.values():
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
                callback=output_option,
                help="As before the command: print only results and errors.",
            ),
            click.Option(
                ["--verbose", "-v"],
                is_flag=True,
                expose_value=False,
                callback=output_option,
                help="As before the command: also print what a load is doing.",
            ),
            click.Option(
                ["--log-file"],
                type=click.Path(path_type=Path, dir_okay=False),
                expose_value=False,
                callback=output_option,
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
    errors musicstream expects are handled by each command (``handle_errors``); this is the last resort for the
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
            say_error("error: interrupted — nothing was committed")
            sys.exit(EXIT_INTERRUPTED)
        say_error("error: aborted — nothing was changed")
        sys.exit(1)
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare `musicstream`: the help, as usage (exit 2)
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # a usage error (exit 2), or a failure a command reports through click
        say_error(f"error: {_click_message(exc)}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say_error("error: interrupted — nothing was committed")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader of our output went away (| head): nothing left to say to anyone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        say_error(f"error: {exc.strerror or exc}{where}: check the path and its permissions")
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one message, with where to report it
        say_error(
            f"error: unexpected {type(exc).__name__}: {mask_error(exc)}. This is a bug in musicstream; please report "
            "it with the command you ran (set MUSICSTREAM_DEBUG=1 to see the traceback)"
        )
        if os.environ.get("MUSICSTREAM_DEBUG"):
            raise
        sys.exit(1)
    return code if isinstance(code, int) else 0
