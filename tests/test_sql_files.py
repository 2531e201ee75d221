"""Where SQL lives: migrations hold tables and backfills, each function has one body in one repeatable file, and the
rollups read the star merge's hand-over and nothing else of it (docs/architecture.md)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from musicstream.db.schema import BACKFILL_ROLLUPS, FUNCTION_FOLDERS, function_files
from musicstream.db.sqlfiles import named_statements, read_sql, schema_files
from musicstream.load import rollups

SQL = Path(__file__).resolve().parents[1] / "src" / "musicstream" / "sql"
DEFINES = re.compile(r"^CREATE (?:OR REPLACE )?(FUNCTION|AGGREGATE|PROCEDURE) (\w+)", re.MULTILINE | re.IGNORECASE)

# The star merge's working tables: the rollups never read them (the hand-over is touched_days and touched_names).
STAR_WORKING_TABLES = ("resolution", "names_to_resolve", "stage_names", "stage_plays", "stage_songs",
                       "touched_artist_keys")  # fmt: skip


def test_migrations_define_no_function() -> None:
    for _, name in schema_files():
        assert DEFINES.findall(read_sql(name)) == [], f"{name}: functions go in {' or '.join(FUNCTION_FOLDERS)}"


def test_each_function_has_one_body_in_one_repeatable_file() -> None:
    defined = Counter(name.lower() for file in function_files() for _, name in DEFINES.findall(read_sql(file)))
    assert defined and [name for name, n in defined.items() if n > 1] == []
    on_disk = {f"{folder}/{p.stem}" for folder in FUNCTION_FOLDERS for p in (SQL / folder).glob("*.sql")}
    assert set(function_files()) == on_disk
    called = set(re.findall(r"\b(refresh_\w+|report_\w+)\(", read_sql("rollups/maintain")))
    assert called <= set(defined), "maintain.sql calls a function no file defines"


def test_rollup_tables_are_backfilled_by_the_migration_that_makes_them() -> None:
    """A migration that creates or alters a rollup table asks for the rebuild (on a database that holds plays)."""
    for _, name in schema_files():
        text = read_sql(name)
        touches = re.search(r"^(CREATE TABLE IF NOT EXISTS|ALTER TABLE) rollup_", text, re.MULTILINE)
        asks = any(line.startswith(BACKFILL_ROLLUPS) for line in text.splitlines())
        assert bool(touches) == asks, name


def test_the_rollups_read_the_hand_over_only() -> None:
    texts = {"rollups/maintain": read_sql("rollups/maintain")} | {f: read_sql(f) for f in function_files()}
    for file, text in texts.items():
        for table in STAR_WORKING_TABLES:
            assert not re.search(rf"\b{table}\b", text), f"sql/{file}.sql reads the star merge's {table}"
    statements = named_statements("rollups/maintain")
    assert {step.name for step in rollups.STEPS} <= set(statements)
    star = named_statements("load/merge")
    assert not {name for name in star if re.search(r"\brollup_", star[name])}, "the star merge writes a rollup"
