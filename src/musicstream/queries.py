"""Curated SQL for the questions analysts ask (``musicstream query NAME [PARAM=VALUE ...]``).

Each query is a file in ``sql/queries/``: a first comment line that says what it answers, ``-- param NAME TYPE
DEFAULT: description`` lines, then one SELECT using ``%(NAME)s`` placeholders (values are always bound
parameters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row

from musicstream.db.sqlfiles import read_sql
from musicstream.errors import ConfigError

_PARAM = re.compile(r"^-- param (\w+) (\w+) (\S+): (.*)$")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None
    description: str


@dataclass(frozen=True)
class Query:
    name: str
    title: str
    params: tuple[Param, ...]
    sql: str


def _parse(name: str) -> Query:
    text = read_sql(f"queries/{name}")
    lines = text.splitlines()
    title = lines[0].removeprefix("--").strip()
    params = []
    for line in lines[1:]:
        match = _PARAM.match(line)
        if match:
            pname, ptype, default, description = match.groups()
            params.append(Param(pname, ptype, None if default == "null" else default, description))
    return Query(name, title, tuple(params), text)


def available() -> list[Query]:
    folder = resources.files("musicstream").joinpath("sql", "queries")
    names = sorted(entry.name.removesuffix(".sql") for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return [_parse(name) for name in names]


def get(name: str) -> Query:
    for query in available():
        if query.name == name:
            return query
    names = ", ".join(q.name for q in available())
    raise ConfigError(f"no curated query named {name!r}; the queries are: {names}")


def bind(query: Query, assignments: list[str]) -> dict[str, Any]:
    """Parameter values from ``NAME=VALUE`` strings, with the query's defaults; ``null`` means NULL."""
    values: dict[str, Any] = {p.name: p.default for p in query.params}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or key not in values:
            known = ", ".join(p.name for p in query.params) or "none"
            raise ConfigError(f"query {query.name} takes NAME=VALUE parameters ({known}), not {assignment!r}")
        values[key] = None if value.lower() == "null" else value
    return values


def run(conn: psycopg.Connection[Any], query: Query, values: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        with conn.cursor(row_factory=dict_row) as cur:
            try:
                cur.execute(query.sql, values)  # our own trusted .sql file
            except (psycopg.errors.InvalidDatetimeFormat, psycopg.errors.InvalidTextRepresentation) as exc:
                raise ConfigError(f"query {query.name}: a parameter has the wrong type: {exc}") from None
            columns = [c.name for c in cur.description or []]
            return columns, cur.fetchall()
