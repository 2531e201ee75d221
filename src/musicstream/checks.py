"""Data-quality checks of the loaded tables (``musicstream check``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from musicstream.db.sqlfiles import named_statements, read_sql


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
    return results
