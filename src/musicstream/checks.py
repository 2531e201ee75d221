"""Data-quality checks of the loaded tables (``musicstream check``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from musicstream.db.sqlfiles import named_statements, read_sql
from musicstream.transform.names import looks_damaged


@dataclass(frozen=True)
class CheckResult:
    name: str
    description: str
    failures: int

    @property
    def passed(self) -> bool:
        return self.failures == 0


def _descriptions() -> dict[str, str]:
    found: dict[str, str] = {}
    name = None
    for line in read_sql("check/checks").splitlines():
        if line.startswith("-- name:"):
            name = line.split(":", 1)[1].strip()
        elif name and line.startswith("-- ") and name not in found:
            found[name] = line[3:].strip()
    return found


def run_checks(conn: psycopg.Connection[Any]) -> list[CheckResult]:
    """Run every check in one read-only snapshot."""
    described = _descriptions()
    results = []
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for name, query in named_statements("check/checks").items():
            row = conn.execute(query).fetchone()
            results.append(CheckResult(name, described.get(name, ""), int(row[0]) if row else 0))
        results.append(CheckResult("names_not_damaged", NAMES_NOT_DAMAGED, len(damaged_names(conn))))
    return results


NAMES_NOT_DAMAGED = (
    "No stored song title or artist name still looks damaged: mojibake, a cut quote or a control character "
    "(rule 6; `musicstream repair-names` repairs them)."
)

# The stored names that may look damaged: those with a character outside printable ASCII (``names.needs_look``).
_NAMES_TO_LOOK_AT = """
SELECT name FROM (
    SELECT title AS name FROM tracks UNION SELECT name FROM artists
    UNION SELECT song_title FROM play_names UNION SELECT artist_name FROM play_names
) n
WHERE name ~ '[^ -~]'
"""


def damaged_names(conn: psycopg.Connection[Any]) -> list[str]:
    """The distinct stored names (titles, artist names, the names plays give) that still look damaged, by rule 6's
    one definition (``transform.names.looks_damaged``); only names outside printable ASCII are read."""
    found: list[str] = []
    with conn.transaction(), conn.cursor(name="musicstream_names") as cur:
        cur.itersize = 10_000
        for (name,) in cur.execute(_NAMES_TO_LOOK_AT):
            if looks_damaged(name):
                found.append(name)
    return sorted(found)
