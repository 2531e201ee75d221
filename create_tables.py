"""The classic first step: (re)create the database schema, dropping any previous tables.

Usage: ``python create_tables.py`` (uses MUSICSTREAM_DATABASE_URL, or the embedded PostgreSQL). Same code as
``musicstream init --reset --yes``.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import musicstream  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from musicstream.config import Settings
from musicstream.db.connection import Database
from musicstream.db.schema import initialize
from musicstream.errors import MusicstreamError


def main() -> int:
    db = Database(Settings.resolve())
    try:
        outcome = initialize(db, reset=True)
    except MusicstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"Created the musicstream schema (version {outcome['schema_version']}) in {db.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
