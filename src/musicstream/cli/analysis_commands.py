"""The commands that read the star schema: report, query, sql, export."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import click
import psycopg

from musicstream.cli.app import cli
from musicstream.cli.output import database_of, emit_json, handle_errors, is_quiet, make_console, rows_table
from musicstream.config import (
    mask_error,
)
from musicstream.errors import QueryError
from musicstream.rules import TIERS


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
@handle_errors
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
    db = database_of(ctx)
    with db.connect(autocommit=True) as conn:
        require_schema(conn)
        figures = build_report(conn, filters)
    if html_file is not None:
        from musicstream.report.html import render_html

        html_file.write_text(render_html(figures), encoding="utf-8")
    if as_json:
        emit_json(figures)
    elif html_file is not None:
        make_console().print(f"Wrote {html_file} ({html_file.stat().st_size / 1024:.0f} KiB).")
    else:
        from musicstream.report.terminal import render

        make_console().print(render(figures))


@cli.command()
@click.argument("name", required=False)
@click.argument("params", nargs=-1)
@click.option("--list", "list_queries", is_flag=True, help="List the curated queries and their parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows (or with --list, the queries) as JSON.")
@click.option("--sql", "show_sql", is_flag=True, help="Print the query's SQL instead of running it.")
@click.pass_context
@handle_errors
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
            emit_json(
                [{"name": q.name, "title": q.title, "params": [vars(p) for p in q.params]} for q in queries.available()]
            )
            return
        table = Table(title="Curated queries", title_justify="left")
        for column in ("name", "what it answers", "parameters (default)"):
            table.add_column(column)
        for q in queries.available():
            described = ", ".join(f"{p.name}={'(required)' if p.required else p.default or 'null'}" for p in q.params)
            table.add_row(q.name, q.title, described)
        make_console().print(table)
        return
    chosen = queries.get(name)
    values = queries.bind(chosen, list(params))
    if show_sql:
        click.echo(queries.runnable_sql(chosen, values), nl=False)
        return
    db = database_of(ctx)
    with db.connect(autocommit=True) as conn:
        columns, rows = queries.run(conn, chosen, values)
    if not rows and not is_quiet(ctx):
        click.echo(f"no rows: query {chosen.name} found nothing for these parameters", err=True)
    if as_json:
        emit_json(rows)
        return
    make_console().print(rows_table(chosen.title, columns, rows))


@cli.command(name="sql")
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (with a header line).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--write", is_flag=True, help="Allow writes (the default is a read-only transaction).")
@click.pass_context
@handle_errors
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
    with database_of(ctx).connect() as conn:
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
        emit_json([dict(zip(columns, row, strict=True)) for row in found])
    elif as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(found)
        click.echo(buffer.getvalue(), nl=False)
    else:
        make_console().print(
            rows_table(
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
@handle_errors
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

    with database_of(ctx).connect(autocommit=True) as conn:
        written = export_tables(conn, directory, fmt, tables or STAR_TABLES, overwrite)
    if as_json:
        emit_json(written)
        return
    if not is_quiet(ctx):
        shown = [{**entry, "rows": f"{entry['rows']:,}", "bytes": f"{entry['bytes']:,}"} for entry in written]
        many = "s" if len(written) > 1 else ""
        make_console().print(rows_table(f"Exported {len(written)} table{many} to {directory}", list(shown[0]), shown))
