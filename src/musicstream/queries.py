"""Curated SQL for the questions analysts ask (``musicstream query NAME [PARAM=VALUE ...]``).

Each query is a file in ``sql/queries/``: a first comment line that says what it answers, ``-- param NAME TYPE
DEFAULT: description`` lines (TYPE one of ``TYPES``; DEFAULT ``null`` for none, ``required`` for a value the user
must give), then one SELECT using ``%(NAME)s`` placeholders (values are always bound parameters).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from musicstream.db.sqlfiles import read_sql
from musicstream.errors import ConfigError, QueryError
from musicstream.rules import TIERS

_PARAM = re.compile(r"^-- param (\w+) (\w+) (\S+): (.*)$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT = re.compile(r"[+-]?\d+")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_INT_MAX = 2**31 - 1  # the columns and casts the queries compare with are PostgreSQL INT
# The parameter types, and what each accepts as a user reads it in an error message. ``count`` is a number of rows
# or items (at least 1), ``tier`` a user's tier, ``user`` the id of a user the database holds.
TYPES = {
    "int": "a whole number, e.g. 5",
    "count": "a whole number of at least 1, e.g. 10",
    "user": "a user's id (a whole number), e.g. 15",
    "date": "a date YYYY-MM-DD, e.g. 2018-11-05",
    "tier": " or ".join(repr(t) for t in sorted(TIERS)),
    "text": "text",
}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None
    description: str
    required: bool = False


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
            if ptype not in TYPES:
                raise ValueError(
                    f"queries/{name}.sql: parameter {pname} has no type {ptype!r}; the types: {list(TYPES)}"
                )
            value = None if default in ("null", "required") else default
            params.append(Param(pname, ptype, value, description, required=default == "required"))
    return Query(name, title, tuple(params), text)


def available() -> list[Query]:
    folder = resources.files("musicstream").joinpath("sql", "queries")
    names = sorted(entry.name.removesuffix(".sql") for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return [_parse(name) for name in names]


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def get(name: str) -> Query:
    queries = available()
    for query in queries:
        if query.name == name:
            return query
    names = [q.name for q in queries]
    hint = _did_you_mean(name, names)
    raise ConfigError(f"no curated query named {name!r}; {hint}the queries are: {', '.join(names)}")


def convert(query: Query, param: Param, text: str | None) -> Any:
    """A parameter's value from its text, checked against its declared type; ``null`` (any case) means NULL."""
    if text is None or text.lower() == "null":
        return None
    try:
        if param.type in ("int", "count", "user"):
            number = int(text) if _INT.fullmatch(text) else None
            if number is None or abs(number) > _INT_MAX or (param.type == "count" and number < 1):
                raise ValueError(text)
            return number
        if param.type == "date":
            if not _DATE.fullmatch(text):
                raise ValueError(text)
            return dt.date.fromisoformat(text)
        if param.type == "tier" and text not in TIERS:
            raise ValueError(text)
    except ValueError:
        raise ConfigError(
            f"query {query.name}: parameter {param.name} takes {TYPES[param.type]} (or null), not {text!r}"
        ) from None
    return text


def bind(query: Query, assignments: list[str]) -> dict[str, Any]:
    """Parameter values from ``NAME=VALUE`` strings, converted to their declared types, with the query's defaults."""
    params = {p.name: p for p in query.params}
    texts: dict[str, str | None] = {p.name: p.default for p in query.params}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if key not in params:
            names = list(params)
            known = ", ".join(f"{p.name} ({p.type})" for p in query.params) or "none"
            raise ConfigError(
                f"query {query.name} has no parameter {key!r}; {_did_you_mean(key, names)}"
                f"its parameters are: {known}, given as NAME=VALUE"
            )
        if not sep:
            raise ConfigError(f"query {query.name}: give parameter {key} as {key}=VALUE ({TYPES[params[key].type]})")
        texts[key] = value
    for param in query.params:
        if param.required and texts[param.name] is None:
            raise ConfigError(f"query {query.name} needs {param.name}=VALUE ({TYPES[param.type]}): {param.description}")
    return {name: convert(query, params[name], text) for name, text in texts.items()}


def runnable_sql(query: Query, values: dict[str, Any]) -> str:
    """The query with its parameters' values written in as SQL literals: it runs as printed in psql."""
    header = [f"-- {name} = {'null' if value is None else value}" for name, value in values.items()]

    def literal(match: re.Match[str]) -> str:
        return sql.Literal(values[match.group(1)]).as_string(None)

    body = _PLACEHOLDER.sub(literal, query.sql).replace("%%", "%").rstrip().rstrip(";")
    return "\n".join([*header, body + ";"]) + "\n"


def run(conn: psycopg.Connection[Any], query: Query, values: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        for user in (values[p.name] for p in query.params if p.type == "user" and values.get(p.name) is not None):
            row = conn.execute("SELECT EXISTS (SELECT FROM users WHERE user_id = %s)", (user,)).fetchone()
            if row is not None and not row[0]:
                raise QueryError(  # a message that names a command to run, not SQL that runs here
                    f"query {query.name}: no such user: {user} (the users' ids: "  # noqa: S608
                    'musicstream sql "SELECT user_id, first_name, last_name FROM users ORDER BY 1")'
                )
        with conn.cursor(row_factory=dict_row) as cur:
            try:
                cur.execute(query.sql, values)  # our own trusted .sql file
            except (psycopg.errors.InvalidDatetimeFormat, psycopg.errors.InvalidTextRepresentation) as exc:
                raise ConfigError(f"query {query.name}: a parameter has the wrong type: {exc}") from None
            columns = [c.name for c in cur.description or []]
            return columns, cur.fetchall()
