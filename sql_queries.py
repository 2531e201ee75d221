"""The classic ``sql_queries.py``: the SQL that create_tables.py and etl.py use, read from musicstream's .sql
files (there is no second copy of the SQL here)."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import musicstream  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from musicstream.db.schema import STAR_TABLES, drop_statements
from musicstream.db.sqlfiles import named_statements, read_sql, schema_files, statements

#: The schema migrations, in order: each a complete DDL script (tables, indexes, the sparkify views).
create_table_queries: list[str] = [read_sql(name) for _, name in schema_files()]
#: DROP statements for every musicstream table and view.
drop_table_queries: list[str] = drop_statements()
#: Staging tables of one load run.
staging_table_queries: list[str] = statements("load/staging")
#: The set-based load steps, by name, in the order a run executes them.
load_queries: dict[str, str] = named_statements("load/merge")
#: The star schema's tables.
star_tables: tuple[str, ...] = STAR_TABLES
