"""The operator's commands: runs, rejects, forget, repair-names, roles, psql, config, generate."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from musicstream.cli.app import cli, command_defaults
from musicstream.cli.output import database_of, emit_json, handle_errors, make_console, rows_table
from musicstream.config import (
    FileSettings,
    Settings,
    config_paths,
    mask,
)


@cli.command()
@click.option("--analyst", default="musicstream_analyst", show_default=True, help="Name of the read-only role.")
@click.option("--loader", default="musicstream_loader", show_default=True, help="Name of the loading role.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
@handle_errors
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

    db = database_of(ctx)
    with db.connect(autocommit=True) as conn:
        try:
            outcome = create_roles(conn, analyst, loader)
        except pg.errors.InsufficientPrivilege as exc:
            raise DatabaseError(
                f"not allowed to create roles or grant privileges: {exc}. Run `musicstream roles` as a role with "
                "CREATEROLE that owns musicstream's tables (the one that ran `musicstream init`)"
            ) from None
    if as_json:
        emit_json(outcome)
        return
    made = ", ".join(outcome["created"]) or "none (they existed; privileges refreshed)"
    make_console().print(
        f"Roles {analyst} (read-only) and {loader} (loads) ready on {outcome['database']}; new: {made}."
    )


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handle_errors
def psql(ctx: click.Context, psql_args: tuple[str, ...]) -> None:
    """Open psql on the database (the embedded server's own psql when embedded).

    Extra arguments go to psql.

    \b
    Examples:
      musicstream psql
      musicstream psql -c "SELECT count(*) FROM trackplays"
    """
    db = database_of(ctx)
    argv, env = db.psql_command()
    try:
        completed = subprocess.run([*argv, *psql_args], env=env, check=False)
    except FileNotFoundError:
        raise click.ClickException(
            "psql was not found; install the PostgreSQL client (Debian: apt-get install postgresql-client)"
        ) from None
    sys.exit(completed.returncode)


@cli.group(invoke_without_command=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
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

    with database_of(ctx).connect() as conn:
        found = ops.runs(conn, limit)
    if as_json:
        emit_json(found)
        return
    from musicstream.cli.console import runs_table

    make_console().print(runs_table(found, "Load runs (newest first; `musicstream runs show N` for one)"))


@runs.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def runs_show(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """Show one run: its record, the files it read, its reject reasons.

    \b
    Examples:
      musicstream runs show 1
      musicstream runs show 1 --json
    """
    from rich.markup import escape

    from musicstream import ops

    with database_of(ctx).connect() as conn:
        run = ops.run_detail(conn, run_id)
    if as_json:
        emit_json(run)
        return
    console = make_console()
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
        console.print(rows_table("Files", ["path", "kind", "size_bytes", "records", "rejects"], run["files"]))
    if run["reject_reasons"]:
        console.print(rows_table("Reject reasons", ["reason", "records", "example"], run["reject_reasons"]))


@cli.command()
@click.option("--run", "run_id", type=int, metavar="N", help="Only the rejects of run N.")
@click.option("--reason", metavar="TEXT", help="Only rejects whose reason contains TEXT (case-insensitive).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many rejects.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (with the whole raw text).")
@click.pass_context
@handle_errors
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

    with database_of(ctx).connect() as conn:
        found = ops.rejects(conn, run_id, reason, limit)
    if as_json:
        emit_json(found)
        return
    if not found:
        make_console().print("No rejects" + (" match." if run_id or reason else " are kept."))
        return
    table = rows_table("Rejects", ["run_id", "file", "line", "reason", "raw"], found, {"raw": 60, "reason": 60})
    make_console().print(table)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the paths dropped as JSON.")
@click.pass_context
@handle_errors
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

    with database_of(ctx).connect() as conn:
        dropped = ops.forget(conn, paths)
    if as_json:
        emit_json(dropped)
        return
    if not dropped:
        raise click.UsageError("none of these paths is in the manifest: " + ", ".join(paths))
    many = len(dropped) > 1
    make_console().print(
        f"Forgot {len(dropped):,} file{'s' if many else ''}: the next load reads {'them' if many else 'it'} again."
    )


@cli.command("repair-names")
@click.option("--dry-run", is_flag=True, help="Find and apply the repairs, then roll them back: change nothing.")
@click.option("--no-wait", is_flag=True, help="Exit at once if a load is running on the database.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
@handle_errors
def repair_names(ctx: click.Context, dry_run: bool, no_wait: bool, as_json: bool) -> None:
    """Repair the song titles and artist names a database already holds (loaded before names were repaired, or
    with --no-repair-names), as a load repairs them now (docs/rules.md, rule 6).

    Each repaired spelling is kept in the name_repairs table (with no file: it was a stored name). The plays of the
    repaired names are resolved again, as a late catalog file resolves them, and the report's rollups of their
    days follow. Like a load: in the load lock, in one transaction (stopped or failed, it changes nothing), and
    safe to run again (a second run finds nothing to repair).

    \b
    Examples:
      musicstream repair-names --dry-run     # what would be repaired
      musicstream repair-names
    """
    from musicstream.load.repair import repair_names as repair

    result = repair(database_of(ctx), wait=not no_wait, dry_run=dry_run)
    if as_json:
        emit_json({**result.as_dict(), "dry_run": dry_run})
        return
    console = make_console()
    if not result.spellings:
        console.print("No stored name needs a repair.")
        return
    done = "Would repair" if dry_run else "Repaired"
    console.print(
        f"{done} {result.spellings:,} spelling{'s' * (result.spellings > 1)} in {result.names:,} play names "
        f"and the catalog; {result.plays_moved:,} plays {'would move' if dry_run else 'moved'} to another track or "
        "artist."
    )
    for original, repaired in result.examples:
        console.print(f"  {original!r} → {repaired}")
    if not dry_run:
        console.print("The originals are in the name_repairs table.")


@cli.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--users", type=click.IntRange(min=1), help="Number of users [default: 100; with --drip 1000].")
@click.option("--days", default=30, show_default=True, help="Number of days of logs (one file a day).")
@click.option("--songs", default=200, show_default=True, help="Number of catalog songs (one file each).")
@click.option("--events", type=click.IntRange(min=1), help="About this many events in all (overrides the rate).")
@click.option("--seed", default=0, show_default=True, help="Random seed: the same seed gives the same bytes.")
@click.option(
    "--drip",
    is_flag=True,
    help="Write log files into OUT over time, as a live app would (for `musicstream watch`): see --rate.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=1000.0,
    show_default=True,
    metavar="EVENTS/S",
    help="With --drip: events a second.",
)
@click.option(
    "--file-events",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    metavar="N",
    help="With --drip: events in each file.",
)
@click.option("--files", type=click.IntRange(min=1), metavar="N", help="With --drip: stop after N files.")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="With --drip: stop after S seconds (with neither, at Ctrl-C).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON (with --drip: a line a file).")
@handle_errors
def generate(
    out: Path,
    users: int | None,
    days: int,
    songs: int,
    events: int | None,
    seed: int,
    drip: bool,
    rate: float,
    file_events: int,
    files: int | None,
    seconds: float | None,
    as_json: bool,
) -> None:
    """Write a realistic sample data set (song_data/ and log_data/ trees) to OUT.

    The data has the real layout and JSON shape: sessions, logged-out events, tier changes, skewed song
    popularity, most plays naming songs outside the catalog. Deterministic for a seed.

    With --drip, the song files are written at once, then log files of --file-events events land in
    OUT/log_data/ at --rate events a second, each written under a temporary name (*.json.tmp) and renamed into
    place; their sessions are numbered apart from a sample's, so their plays are new next to one.

    \b
    Examples:
      musicstream generate sample/
      musicstream generate big/ --users 2000 --days 30 --events 100000 --seed 7
      musicstream generate --drip --rate 20000 --file-events 10000 --files 50 incoming/
    """
    if drip:
        _drip(out, users or 1000, songs, seed, rate, file_events, files, seconds, as_json)
        return
    if files is not None or seconds is not None:
        raise click.UsageError("--files and --seconds need --drip")
    from musicstream.generate import generate as write_sample

    try:
        stats = write_sample(out, users=users or 100, days=days, songs=songs, seed=seed, events=events)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        emit_json(stats.__dict__)
        return
    make_console().print(
        f"Wrote {stats.song_files:,} song files and {stats.log_files:,} log files "
        f"({stats.events:,} events, {stats.plays:,} plays, {stats.bytes_written / 1e6:.1f} MB) to {out}"
    )
    home = shlex.quote(str(out / ".musicstream"))
    make_console().print(
        "This data is synthetic, with the real sample's user ids and month: load it into a state folder of its "
        f"own, so that it cannot mix with real data:\n  musicstream --home {home} init && "
        f"musicstream --home {home} load {shlex.quote(str(out))}"
    )


def _drip(
    out: Path,
    users: int,
    songs: int,
    seed: int,
    rate: float,
    file_events: int,
    files: int | None,
    seconds: float | None,
    as_json: bool,
) -> None:
    from musicstream.cli.output import emit_json_line
    from musicstream.generate.drip import Landed, drip

    def landed(file: Landed) -> None:
        if as_json:
            emit_json_line({"path": str(file.path), "events": file.events, "bytes": file.size})
        else:
            click.echo(f"{file.path} ({file.events:,} events)")

    try:
        stats = drip(
            out,
            rate=rate,
            file_events=file_events,
            files=files,
            seconds=seconds,
            users=users,
            songs=songs,
            seed=seed,
            on_file=landed,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not as_json:
        click.echo(
            f"Wrote {stats.song_files:,} song files, then {stats.log_files:,} log files ({stats.events:,} events, "
            f"{stats.bytes_written / 1e6:.1f} MB) in {stats.seconds:.1f} s to {out}",
            err=True,
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@click.pass_context
@handle_errors
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
    for command, options in sorted(command_defaults(files).items()):
        for key, value in sorted(_flatten(options).items()):
            origin = files.origin.get(f"{command}.{key}") or files.origin.get(command)
            shown.append({"setting": f"{command}.{key}", "value": value, "source": f"file {origin}"})
    looked = [{"path": str(path), "read": path in files.files} for path in config_paths()]
    if as_json:
        emit_json({"settings": shown, "files": looked})
        return
    console = make_console()
    console.print(rows_table("Settings (option > environment > file > default)", ["setting", "value", "source"], shown))
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
