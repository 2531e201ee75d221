"""SQL lives in .sql files shipped with the package; this module loads them by name."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from musicstream.rules import sql_constants

_CONSTANT = re.compile(r"\{\{(\w+)\}\}")


@cache
def read_sql(name: str) -> str:
    """The text of ``sql/<name>.sql``, e.g. ``read_sql("load/merge")``, with the rules' constants written in: a
    ``{{name}}`` is ``musicstream.rules.sql_constants()[name]``, a literal of our own (never input)."""
    path = resources.files("musicstream").joinpath("sql", *f"{name}.sql".split("/"))
    constants = sql_constants()

    def constant(match: re.Match[str]) -> str:
        if match[1] not in constants:
            raise KeyError(f"sql/{name}.sql names {match[0]}, which musicstream.rules does not define")
        return constants[match[1]]

    return _CONSTANT.sub(constant, path.read_text(encoding="utf-8"))


def statements(name: str) -> list[str]:
    """The statements of a .sql file, split on lines that end with ``;``.

    Our .sql files keep one statement per block, ending a line with ``;``, and use no ``;`` at a line end inside
    a statement, so this simple split is exact for them.
    """
    out: list[str] = []
    current: list[str] = []
    for line in read_sql(name).splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(current).strip())
            current = []
    if any(line.strip() and not line.lstrip().startswith("--") for line in current):
        out.append("\n".join(current).strip())
    return out


def schema_files() -> list[tuple[int, str]]:
    """The schema migrations, as (version, name) in order: ``sql/schema/0001_star_schema.sql`` → (1, ...)."""
    folder = resources.files("musicstream").joinpath("sql", "schema")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            stem = entry.name[: -len(".sql")]
            found.append((int(stem.split("_", 1)[0]), f"schema/{stem}"))
    return sorted(found)


@cache
def named_statements(name: str) -> dict[str, str]:
    """The statements of a .sql file whose blocks start with ``-- name: NAME`` lines, by name, in file order."""
    found: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in read_sql(name).splitlines():
        if line.startswith("-- name:"):
            if current is not None:
                found[current] = "\n".join(lines).strip()
            current, lines = line.split(":", 1)[1].strip(), []
        elif current is not None and not line.lstrip().startswith("--"):
            lines.append(line)
    if current is not None:
        found[current] = "\n".join(lines).strip()
    return found
