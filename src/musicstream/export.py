"""The star schema (or the Sparkify views) as files: one CSV or Parquet file per table, for tools that do not speak
PostgreSQL.

All tables are read in one repeatable-read, read-only transaction, so the files agree with each other even when a
load commits meanwhile. Rows are in primary-key order (views: by every column), so two exports of the same data are
the same files. Each file is written under a temporary name in the target folder (``.trackplays.csv.partial``)
and renamed into place only when every file is complete: an export that fails or is interrupted replaces nothing
and leaves no half file behind.

Memory stays bounded whatever the size of a table: CSV is streamed from ``COPY ... TO STDOUT`` block by block, and
Parquet is read through a server-side cursor in batches of :data:`BATCH_ROWS` rows that polars writes as they come.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from musicstream.config import mask_error
from musicstream.db.schema import STAR_TABLES, require_schema
from musicstream.errors import ConfigError, DatabaseError, ExportError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["BATCH_ROWS", "FORMATS", "SPARKIFY_VIEWS", "STAR_TABLES", "ExportError", "export_tables"]

SPARKIFY_VIEWS = ("sparkify.songplays", "sparkify.users", "sparkify.songs", "sparkify.artists", "sparkify.time")
FORMATS = ("csv", "parquet")

# Rows per fetch from the server-side cursor, and per Parquet batch.
BATCH_ROWS = 100_000


def export_tables(
    conn: psycopg.Connection[Any],
    directory: Path,
    fmt: str = "csv",
    tables: Sequence[str] = STAR_TABLES,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Write each of ``tables`` to ``directory/<name>.<fmt>``; returns, per table, its name, path, rows and bytes.

    ``tables`` are names from :data:`STAR_TABLES` and :data:`SPARKIFY_VIEWS` (``sparkify.songplays`` is written
    to ``sparkify.songplays.csv``). ``conn`` may be in autocommit mode or not, but must have no transaction open.

    Parquet column types follow the PostgreSQL ones: bigint → Int64, integer → Int32, smallint → Int16, text and
    varchar → String, boolean → Boolean, timestamp → Datetime("us"), date → Date, double precision → Float64,
    real → Float32. NUMERIC → Float64 too: the durations and coordinates stored as NUMERIC were read from JSON
    numbers, which are doubles, so a double gives back exactly the value the song file held. Any other type is
    written as its PostgreSQL text (String). CSV files hold PostgreSQL's text for every value, in UTF-8.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: use csv or parquet")
    names = list(dict.fromkeys([tables] if isinstance(tables, str) else tables))
    unknown = [name for name in names if name not in STAR_TABLES and name not in SPARKIFY_VIEWS]
    if unknown:
        known = ", ".join((*STAR_TABLES, *SPARKIFY_VIEWS))
        raise ConfigError(f"cannot export {', '.join(map(repr, unknown))}: the tables that can be exported are {known}")
    if not names:
        raise ConfigError(f"name at least one table to export: {', '.join((*STAR_TABLES, *SPARKIFY_VIEWS))}")
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise DatabaseError("export needs a connection with no transaction open: commit or roll back first")

    targets = {name: directory / f"{name}.{fmt}" for name in names}
    folders = [path for path in targets.values() if path.is_dir()]
    if folders:
        raise ExportError(
            f"{', '.join(map(str, folders))} {'is a folder' if len(folders) == 1 else 'are folders'}, which an "
            "export does not replace: remove or rename it, or export to another folder"
        )
    existing = [path for path in targets.values() if path.exists()]
    if existing and not overwrite:
        raise ExportError(
            f"{', '.join(map(str, existing))} {'exists' if len(existing) == 1 else 'exist'} already: "
            "add --overwrite to replace them"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the folder {directory}: {exc.strerror or exc}") from None

    write = _write_csv if fmt == "csv" else _write_parquet
    partials = {name: directory / f".{path.name}.partial" for name, path in targets.items()}
    counts: dict[str, int] = {}
    replaced = 0
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.execute("SET LOCAL client_encoding TO 'UTF8'")  # COPY's bytes go to the CSV files as they are
            require_schema(conn)
            for name in names:
                counts[name] = write(conn, _relation(name), partials[name])
        for name in names:
            os.replace(partials[name], targets[name])
            replaced += 1
    except BaseException as exc:
        for partial in partials.values():
            partial.unlink(missing_ok=True)
        if isinstance(exc, psycopg.Error):
            raise DatabaseError(f"the export failed and replaced no file: {mask_error(exc).strip()}") from None
        if isinstance(exc, OSError):
            done = f"{replaced} of {len(names)} files were replaced" if replaced else "no file was replaced"
            raise ExportError(f"cannot write the export to {directory}: {exc.strerror or exc}; {done}") from None
        raise
    return [
        {"table": name, "path": str(targets[name]), "rows": counts[name], "bytes": targets[name].stat().st_size}
        for name in names
    ]


def _relation(name: str) -> tuple[str, str]:
    """A table's or view's schema and name: ``trackplays`` → (public, trackplays)."""
    schema, _, table = name.rpartition(".")
    return schema or "public", table


def _columns(conn: psycopg.Connection[Any], relation: tuple[str, str]) -> list[tuple[str, int]]:
    """The relation's columns in order: name and type OID."""
    cur = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(sql.Identifier(*relation)))
    assert cur.description is not None
    return [(column.name, column.type_code) for column in cur.description]


def _order_by(conn: psycopg.Connection[Any], relation: tuple[str, str], width: int) -> sql.Composable:
    """ORDER BY the primary key's columns; for a relation without one (a view), every column in order."""
    schema, table = relation
    found = conn.execute(
        """SELECT a.attname::text
           FROM pg_index i
           JOIN pg_class c ON c.oid = i.indrelid
           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
           WHERE c.relnamespace = %s::regnamespace AND c.relname = %s AND i.indisprimary
           ORDER BY k.n""",
        (sql.Identifier(schema).as_string(conn), table),
    ).fetchall()
    if found:
        keys: list[sql.Composable] = [sql.Identifier(str(row[0])) for row in found]
    else:
        keys = [sql.Literal(position) for position in range(1, width + 1)]
    return sql.SQL("ORDER BY {}").format(sql.SQL(", ").join(keys))


def _write_csv(conn: psycopg.Connection[Any], relation: tuple[str, str], path: Path) -> int:
    """Stream the relation to a CSV file with a header row; returns the number of rows."""
    columns = _columns(conn, relation)
    query = sql.SQL("COPY (SELECT * FROM {} {}) TO STDOUT (FORMAT csv, HEADER)").format(
        sql.Identifier(*relation), _order_by(conn, relation, len(columns))
    )
    with conn.cursor() as cur, path.open("wb") as out:
        with cur.copy(query) as copy:
            for block in copy:
                out.write(block)
        return max(cur.rowcount, 0)


def _polars_types() -> dict[str, pl.DataType]:
    """Polars types by PostgreSQL type name; a ``float8`` entry is also where NUMERIC goes (cast in the query)."""
    import polars as pl

    return {
        "int8": pl.Int64(),
        "int4": pl.Int32(),
        "int2": pl.Int16(),
        "text": pl.String(),
        "varchar": pl.String(),
        "bpchar": pl.String(),
        "bool": pl.Boolean(),
        "timestamp": pl.Datetime("us"),
        "date": pl.Date(),
        "float8": pl.Float64(),
        "float4": pl.Float32(),
    }


def _write_parquet(conn: psycopg.Connection[Any], relation: tuple[str, str], path: Path) -> int:
    """Write the relation to one Parquet file, batch by batch; returns the number of rows."""
    import polars as pl
    from polars.io.plugins import register_io_source

    types = _polars_types()
    schema: dict[str, pl.DataType] = {}
    select: list[sql.Composable] = []
    for name, oid in _columns(conn, relation):
        info = psycopg.postgres.types.get(oid)
        type_name = info.name if info is not None else ""
        column = sql.Identifier(name)
        if type_name == "numeric":
            select.append(sql.SQL("{}::double precision AS {}").format(column, column))
            schema[name] = pl.Float64()
        elif type_name in types:
            select.append(column)
            schema[name] = types[type_name]
        else:
            select.append(sql.SQL("{}::text AS {}").format(column, column))
            schema[name] = pl.String()
    query = sql.SQL("SELECT {} FROM {} {}").format(
        sql.SQL(", ").join(select), sql.Identifier(*relation), _order_by(conn, relation, len(schema))
    )
    rows = 0

    def batches() -> Generator[pl.DataFrame]:
        nonlocal rows
        with conn.cursor(name="musicstream_export") as cur:
            cur.execute(query)
            while fetched := cur.fetchmany(BATCH_ROWS):
                rows += len(fetched)
                yield pl.DataFrame(fetched, schema=schema, orient="row")

    read = batches()

    def source(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        # a plain sink asks for every column and row, but the arguments are honoured all the same
        left = n_rows
        for frame in read:
            out = frame if with_columns is None else frame.select(with_columns)
            out = out if predicate is None else out.filter(predicate)
            if left is not None:
                out = out.head(left)
                left -= out.height
            yield out
            if left == 0:
                return

    try:
        register_io_source(source, schema=schema, validate_schema=True).sink_parquet(path)
    finally:
        read.close()  # closes the server-side cursor now, inside the export's transaction
    return rows
